#!/usr/bin/env bash
# Autobahn|Testsuite, strict, both directions:
#   - fuzzingclient against examples/echo_server (tests rtwire's server)
#   - fuzzingserver against examples/echo_client (tests rtwire's client)
# All cases except 12.* and 13.* with deflate off, then a subset of the
# permessage-deflate cases 12.* and 13.* (DEFLATE_CASES) with --deflate in
# both roles: cases 2, 3, 4 and 9 of every group (48 cases; small and
# 64 KiB messages, each group's parameters). Case ids are listed one by
# one: wstest matches patterns by prefix ("12.*.1" would also take
# 12.x.10-18). scripts/autobahn-deflate.sh runs all 216.
# Exits non-zero unless every case is OK or INFORMATIONAL, for the case
# itself and for its closing behaviour: no FAILED, NON-STRICT, UNIMPLEMENTED,
# and no unclean or wrong-code close.
#
# Uses the wstest recipe in ../shared/autobahn (Python 2.7 venv, set up on
# first use). Reports: $OUTDIR/{server,client}/index.html.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
RUNSH=${AUTOBAHN_RUNSH:-$ROOT/../shared/autobahn/run.sh}
OUTDIR=${OUTDIR:-/tmp/rtwire-autobahn}
SERVER_PORT=${SERVER_PORT:-9001}
CLIENT_PORT=${CLIENT_PORT:-9010}
[ -x "$RUNSH" ] || [ -f "$RUNSH" ] || { echo "autobahn: $RUNSH not found" >&2; exit 2; }

DEFLATE_CASES=${DEFLATE_CASES:-12.1.2,12.1.3,12.1.4,12.1.9,12.2.2,12.2.3,12.2.4,12.2.9,12.3.2,12.3.3,12.3.4,12.3.9,12.4.2,12.4.3,12.4.4,12.4.9,12.5.2,12.5.3,12.5.4,12.5.9,13.1.2,13.1.3,13.1.4,13.1.9,13.2.2,13.2.3,13.2.4,13.2.9,13.3.2,13.3.3,13.3.4,13.3.9,13.4.2,13.4.3,13.4.4,13.4.9,13.5.2,13.5.3,13.5.4,13.5.9,13.6.2,13.6.3,13.6.4,13.6.9,13.7.2,13.7.3,13.7.4,13.7.9}
DEFLATE_SERVER_PORT=${DEFLATE_SERVER_PORT:-9002}
DEFLATE_CLIENT_PORT=${DEFLATE_CLIENT_PORT:-9011}
cargo build --release --features deflate --example echo_server --example echo_client
bash "$RUNSH" setup

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

wait_port() { # wait until 127.0.0.1:$1 accepts connections
  for _ in $(seq 1 100); do
    if python3 -c "import socket,sys; s=socket.socket(); s.settimeout(0.2); s.connect(('127.0.0.1', int(sys.argv[1])))" "$1" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "autobahn: nothing listening on port $1" >&2; return 1
}

# --- server under test ---
"${CARGO_TARGET_DIR:-target}"/release/examples/echo_server "127.0.0.1:$SERVER_PORT" > "$OUTDIR.server.log" 2>&1 &
pids+=($!)
wait_port "$SERVER_PORT"
mkdir -p "$OUTDIR/server" "$OUTDIR/client"
OUTDIR="$OUTDIR/server" AGENT=rtwire-server TIMEOUT=900 bash "$RUNSH" server "127.0.0.1:$SERVER_PORT" > "$OUTDIR/server.txt" 2>&1 || {
  cat "$OUTDIR/server.txt"; echo "autobahn: server run failed" >&2; exit 1; }

# --- client under test ---
OUTDIR="$OUTDIR/client" AGENT=rtwire-client bash "$RUNSH" client "$CLIENT_PORT" > "$OUTDIR/client.txt" 2>&1 &
pids+=($!)
wait_port "$CLIENT_PORT"
timeout 900 "${CARGO_TARGET_DIR:-target}"/release/examples/echo_client "ws://127.0.0.1:$CLIENT_PORT" rtwire-client

# --- permessage-deflate subset, both roles ---
if [ -n "$DEFLATE_CASES" ]; then
  "${CARGO_TARGET_DIR:-target}"/release/examples/echo_server "127.0.0.1:$DEFLATE_SERVER_PORT" --deflate > "$OUTDIR.deflate-server.log" 2>&1 &
  pids+=($!)
  wait_port "$DEFLATE_SERVER_PORT"
  mkdir -p "$OUTDIR/deflate-server" "$OUTDIR/deflate-client"
  OUTDIR="$OUTDIR/deflate-server" AGENT=rtwire-server-deflate TIMEOUT=900 bash "$RUNSH" server "127.0.0.1:$DEFLATE_SERVER_PORT" "$DEFLATE_CASES" > "$OUTDIR/deflate-server.txt" 2>&1 || {
    cat "$OUTDIR/deflate-server.txt"; echo "autobahn: deflate server run failed" >&2; exit 1; }
  OUTDIR="$OUTDIR/deflate-client" AGENT=rtwire-client-deflate bash "$RUNSH" client "$DEFLATE_CLIENT_PORT" "$DEFLATE_CASES" > "$OUTDIR/deflate-client.txt" 2>&1 &
  pids+=($!)
  wait_port "$DEFLATE_CLIENT_PORT"
  timeout 900 "${CARGO_TARGET_DIR:-target}"/release/examples/echo_client "ws://127.0.0.1:$DEFLATE_CLIENT_PORT" rtwire-client-deflate --deflate
fi

python3 - "$OUTDIR" "$DEFLATE_CASES" <<'PY'
import json, sys, os
out = sys.argv[1]
good = {"OK", "INFORMATIONAL"}
bad_total = 0
for side in ("server", "client", "deflate-server", "deflate-client"):
    path = os.path.join(out, side, "index.json")
    if side.startswith("deflate") and not sys.argv[2]:
        continue
    data = json.load(open(path))
    for agent, cases in data.items():
        counts, bad = {}, []
        for cid, r in cases.items():
            counts[r["behavior"]] = counts.get(r["behavior"], 0) + 1
            if r["behavior"] not in good or r["behaviorClose"] not in good:
                bad.append(f'{cid}: {r["behavior"]}/{r["behaviorClose"]}')
        summary = ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))
        print(f"autobahn {side} ({agent}): {len(cases)} cases: {summary}; not strict-OK: {len(bad)}")
        for b in sorted(bad):
            print("   ", b)
        bad_total += len(bad)
sys.exit(1 if bad_total else 0)
PY
