'use strict';
// node-turn 0.0.6 for iceprobe's interop lab (tests/lab/interop.py): UDP on one IP and port,
// long-term credentials for the given users (none given: an open server, authMech 'none').
// Prints "ready udp=IP:PORT" once its socket is bound; stops on SIGTERM/SIGINT.
//
//   node turnserver.js --ip IP --port N [--relay-ip IP] [--min-port N] [--max-port N]
//                      [--realm R] [--user name=password]... [--debug-level OFF|...|ALL]

const Turn = require('node-turn');
const { parseArgs, fail } = require('./args');

const PROGRAM = 'turnserver.js';

function main() {
  const opts = parseArgs(process.argv.slice(2), {
    ip: { value: '127.0.0.1' },
    port: { value: '3478' },
    'relay-ip': { value: '' },
    'min-port': { value: '50000' },
    'max-port': { value: '50031' },
    realm: { value: 'lab' },
    user: { repeat: true },
    'debug-level': { value: 'OFF' },
  });
  const credentials = {};
  for (const entry of opts.user) {
    const at = entry.indexOf('=');
    if (at <= 0) {
      throw new Error(`--user wants name=password, got ${entry}`);
    }
    credentials[entry.slice(0, at)] = entry.slice(at + 1);
  }
  const server = new Turn({
    listeningIps: [opts.ip],
    listeningPort: Number(opts.port),
    relayIps: [opts['relay-ip'] || opts.ip],
    minPort: Number(opts['min-port']),
    maxPort: Number(opts['max-port']),
    realm: opts.realm,
    authMech: opts.user.length ? 'long-term' : 'none',
    credentials,
    debugLevel: opts['debug-level'],
    log: (message) => process.stderr.write(`${message}\n`),
  });
  server.start();
  const [socket] = server.network.sockets;
  // With debugLevel OFF node-turn only logs a bind error: make it fatal here.
  socket.on('error', (error) => fail(PROGRAM, error));
  socket.once('listening', () => {
    const { address, port } = socket.address();
    process.stdout.write(`ready udp=${address}:${port}\n`);
  });
  const stop = () => {
    server.stop();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

try {
  main();
} catch (error) {
  fail(PROGRAM, error);
}
