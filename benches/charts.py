#!/usr/bin/env python3
"""Renders the benchmark tables in benches/results/ as SVG bar charts.

    python3 benches/charts.py            # writes benches/charts/*.svg

Inputs (the raw results the bench scripts write):
  benches/results/compare-raw.txt   echo cells of benches/compare.sh:
                                    "server|RESULT mode=echo conns=N size=S depth=D msgs_s=X ..."
  benches/results/callgrind.md      the table of benches/callgrind.sh
                                    (instructions per 16 B echo per server)
  benches/hub/results.txt           hub_fanout RESULT lines; the chart uses
                                    the last block (the RESULT lines after
                                    the file's last "#" comment), medians
                                    per server and subscriber count

Outputs: benches/charts/echo.svg, instructions.svg, fanout.svg. Standard
library only; re-run after a bench run to update the charts that
BENCHMARKS.md and the README show.
"""

import html
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
OUT = ROOT / "charts"

COLORS = ["#d9480f", "#1c7ed6", "#37b24d", "#f59f00", "#7048e8", "#868e96"]
FONT = "font-family='system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif'"


def fields(line):
    """The key=value pairs of a RESULT line."""
    return dict(kv.split("=", 1) for kv in line.split() if "=" in kv)


def grouped_bars(title, subtitle, groups, series, values, unit, path, log_note=None):
    """A horizontal grouped bar chart.

    groups: the row labels; series: the bar names (one colour each);
    values[(group, series)] = number (missing: no bar). Bars in a group
    share the group's scale (the largest bar of the chart is full width).
    """
    bar_h, gap, left, right, top = 14, 10, 190, 90, 64
    width = 900
    rows = len(groups)
    height = top + rows * (len(series) * bar_h + gap) + 24 + 20 * ((len(series) + 2) // 3)
    vmax = max((v for v in values.values() if v is not None), default=1) or 1
    plot_w = width - left - right
    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}' {FONT} font-size='12'>",
        f"<rect width='{width}' height='{height}' fill='white'/>",
        f"<text x='12' y='22' font-size='16' font-weight='600'>{html.escape(title)}</text>",
        f"<text x='12' y='42' fill='#495057'>{html.escape(subtitle)}</text>",
    ]
    y = top
    for g in groups:
        block = len(series) * bar_h
        out.append(
            f"<text x='{left - 8}' y='{y + block / 2 + 4:.1f}' text-anchor='end'>{html.escape(g)}</text>"
        )
        for i, s in enumerate(series):
            v = values.get((g, s))
            if v is None:
                continue
            w = max(1.0, plot_w * v / vmax)
            by = y + i * bar_h
            out.append(
                f"<rect x='{left}' y='{by}' width='{w:.1f}' height='{bar_h - 2}' fill='{COLORS[i % len(COLORS)]}'/>"
            )
            out.append(
                f"<text x='{left + w + 4:.1f}' y='{by + bar_h - 4}' fill='#212529' font-size='10'>{fmt(v)}{unit}</text>"
            )
        y += block + gap
    # Legend, three entries per line.
    ly = y + 12
    for i, s in enumerate(series):
        lx = 12 + (i % 3) * 290
        if i and i % 3 == 0:
            ly += 20
        out.append(f"<rect x='{lx}' y='{ly - 10}' width='12' height='12' fill='{COLORS[i % len(COLORS)]}'/>")
        out.append(f"<text x='{lx + 18}' y='{ly}'>{html.escape(s)}</text>")
    if log_note:
        out.append(f"<text x='{width - 12}' y='{ly}' text-anchor='end' fill='#868e96' font-size='10'>{html.escape(log_note)}</text>")
    out.append("</svg>")
    path.write_text("\n".join(out) + "\n")
    print(f"wrote {path.relative_to(ROOT.parent)}")


def fmt(v):
    if v >= 1e6:
        return f"{v / 1e6:.2f} M"
    if v >= 1e4:
        return f"{v / 1e3:.0f} k"
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:.1f}"


def echo_chart():
    raw = RESULTS / "compare-raw.txt"
    if not raw.exists():
        print(f"skip echo: no {raw}", file=sys.stderr)
        return
    groups, series, values = [], [], {}
    for line in raw.read_text().splitlines():
        if "|RESULT" not in line:
            continue
        server, rest = line.split("|", 1)
        f = fields(rest)
        if f.get("mode") != "echo":
            continue
        cell = f"{f['conns']} conn x {f['size']} B"
        if f.get("depth", "1") != "1":
            cell += f" x depth {f['depth']}"
        if f.get("threads", "1") != "1":
            cell += f", {f['threads']} threads"
        if cell not in groups:
            groups.append(cell)
        if server not in series:
            series.append(server)
        values[(cell, server)] = float(f["msgs_s"])
    # Each cell on its own scale: show msgs/s relative to the cell's best.
    rel = {}
    for g in groups:
        best = max(v for (gg, _), v in values.items() if gg == g)
        for s in series:
            if (g, s) in values:
                rel[(g, s)] = values[(g, s)] / best * 100
    grouped_bars(
        "Echo throughput, msgs/s as % of the best server in each cell",
        "benches/compare.sh (benches/results/compare-raw.txt); longer is better",
        groups,
        series,
        rel,
        "%",
        OUT / "echo.svg",
    )


def instructions_chart():
    md = RESULTS / "callgrind.md"
    if not md.exists():
        print(f"skip instructions: no {md}", file=sys.stderr)
        return
    values, series = {}, []
    for line in md.read_text().splitlines():
        cols = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cols) < 4 or not cols[3].replace(",", "").isdigit():
            continue
        series.append(cols[0])
        values[("16 B echo", cols[0])] = float(cols[3].replace(",", ""))
    grouped_bars(
        "Server instructions per echoed 16-byte message (callgrind, user space)",
        "benches/callgrind.sh (benches/results/callgrind.md); shorter is better",
        ["16 B echo"],
        series,
        values,
        "",
        OUT / "instructions.svg",
    )


def fanout_chart():
    path = ROOT / "hub" / "results.txt"
    if not path.exists():
        print(f"skip fanout: no {path}", file=sys.stderr)
        return
    lines = path.read_text().splitlines()
    last_comment = max((i for i, l in enumerate(lines) if l.startswith("#")), default=-1)
    runs = defaultdict(list)
    for line in lines[last_comment + 1 :]:
        if not line.startswith("RESULT "):
            continue
        f = fields(line)
        runs[(f["subscribers"], f["server"])].append(
            (float(f["deliveries_per_s"]), float(f["server_cpu_ns_per_delivery"]))
        )
    if not runs:
        print("skip fanout: no RESULT lines in the last block", file=sys.stderr)
        return
    subs = sorted({s for s, _ in runs}, key=int)
    series = []
    for _, srv in runs:
        if srv not in series:
            series.append(srv)
    groups = [f"{int(s):,} subscribers" for s in subs]
    per_s = {}
    for (s, srv), v in runs.items():
        per_s[(f"{int(s):,} subscribers", srv)] = statistics.median(x[0] for x in v)
    n = max(len(v) for v in runs.values())
    grouped_bars(
        "Hub fan-out of 64-byte messages: deliveries/s (median)",
        f"benches/peers hub_fanout, {n} rounds (benches/hub/results.txt, last block); longer is better",
        groups,
        series,
        per_s,
        "/s",
        OUT / "fanout.svg",
    )
    cpu = {}
    for (s, srv), v in runs.items():
        cpu[(f"{int(s):,} subscribers", srv)] = statistics.median(x[1] for x in v)
    grouped_bars(
        "Hub fan-out: server CPU per delivery, ns (median; user + system)",
        f"benches/peers hub_fanout, {n} rounds (benches/hub/results.txt, last block); shorter is better",
        groups,
        series,
        cpu,
        " ns",
        OUT / "fanout-cpu.svg",
    )


def main():
    OUT.mkdir(exist_ok=True)
    echo_chart()
    instructions_chart()
    fanout_chart()


if __name__ == "__main__":
    main()
