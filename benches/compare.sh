#!/usr/bin/env bash
# End-to-end echo comparison: rtwire's echo_server against the peers' echo
# servers and a raw TCP echo floor, on loopback. All servers run at once and
# each cell is measured on every server in turn (interleaved), so the
# background load of a shared machine falls on all of them alike.
#
#   bash benches/compare.sh            # full table (about 5 minutes)
#   SECS=1 IDLE_N=1000 bash benches/compare.sh   # quick look
#
# Each server runs single-threaded with TCP_NODELAY, pinned to core 0 (one
# cell runs every server on 2 threads, unpinned); the
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

start_server() { # binary [cpus [args...]] -> sets SERVER_PID, SERVER_PORT
  PORT=$((PORT + 1))
  local bin=$1 cpus=${2:-$SERVER_CPU}
  shift
  [[ $# -gt 0 ]] && shift
  taskset -c "$cpus" "$bin" "127.0.0.1:$PORT" "$@" 2>/dev/null &
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

# Multi-threaded: every server on a 2-worker runtime (rtwire's echo_server
# --threads 2, the peers on tokio's multi-thread runtime with 2 workers),
# 256 connections x 1 KiB. Nothing is pinned: servers and the load
# generators share both cores, alike for every server.
PORTS=()
for i in "${!SERVERS[@]}"; do
  IFS='|' read -r _ bin _ <<<"${SERVERS[$i]}"
  start_server "$bin" 0,1 --threads 2
  PIDS+=("$SERVER_PID")
  PORTS+=("$SERVER_PORT")
done
# The load generator is single-threaded: two of them, 128 connections each,
# run at once, and their rates are added up (latency: the worse of the two).
run_load_pair() { # name, port, raw flag...
  local name=$1 port=$2
  shift 2
  local a b
  a=$(mktemp) b=$(mktemp)
  "$LOAD" echo "127.0.0.1:$port" -c 128 -s 1024 -p 1 -t "$SECS" -w "$WARMUP" "$@" >"$a" &
  local pa=$!
  "$LOAD" echo "127.0.0.1:$port" -c 128 -s 1024 -p 1 -t "$SECS" -w "$WARMUP" "$@" >"$b" &
  local pb=$!
  wait "$pa" "$pb" || true
  local line
  line=$(python3 - "$a" "$b" <<'PY'
import sys
kvs = []
for path in sys.argv[1:]:
    for l in open(path):
        if l.startswith("RESULT"):
            kvs.append(dict(p.split("=", 1) for p in l.split()[1:]))
if len(kvs) != 2:
    print("RESULT failed=1")
    sys.exit()
out = dict(kvs[0])
for k in ("msgs_s", "mb_s", "errors"):
    if k in out:
        out[k] = f"{sum(float(kv.get(k, 0)) for kv in kvs):.1f}"
for k in ("p50_us", "p99_us"):
    if k in out:
        out[k] = str(max(float(kv.get(k, 0)) for kv in kvs))
out["conns"] = "256"
print("RESULT " + " ".join(f"{k}={v}" for k, v in out.items()))
PY
)
  rm -f "$a" "$b"
  echo "$name|$line threads=2" >>"$RESULTS"
  echo "  $name: ${line#RESULT }" >&2
}
echo "== 2 threads: 256 connections x 1024 B x depth 1" >&2
for i in "${!SERVERS[@]}"; do
  IFS='|' read -r name _ kind <<<"${SERVERS[$i]}"
  raw=()
  [[ $kind == raw ]] && raw=(--raw)
  run_load_pair "$name" "${PORTS[$i]}" "${raw[@]}"
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
            if kv.get("threads", "1") != "1":
                key += f", {kv['threads']} threads"
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
