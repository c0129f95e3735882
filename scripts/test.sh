#!/usr/bin/env bash
# The test command (README, CI): every test, all features. The Redis tests
# start their own redis-server (tests/redis_support), so it must be on the
# PATH: install it when it is not. A missing redis-server fails those tests;
# they never skip. Same for the deflate interop peers (Python, Node).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  echo "test.sh: installing redis-server"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server
fi
# The permessage-deflate interop peers (tests/deflate_interop.rs): Python
# `websockets` and Node `ws` (pinned in tests/node/package-lock.json). A
# missing peer fails those tests; they never skip.
if ! python3 -c "import websockets" >/dev/null 2>&1; then
  echo "test.sh: installing Python websockets"
  python3 -m pip install -q "websockets==15.0.1"
fi
if [ ! -d tests/node/node_modules ]; then
  echo "test.sh: installing Node ws (tests/node)"
  (cd tests/node && npm ci --no-audit --no-fund --silent)
fi
# The Debian package may start a server of its own on 6379; the tests
# do not use it (each starts one on a free port).
cargo test --all-features "$@"
