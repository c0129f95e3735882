#!/usr/bin/env bash
# SSE fan-out: one channel of N subscribers over 127.0.0.1, M events of
# 64 bytes, rtwire's Manager + Handler against the seeds' two patterns
# (examples/sse_fanout.rs says what each one does). One run, each server in
# its own process, ratios against the best peer. Raw output:
# benches/results/sse-fanout.txt.
#
# 10,000 subscribers need 20,000+ descriptors in one process (clients and
# server together); this machine's hard limit is 20,000, so the large cell
# is 9,000 subscribers.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --example sse_fanout >/dev/null
bin="${CARGO_TARGET_DIR:-target}/release/examples/sse_fanout"
ulimit -n "$(ulimit -Hn)"
out=benches/results/sse-fanout.txt
{
  echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores; $(rustc --version)"
  for mode in burst paced; do
    for cell in "1000 200" "9000 100"; do
      for kind in rtwire go-style broadcast; do
        # shellcheck disable=SC2086
        "$bin" $cell "$kind" "$mode"
      done
    done
  done
} | tee "$out"
python3 - "$out" <<'PY'
import re, sys
rows = {}
for line in open(sys.argv[1]):
    m = re.match(r"(\S+)\s+(\S+)\s+n=\s*(\d+).*deliveries/s=(\d+) cpu/delivery=(\d+)ns", line)
    if m:
        rows.setdefault((m[2], int(m[3])), {})[m[1]] = (int(m[4]), int(m[5]))
print("\n| mode | subscribers | rtwire deliveries/s | best peer | ratio | CPU/delivery rtwire vs best peer |")
print("|---|---|---|---|---|---|")
for (mode, n), r in sorted(rows.items()):
    peer = max((k for k in r if k != "rtwire"), key=lambda k: r[k][0])
    print(f"| {mode} | {n:,} | {r['rtwire'][0]:,} | {peer} {r[peer][0]:,} | {r['rtwire'][0]/r[peer][0]:.1f}x | {r['rtwire'][1]} vs {r[peer][1]} ns |")
PY
