'use strict';
// A tiny parser for the launchers' `--name value` options (repeatable ones collect a list).

function parseArgs(argv, spec) {
  const values = {};
  for (const [name, { repeat, value }] of Object.entries(spec)) {
    values[name] = repeat ? [] : value;
  }
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, '');
    if (!(name in spec) || i + 1 >= argv.length) {
      throw new Error(`unknown option or missing value: ${argv[i]}`);
    }
    if (spec[name].repeat) {
      values[name].push(argv[i + 1]);
    } else {
      values[name] = argv[i + 1];
    }
  }
  return values;
}

function fail(program, error) {
  process.stderr.write(`${program}: ${error.message || error}\n`);
  process.exit(1);
}

module.exports = { parseArgs, fail };
