#!/usr/bin/env bash
# Server-side user-space instructions per echoed message, counted by
# callgrind: a number that the noise of a shared machine cannot move.
#
#   bash benches/callgrind.sh          # 16-byte binary echoes
#   SIZE=1024 bash benches/callgrind.sh
#   DEPTH=32 bash benches/callgrind.sh # 32 messages in flight (the pipelined cell)
#
# For each server: two runs under `valgrind --tool=callgrind`, one with N1
# and one with N2 echoes over one connection, DEPTH in flight (each run also
# includes start-up, one handshake and the close). The difference of the
# two totals divided by N2 - N1 is the cost of one echo: read syscall
# wake-up, frame decode, unmask, reply encode, write. Kernel time is not
# counted (callgrind sees user space only). `perf stat -e instructions:u`
# would do the same without the slowdown, but hardware counters are not
# available on this machine.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
N1=${N1:-2000}
N2=${N2:-22000}
SIZE=${SIZE:-16}
DEPTH=${DEPTH:-1}
OUT=${OUT:-$ROOT/target/callgrind}
mkdir -p "$OUT"

(cd "$ROOT" && cargo build --release --quiet --example echo_server --example load)
(cd "$ROOT/benches/peers" && cargo build --release --quiet --bins)

LOAD=$ROOT/target/release/examples/load
PEERS=$ROOT/benches/peers/target/release
SERVERS=(
  "rtwire|$ROOT/target/release/examples/echo_server"
  "fastwebsockets|$PEERS/fastws_echo"
  "tokio-websockets|$PEERS/tokiows_echo"
  "tokio-tungstenite|$PEERS/tungstenite_echo"
  # rtwire with its timeouts on its own timer thread (Timer::Thread) and a
  # runtime without tokio's time driver, as the peers' runtimes are.
  "rtwire (thread timer)|$ROOT/target/release/examples/echo_server|--thread-timer"
)
if [[ -n "${ONLY:-}" ]]; then
  filtered=()
  for s in "${SERVERS[@]}"; do [[ "$s" == *"$ONLY"* ]] && filtered+=("$s"); done
  SERVERS=("${filtered[@]}")
fi
PORT=${PORT:-9500}

total_ir() { # callgrind output file -> total instructions
  awk '/^totals:/ {print $2; exit} /^summary:/ {s=$2} END {if (s) print s}' "$1" | head -1
}

run_one() { # tag, binary, count, extra args -> prints total Ir
  local tag=$1 bin=$2 n=$3 extra=${4:-} file
  PORT=$((PORT + 1))
  file="$OUT/$tag.$n.out"
  rm -f "$file"
  valgrind --tool=callgrind --callgrind-out-file="$file" "$bin" "127.0.0.1:$PORT" $extra 2>"$OUT/$tag.$n.log" &
  local pid=$!
  for _ in $(seq 400); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then break; fi
    sleep 0.05
  done
  "$LOAD" count "127.0.0.1:$PORT" -n "$n" -s "$SIZE" -p "$DEPTH" >/dev/null
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  total_ir "$file"
}

echo "| server | Ir ($N1 echoes) | Ir ($N2 echoes) | instructions per ${SIZE} B echo, depth $DEPTH | ratio to rtwire |"
echo "|---|---|---|---|---|"
base=
for entry in "${SERVERS[@]}"; do
  IFS='|' read -r name bin extra <<<"$entry"
  tag=${name// /_}
  tag=${tag//[()]/}
  a=$(run_one "$tag" "$bin" "$N1" "$extra")
  b=$(run_one "$tag" "$bin" "$N2" "$extra")
  per=$(( (b - a) / (N2 - N1) ))
  [[ -z $base ]] && base=$per
  ratio=$(awk -v p="$per" -v b="$base" 'BEGIN {printf "%.2f", p / b}')
  echo "| $name | $a | $b | $per | ${ratio}x |"
done
echo
echo "Annotated profiles: callgrind_annotate $OUT/<server>.$N2.out"
