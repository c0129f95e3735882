#!/usr/bin/env bash
# Every permessage-deflate case of the Autobahn testsuite (12.*, 13.*: 216
# cases), strict, against rtwire's server twice (echo_server --deflate: no
# context takeover; --deflate context: context takeover, window 15) and
# against rtwire's client (echo_client --deflate, which lets the
# fuzzingserver choose every parameter). wstest itself is CPU-bound here:
# about 5 minutes per run on 2 cores. Reports: $OUTDIR/{server,server-context,client}.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
RUNSH=${AUTOBAHN_RUNSH:-$ROOT/../shared/autobahn/run.sh}
OUTDIR=${OUTDIR:-/tmp/rtwire-autobahn-deflate}
BIN="${CARGO_TARGET_DIR:-target}/release/examples"
cargo build --release --features deflate --example echo_server --example echo_client
bash "$RUNSH" setup
mkdir -p "$OUTDIR"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
wait_port() {
  for _ in $(seq 1 100); do
    if python3 -c "import socket,sys; s=socket.socket(); s.settimeout(0.2); s.connect(('127.0.0.1', int(sys.argv[1])))" "$1" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "autobahn-deflate: nothing listening on port $1" >&2; return 1
}
run_server() { # name port args...
  local name=$1 port=$2; shift 2
  "$BIN/echo_server" "127.0.0.1:$port" "$@" > "$OUTDIR/$name.log" 2>&1 &
  pids+=($!)
  wait_port "$port"
  OUTDIR="$OUTDIR/$name" AGENT="rtwire-$name" TIMEOUT=1800 bash "$RUNSH" server "127.0.0.1:$port" '12.*,13.*' > "$OUTDIR/$name.txt" 2>&1
}
run_server server 9021 --deflate
run_server server-context 9022 --deflate context
OUTDIR="$OUTDIR/client" AGENT=rtwire-client bash "$RUNSH" client 9023 '12.*,13.*' > "$OUTDIR/client.txt" 2>&1 &
pids+=($!)
wait_port 9023
timeout 1800 "$BIN/echo_client" ws://127.0.0.1:9023 rtwire-client --deflate
status=0
for side in server server-context client; do
  echo "== $side"
  python3 "$ROOT/../shared/autobahn/summary.py" --check --strict-close "$OUTDIR/$side" | tail -n 4 || status=1
done
exit $status
