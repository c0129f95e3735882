#!/usr/bin/env bash
# permessage-deflate figures, one run, side by side (BENCHMARKS.md,
# "### permessage-deflate"):
#
#  1. compression ratio and msgs/s for JSON-like text at 1 KiB and 64 KiB:
#     the same client load (examples/deflate_bench `load`: one rtwire client
#     offering context takeover at 15 bits, threshold 0, 16 messages in
#     flight, bytes counted on its socket) against echo servers: rtwire with
#     no context takeover, rtwire with context_takeover(15), Python
#     websockets (its defaults) and Node ws (threshold 0, its defaults);
#  2. the rtwire server's RSS per idle connection (examples/deflate_bench
#     `idle`), after the handshake and after one 16 KiB message each way,
#     for deflate off, no context takeover, and context takeover at 15, 12
#     and 9 bits.
#
# Writes benches/results/deflate.txt. Needs the peers (scripts/test.sh
# installs them). Usage: benches/deflate.sh [N_1KIB] [N_64KIB] [CONNS]
set -euo pipefail
cd "$(dirname "$0")/.."
N1=${1:-20000}
N64=${2:-1000}
CONNS=${3:-2000}
OUT=benches/results/deflate.txt
cargo build --release --quiet --features deflate --example deflate_bench
BIN=${CARGO_TARGET_DIR:-target}/release/examples/deflate_bench
TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

# start NAME CMD...: runs a server printing "PORT n"; sets PORT and SPID.
start() {
  local name=$1
  shift
  "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
  SPID=$!
  PIDS+=("$SPID")
  for _ in $(seq 100); do
    PORT=$(awk '/^PORT /{print $2}' "$TMP/$name.out")
    [ -n "$PORT" ] && return 0
    sleep 0.1
  done
  echo "$name did not start: $(cat "$TMP/$name.err")" >&2
  exit 1
}

stop() {
  kill "$SPID" 2>/dev/null || true
  wait "$SPID" 2>/dev/null || true
}

field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p"; }

{
  echo "# benches/deflate.sh $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -r)"
  echo "# client: deflate_bench load, offers context takeover 15/15, threshold 0, depth 16"
  echo "# ratio = bytes on the client socket (frames, headers, masks) / payload bytes"
  echo "# up = client to server (the client's compression), down = server to client (the server's)"
  echo
  printf '%-22s %6s %8s %10s %9s %9s  %s\n' server size msgs msgs/s up down negotiated
} >"$OUT"

bench_server() {
  local label=$1
  shift
  start "$label" "$@"
  for spec in "1024 $N1" "65536 $N64"; do
    set -- $spec
    local size=$1 n=$2
    # A short warm-up, then the measured run.
    "$BIN" load "ws://127.0.0.1:$PORT/" -n $((n / 10)) -s "$size" -d 16 --deflate ctx:15 >/dev/null
    local r
    r=$("$BIN" load "ws://127.0.0.1:$PORT/" -n "$n" -s "$size" -d 16 --deflate ctx:15)
    echo "$label $size $r" >>"$TMP/raw.txt"
    printf '%-22s %6s %8s %10s %9s %9s  %s\n' "$label" "$size" "$n" \
      "$(echo "$r" | field msgs_per_s)" "$(echo "$r" | field up_ratio)" \
      "$(echo "$r" | field down_ratio)" "$(echo "$r" | sed -n 's/.*ext=//p')" >>"$OUT"
  done
  stop
}

bench_server rtwire-no-context "$BIN" server 127.0.0.1:0 --deflate none
bench_server rtwire-context-15 "$BIN" server 127.0.0.1:0 --deflate ctx:15
bench_server python-websockets python3 tests/python/ws_peer.py server bench
bench_server node-ws node tests/node/ws_peer.js server bench

{
  echo
  echo "# rtwire echo server (deflate_bench server, one thread) RSS per connection, $CONNS connections"
  echo "# from one client process with the same deflate setting; KiB = (RSS - RSS before) / conns;"
  echo "# warm = after one 16 KiB JSON-like text message each way on every connection"
  echo
  printf '%-10s %10s %10s  %s\n' deflate idle-KiB warm-KiB params
} >>"$OUT"
for mode in off none ctx:15 ctx:12 ctx:9; do
  start "mem-$mode" "$BIN" server 127.0.0.1:0 --deflate "$mode"
  r=$("$BIN" idle "127.0.0.1:$PORT" -c "$CONNS" --pid "$SPID" --deflate "$mode")
  echo "mem $mode $r" >>"$TMP/raw.txt"
  printf '%-10s %10s %10s  %s\n' "$mode" "$(echo "$r" | field idle_per_conn_kib)" \
    "$(echo "$r" | field warm_per_conn_kib)" "$(echo "$r" | sed -n 's/.*params=//p')" >>"$OUT"
  stop
done

{
  echo
  echo "# raw RESULT lines"
  cat "$TMP/raw.txt"
} >>"$OUT"
cat "$OUT"
