#!/usr/bin/env bash
# End-to-end echo comparison: rtwire's echo_server against the peers' echo
# servers and a raw TCP echo floor, on loopback. All servers run at once and
# each cell is measured on every server in turn (interleaved), so the
# background load of a shared machine falls on all of them alike.
#
#   bash benches/compare.sh            # full table (about 5 minutes)
#   SECS=1 IDLE_N=1000 bash benches/compare.sh   # quick look
#
# Each server runs single-threaded with TCP_NODELAY, pinned to core 0; the
# load generator (examples/load.rs) is pinned to core 1. Everything is built
# with the same release profile (fat LTO, one codegen unit).
# Prints a markdown table with ratios to rtwire; raw results go to
# $OUT/results.txt.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECS=${SECS:-3}
WARMUP=${WARMUP:-0.5}
IDLE_N=${IDLE_N:-5000}
OUT=${OUT:-$ROOT/target/compare}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
mkdir -p "$OUT"
RESULTS=$OUT/results.txt
: >"$RESULTS"

# 5,000 connections need 5,000 descriptors on each side.
ulimit -n "$(ulimit -Hn)"

echo "building (release, fat LTO)..." >&2
(cd "$ROOT" && cargo build --release --quiet --example echo_server --example load)
(cd "$ROOT/benches/peers" && cargo build --release --quiet --bins)

LOAD=$ROOT/target/release/examples/load
PEERS=$ROOT/benches/peers/target/release
# name | binary | ws or raw
SERVERS=(
  "rtwire|$ROOT/target/release/examples/echo_server|ws"
  "fastwebsockets|$PEERS/fastws_echo|ws"
  "tokio-websockets|$PEERS/tokiows_echo|ws"
  "tokio-tungstenite|$PEERS/tungstenite_echo|ws"
  "raw TCP echo|$PEERS/raw_echo|raw"
)
if [[ -n "${ONLY:-}" ]]; then
  filtered=()
  for s in "${SERVERS[@]}"; do [[ "$s" == *"$ONLY"* ]] && filtered+=("$s"); done
  SERVERS=("${filtered[@]}")
fi

PORT=${PORT:-9300}
PIDS=()
PORTS=()

wait_port() { # port
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "no server on port $1" >&2
  return 1
}

start_server() { # binary -> sets SERVER_PID, SERVER_PORT
  PORT=$((PORT + 1))
  taskset -c "$SERVER_CPU" "$1" "127.0.0.1:$PORT" 2>/dev/null &
  SERVER_PID=$!
  SERVER_PORT=$PORT
  wait_port "$PORT"
}

stop_all() {
  for p in "${PIDS[@]}"; do
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  PIDS=()
}
trap stop_all EXIT

run_load() { # name, load args...
  local name=$1
  shift
  local line
  line=$(taskset -c "$CLIENT_CPU" "$LOAD" "$@" | grep '^RESULT' || echo "RESULT failed=1")
  echo "$name|$line" >>"$RESULTS"
  echo "  $name: ${line#RESULT }" >&2
}

# Throughput: every server runs at once (an idle server costs nothing) and
# the cells are interleaved, each cell measured on every server in turn, so
# that the background load of a shared machine falls on all of them alike.
for i in "${!SERVERS[@]}"; do
  IFS='|' read -r _ bin _ <<<"${SERVERS[$i]}"
  start_server "$bin"
  PIDS+=("$SERVER_PID")
  PORTS+=("$SERVER_PORT")
done
CELLS=()
for c in 1 16 256; do
  for s in 16 1024 65536; do CELLS+=("$c $s 1"); done
done
CELLS+=("16 16 32")
for cell in "${CELLS[@]}"; do
  read -r c s p <<<"$cell"
  echo "== $c connections x $s B x depth $p" >&2
  for i in "${!SERVERS[@]}"; do
    IFS='|' read -r name _ kind <<<"${SERVERS[$i]}"
    raw=()
    [[ $kind == raw ]] && raw=(--raw)
    run_load "$name" echo "127.0.0.1:${PORTS[$i]}" -c "$c" -s "$s" -p "$p" -t "$SECS" -w "$WARMUP" "${raw[@]}"
  done
done
stop_all

# Idle memory, each on a fresh server: upgraded only, then after one echo.
for entry in "${SERVERS[@]}"; do
  IFS='|' read -r name bin kind <<<"$entry"
  raw=()
  [[ $kind == raw ]] && raw=(--raw)
  for warm in "" --warm; do
    start_server "$bin"
    PIDS=("$SERVER_PID")
    sleep 0.2
    run_load "$name" idle "127.0.0.1:$SERVER_PORT" -n "$IDLE_N" --pid "$SERVER_PID" $warm "${raw[@]}"
    stop_all
  done
done

python3 - "$RESULTS" <<'EOF'
import sys, collections
rows = collections.OrderedDict()
for line in open(sys.argv[1]):
    name, rest = line.rstrip("\n").split("|", 1)
    kv = dict(p.split("=", 1) for p in rest.split()[1:])
    rows.setdefault(name, []).append(kv)
names = list(rows)
base = names[0]

def cells(name):
    out = collections.OrderedDict()
    for kv in rows[name]:
        if kv.get("mode") == "echo":
            key = f"{kv['conns']} conn x {kv['size']} B" + (f" x depth {kv['depth']}" if kv['depth'] != "1" else "")
            out[key] = kv
        elif kv.get("mode") == "idle":
            out["idle " + ("warm" if kv["warm"] == "true" else "cold")] = kv
    return out

tables = {n: cells(n) for n in names}
keys = [k for k in tables[base] if not k.startswith("idle")]
print("### Echo throughput (msgs/s; ratio to rtwire; p50/p99 latency in µs)\n")
print("| cell | " + " | ".join(names) + " |")
print("|---|" + "---|" * len(names))
for k in keys:
    b = float(tables[base][k].get("msgs_s", 0) or 0)
    cols = []
    for n in names:
        kv = tables[n].get(k, {})
        v = float(kv.get("msgs_s", 0) or 0)
        r = f" ({v / b:.2f}x)" if b and n != base else ""
        lat = f" {kv.get('p50_us', '?')}/{kv.get('p99_us', '?')}"
        mb = float(kv.get("mb_s", 0) or 0)
        extra = f", {mb:.0f} MB/s" if k.split(" x ")[1].startswith("65536") else ""
        cols.append(f"{v:,.0f}{r}{extra};{lat}")
    print(f"| {k} | " + " | ".join(cols) + " |")
print("\n### Idle connections (server RSS growth per connection; handshakes/s while opening them)\n")
print("| | " + " | ".join(names) + " |")
print("|---|" + "---|" * len(names))
for k, label in (("idle cold", "bytes/conn, upgraded only"), ("idle warm", "bytes/conn, after one echo"), ("idle cold", "handshakes/s")):
    field = "handshakes_s" if label == "handshakes/s" else "bytes_per_conn"
    b = float(tables[base].get(k, {}).get(field, 0) or 0)
    cols = []
    for n in names:
        v = float(tables[n].get(k, {}).get(field, 0) or 0)
        r = f" ({v / b:.2f}x)" if b and n != base else ""
        cols.append(f"{v:,.0f}{r}")
    print(f"| {label} | " + " | ".join(cols) + " |")
EOF
