#!/usr/bin/env bash
# Server RSS per connection with N (default 10,000) upgraded connections,
# examples/echo_server against examples/load.rs idle, in three cases:
#   idle      no frames after the handshake
#   retained  one 16-byte message each, kept by the server (--keep-last),
#             with CHURN bytes (default 256 KiB) of other traffic read by
#             the server between two connections' messages (--churn)
#   packed    as retained, without the churn (messages read back to back)
# Prints the RESULT line of each run. Needs 2N+ open files per process:
# raises the soft limit as far as the hard limit allows.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000}
CHURN=${CHURN:-262144}
PORT=${PORT:-9101}
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -gt $((N + 100)) ] ||
  { echo "mem-rss: open-files limit $(ulimit -n) is too low for N=$N" >&2; exit 2; }

cargo build --release --example echo_server --example load
T=${CARGO_TARGET_DIR:-target}/release/examples

server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null || true; }
trap cleanup EXIT

wait_port() { # until 127.0.0.1:$1 accepts connections
  for _ in $(seq 1 100); do
    if python3 -c "import socket,sys; s=socket.socket(); s.settimeout(0.2); s.connect(('127.0.0.1', int(sys.argv[1])))" "$1" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "mem-rss: server on port $1 did not come up" >&2; exit 1
}

measure() { # label, server flags, load flags
  "$T/echo_server" "127.0.0.1:$PORT" $2 2>/dev/null &
  server=$!
  wait_port "$PORT"
  echo -n "$1: "
  "$T/load" idle "127.0.0.1:$PORT" -n "$N" --pid "$server" $3 | grep '^RESULT'
  kill "$server"; wait "$server" 2>/dev/null || true
  server=
}

measure idle "" ""
measure retained "--keep-last" "--warm --churn $CHURN"
measure packed "--keep-last" "--warm"
