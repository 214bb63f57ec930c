#!/usr/bin/env bash
# Starts a throwaway coturn on 127.0.0.1 and points iceprobe at it: first a healthy run, then
# the same servers with a wrong password. Nothing leaves this machine.
# `examples/quickstart.sh serve` only starts that coturn (user demo, password demo-password)
# and keeps it running until Ctrl-C, for trying the README's other examples.
# Needs coturn (`apt-get install coturn`; installed here when run as root).
set -euo pipefail
port=${ICEPROBE_DEMO_PORT:-34780}

if ! command -v turnserver >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq coturn >/dev/null
  else
    echo "quickstart: needs coturn (apt-get install coturn)" >&2
    exit 2
  fi
fi

dir=$(mktemp -d)
: > "$dir/empty.conf"
turnserver -c "$dir/empty.conf" -n --listening-ip=127.0.0.1 --listening-port="$port" \
  --relay-ip=127.0.0.1 --min-port=49152 --max-port=49200 --realm=demo --lt-cred-mech \
  --user=demo:demo-password --no-tls --no-dtls --no-cli --allow-loopback-peers \
  --log-file="$dir/turn.log" --simple-log --userdb="$dir/db.sqlite" \
  --pidfile="$dir/turn.pid" >/dev/null 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$dir"' EXIT
sleep 0.5

if [ "${1:-}" = serve ]; then
  echo "coturn on 127.0.0.1:$port (UDP and TCP), user demo, password demo-password; Ctrl-C stops it"
  wait "$server"
  exit 0
fi

echo "# A healthy STUN + TURN server:"
iceprobe gather --stun "stun:127.0.0.1:$port" --turn "turn:127.0.0.1:$port" \
  -u demo -p demo-password

echo
echo "# The same server with a wrong TURN password (exit code 1 is expected):"
status=0
iceprobe gather --stun "stun:127.0.0.1:$port" --turn "turn:127.0.0.1:$port" \
  -u demo -p wrong-password || status=$?
[ "$status" = 1 ]
