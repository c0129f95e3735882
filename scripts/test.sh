#!/usr/bin/env bash
# The test command (README, CI): every test, all features. The Redis tests
# start their own redis-server (tests/redis_support), so it must be on the
# PATH: install it when it is not. A missing redis-server fails those tests;
# they never skip. Same for the deflate interop peers (Python, Node).
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian packages: redis-server for the Redis tests, Chromium for the
# demo page's browser check (tests/hub_browser.rs).
need=()
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  need+=(redis-server)
fi
if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  need+=(chromium)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "test.sh: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
# The permessage-deflate interop peers (tests/deflate_interop.rs): Python
# `websockets` and Node `ws`; and playwright-core, which drives the system
# Chromium in tests/hub_browser.rs (both pinned in
# tests/node/package-lock.json; playwright-core never downloads a browser).
# A missing peer fails those tests; they never skip.
if ! python3 -c "import websockets" >/dev/null 2>&1; then
  echo "test.sh: installing Python websockets"
  python3 -m pip install -q "websockets==15.0.1"
fi
if [ ! -d tests/node/node_modules/ws ] || [ ! -d tests/node/node_modules/playwright-core ]; then
  echo "test.sh: installing Node ws and playwright-core (tests/node)"
  (cd tests/node && npm ci --no-audit --no-fund --silent)
fi
# The Debian package may start a server of its own on 6379; the tests
# do not use it (each starts one on a free port).
cargo test --all-features "$@"
