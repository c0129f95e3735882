#!/usr/bin/env bash
# Builds every cargo-fuzz target on the stable toolchain (no sanitizer) and
# runs each for FUZZ_SECONDS (default 30) from its committed seed corpus,
# with debug assertions and overflow checks on (cargo-fuzz's default).
# Any crash fails. Longer runs and ASan: see fuzz/README.md.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
SECS=${FUZZ_SECONDS:-30}
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
cargo fuzz build -s none
for t in $(cargo fuzz list); do
  work=$(mktemp -d)
  [ -d "corpus/$t" ] && cp -r "corpus/$t/." "$work/"
  echo "--- fuzz $t for ${SECS}s"
  status=0
  cargo fuzz run -s none "$t" "$work" -- -max_total_time="$SECS" -print_final_stats=1 \
    > "$work.log" 2>&1 || status=$?
  grep -E "stat::number_of_executed_units|^#[0-9]+ +DONE|ERROR|panicked|SUMMARY" "$work.log" || true
  [ "$status" -ne 0 ] && tail -n 40 "$work.log"
  rm -rf "$work" "$work.log"
  if [ "$status" -ne 0 ]; then echo "fuzz target $t failed (exit $status)" >&2; exit 1; fi
done
