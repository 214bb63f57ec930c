'use strict';
// The npm `stun` 2.1.0 server for iceprobe's interop lab (tests/lab/interop.py), answering
// the way the package's documentation shows: every request it hands over as a
// "bindingRequest" (the package does not look at the method, so a TURN Allocate is one too)
// gets a Binding success response with the request's transaction id, XOR-MAPPED-ADDRESS
// and SOFTWARE. With --mismatched-ids yes it answers with a fresh random transaction id
// instead, as the package's own `stun` command does (a server with wrong transaction ids).
// Prints "ready udp=IP:PORT" once bound; stops on SIGTERM/SIGINT.
//
//   node stunserver.js --ip IP --port N [--mismatched-ids yes|no]

const dgram = require('dgram');
const net = require('net');
const stun = require('stun');
const { version } = require('stun/package.json');
const { parseArgs, fail } = require('./args');

const PROGRAM = 'stunserver.js';

function main() {
  const opts = parseArgs(process.argv.slice(2), {
    ip: { value: '127.0.0.1' },
    port: { value: '3478' },
    'mismatched-ids': { value: 'no' },
  });
  const socket = dgram.createSocket(net.isIPv6(opts.ip) ? 'udp6' : 'udp4');
  const server = stun.createServer({ type: 'udp4', socket });
  const { STUN_BINDING_RESPONSE, STUN_EVENT_BINDING_REQUEST } = stun.constants;
  const software = `node/${process.version} stun/v${version}`;
  const mismatched = opts['mismatched-ids'] === 'yes';

  server.on(STUN_EVENT_BINDING_REQUEST, (request, rinfo) => {
    const response = mismatched
      ? stun.createMessage(STUN_BINDING_RESPONSE)
      : stun.createMessage(STUN_BINDING_RESPONSE, request.transactionId);
    response.addXorAddress(rinfo.address, rinfo.port);
    response.addSoftware(software);
    server.send(response, rinfo.port, rinfo.address);
  });
  // An unparsable datagram is the client's problem, not a reason to stop.
  server.on('error', () => {});
  socket.on('error', (error) => fail(PROGRAM, error));
  socket.bind({ address: opts.ip, port: Number(opts.port), exclusive: true }, () => {
    const { address, port } = socket.address();
    process.stdout.write(`ready udp=${address}:${port}\n`);
  });
  const stop = () => {
    server.close();
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
