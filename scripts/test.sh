#!/usr/bin/env bash
# The test command (README, CI): every test, all features. The Redis tests
# start their own redis-server (tests/redis_support), so it must be on the
# PATH: install it when it is not. A missing redis-server fails those tests;
# they never skip.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  echo "test.sh: installing redis-server"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server
fi
# The Debian package may start a server of its own on 6379; the tests
# do not use it (each starts one on a free port).
cargo test --all-features "$@"
