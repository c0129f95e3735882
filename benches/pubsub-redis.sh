#!/usr/bin/env bash
# rtwire's Redis pub/sub backend against the naive baseline (bare PUBLISH,
# one subscription re-broadcast into a tokio broadcast channel), on a
# throwaway redis-server of its own: examples/pubsub_load.rs.
#
#   bash benches/pubsub-redis.sh             # about 25 s on 2 cores
#   N=3000 bash benches/pubsub-redis.sh      # quick look
#
# The server listens on 127.0.0.1 only, on a free port, with no persistence
# (--save '' --appendonly no) and its files in a temp dir removed on exit.
# The output is printed and written to benches/results/pubsub-redis.txt
# (OUT=... to write elsewhere).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${N:-30000}
OUT=${OUT:-$ROOT/benches/results/pubsub-redis.txt}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

command -v redis-server >/dev/null || {
  echo "redis-server not found (apt-get install -y redis-server)" >&2
  exit 1
}

echo "building (release)..." >&2
(cd "$ROOT" && cargo build --release --quiet --example pubsub_load --features redis)

# A free port: bind port 0 and read back what the kernel chose.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
DIR=$(mktemp -d)
REDIS_PID=
cleanup() {
  if [ -n "$REDIS_PID" ]; then
    kill "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
  fi
  rm -rf "$DIR"
}
trap cleanup EXIT

redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no \
  --dir "$DIR" --logfile "$DIR/redis.log" &
REDIS_PID=$!
for _ in $(seq 1 100); do
  redis-cli -p "$PORT" ping >/dev/null 2>&1 && break
  sleep 0.05
done
redis-cli -p "$PORT" ping >/dev/null

mkdir -p "$(dirname "$OUT")"
{
  echo "# benches/pubsub-redis.sh, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "# commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)," \
    "$(redis-server --version | cut -d' ' -f1-3), $(nproc) cores, $(uname -srm)"
  "$TARGET/release/examples/pubsub_load" "redis://127.0.0.1:$PORT/" --n "$N"
} 2>&1 | tee "$OUT"
