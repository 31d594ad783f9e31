"""The latency lab's report: Markdown tables, headline ratios and plots (matplotlib, Agg).

:func:`render_report` turns ``results.json`` (see :mod:`llhls.lab.latency`)
into ``report.md``; :func:`write_plots` draws

* ``latency_cdf.png`` - latency CDF per scenario (a cell per stream kind and
  profile, a line per delivery; hls.js dashed);
* ``latency_p50.png`` - latency p50 with the p95 as a whisker, every scenario;
* ``startup.png`` - startup time per scenario;
* ``latency_time.png`` - latency over time of every viewer of HTTP/3 (ours) and
  hls.js over HTTP/3, since the scenario started: staggered joins and catch-up;
* ``viewer_spread.png`` - viewer spread (p50) per scenario;

and :func:`write_docs` puts the report into ``docs/benchmarks.md`` as one
section (replaced on the next run), with the plots under ``docs/img/``.
"""

from __future__ import annotations

import re
import shutil
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["render_report", "write_plots", "write_docs", "DOCS_BEGIN", "DOCS_END"]

DOCS_BEGIN = "<!-- latency-lab:begin (written by `llhls bench latency --docs`) -->"
DOCS_END = "<!-- latency-lab:end -->"

_PLOTS = ("latency_p50", "latency_cdf", "startup", "latency_time", "viewer_spread")

_COLORS = {
    "h1": "#8c8c8c",
    "h1ka": "#a0522d",
    "h2": "#1f77b4",
    "h3": "#2ca02c",
    "h3-0rtt": "#9467bd",
}
_HLSJS_COLORS = {"h2": "#17becf", "h3": "#bcbd22"}

Results = Mapping[str, Any]


def _num(value: object, digits: int = 2) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "–"
    return f"{value:.{digits}f}"


def _stalls(summary: Mapping[str, Any] | None) -> str:
    if not summary or not summary.get("viewers"):
        return "–"
    count = int(summary.get("stalls") or 0)
    return str(count) if count == 0 else f"{count} ({float(summary.get('stall_s') or 0):.1f} s)"


def _index(results: Results) -> dict[tuple[str, str, str, str], Mapping[str, Any]]:
    return {
        (sc["stream"], sc["profile"], sc["delivery"], sc["player"]): sc
        for sc in results["scenarios"]
    }


def _label(results: Results, kind: str, key: str) -> str:
    return str(results.get(kind, {}).get(key, key))


# --------------------------------------------------------------------------- Markdown


def _headline_lines(results: Results) -> list[str]:
    heads: list[Mapping[str, Any]] = results.get("headlines") or []
    by_kind: dict[str, list[Mapping[str, Any]]] = {}
    for h in heads:
        by_kind.setdefault(str(h["kind"]), []).append(h)
    lines: list[str] = []
    classic = by_kind.get("classic6_over_ll_h3", [])
    if classic:
        parts = [
            f"{h['profile']}: {_num(h['numerator_s'])} s / {_num(h['denominator_s'])} s = "
            f"**{h['ratio']:.1f}x**"
            for h in classic
            if h["delivery"] == "h2"
        ]
        same = [f"{h['profile']} {h['ratio']:.1f}x" for h in classic if h["delivery"] == "h3"]
        lines.append(
            "- **LL-HLS over HTTP/3 vs classic HLS 6 s** (latency p50, classic over HTTP/2 / "
            "LL-HLS over HTTP/3): "
            + "; ".join(parts or ["–"])
            + "."
            + (f" Classic over HTTP/3 too: {', '.join(same)}." if same else "")
        )
    versus = by_kind.get("ours_over_hlsjs", [])
    if versus:
        ratios = [float(h["ratio"]) for h in versus]
        per_stream = []
        for stream in results["streams"]:
            mine = [float(h["ratio"]) for h in versus if h["stream"] == stream]
            if mine:
                per_stream.append(
                    f"{_label(results, 'streams', stream)} {statistics.median(mine):.2f}x"
                )
        lines.append(
            "- **Ours vs hls.js** (latency p50 from the barcode, same stream, profile and "
            "protocol; < 1 means ours is closer to live): median "
            f"**{statistics.median(ratios):.2f}x** over {len(ratios)} pairs "
            f"(range {min(ratios):.2f}-{max(ratios):.2f}); per stream: "
            f"{', '.join(per_stream)}. Every pair below."
        )
    zero = by_kind.get("zero_rtt_over_h2_startup", [])
    if zero:
        trials = results["plan"].get("startup_trials", "?")

        def source(h: Mapping[str, Any]) -> str:
            if h.get("player") == "startup":
                return f"median of {trials} starts each"
            return "median of the scenario's viewers"

        cells = "; ".join(
            f"{_label(results, 'streams', h['stream'])}: {_num(h['numerator_s'])} s vs "
            f"{_num(h['denominator_s'])} s = **{h['ratio']:.2f}x** ({source(h)})"
            for h in zero
        )
        warm = "; ".join(
            f"{_label(results, 'streams', h['stream'])} {_num(h['numerator_s'])} s vs "
            f"{_num(h['denominator_s'])} s = {h['ratio']:.2f}x"
            for h in by_kind.get("zero_rtt_over_h3_startup", [])
        )
        lines.append(
            "- **HTTP/3 + 0-RTT startup vs cold HTTP/2 startup at 100 ms RTT** (mobile: "
            "100 ms RTT, 1 % loss; first request to first decoded frame; the startup "
            "trials start one viewer after another, each on a fresh connection through "
            f"its own relay): {cells}." + (f" Against a cold HTTP/3 start: {warm}." if warm else "")
        )
    return lines or ["- (the plan measured none of the headline pairs)"]


def _startup_table(results: Results, sub: str) -> list[str]:
    """The startup trials: median and quartiles per delivery."""
    rows = [sc for sc in results["scenarios"] if sc["player"] == "startup"]
    if not rows:
        return []
    lines = [
        f"{sub} Startup trials",
        "",
        f"LL-HLS, {_label(results, 'profiles', rows[0]['profile'])}: "
        f"{results['plan'].get('startup_trials', '?')} starts per delivery, one after "
        "another, each through a fresh relay (its own connection); first request to first "
        "decoded frame.",
        "",
        "| delivery | starts | startup p50 s | p25 s | p75 s |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for sc in rows:
        summary = sc["summary"]
        starts = sum(
            1 for v in sc["viewers"] if (v.get("summary") or {}).get("startup_s") is not None
        )
        lines.append(
            f"| {_label(results, 'deliveries', sc['delivery'])} | {starts} | "
            f"{_num(summary.get('startup_s'))} | {_num(summary.get('startup_p25_s'))} | "
            f"{_num(summary.get('startup_p75_s'))} |"
        )
    return [*lines, ""]


def _versus_table(results: Results) -> list[str]:
    """Ours / hls.js latency p50 per stream and profile, HTTP/2 and HTTP/3."""
    heads = [h for h in results.get("headlines") or [] if h["kind"] == "ours_over_hlsjs"]
    if not heads:
        return []
    cell = {(h["stream"], h["profile"], h["delivery"]): h for h in heads}

    def show(h: Mapping[str, Any] | None) -> str:
        if h is None:
            return "–"
        return f"{_num(h['numerator_s'])} / {_num(h['denominator_s'])} = {h['ratio']:.2f}x"

    lines = [
        "| stream | profile | HTTP/2: ours / hls.js (s) | HTTP/3: ours / hls.js (s) |",
        "| --- | --- | --- | --- |",
    ]
    for stream in results["streams"]:
        for profile in results["profiles"]:
            h2, h3 = cell.get((stream, profile, "h2")), cell.get((stream, profile, "h3"))
            if h2 is None and h3 is None:
                continue
            lines.append(
                f"| {_label(results, 'streams', stream)} | {profile} | {show(h2)} | {show(h3)} |"
            )
    return ["", *lines]


def _table(results: Results, profile: str) -> list[str]:
    index = _index(results)
    lines = [
        "| stream | delivery | p50 s | p95 s | startup s | stalls | spread s "
        "| hls.js p50 s | hls.latency p50 s | hls.js p95 s | hls.js startup s | hls.js stalls "
        "| hls.js spread s |",
        "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for stream in results["streams"]:
        for delivery in results["deliveries"]:
            ours = index.get((stream, profile, delivery, "ours"))
            theirs = index.get((stream, profile, delivery, "hlsjs"))
            if ours is None and theirs is None:
                continue
            o = ours["summary"] if ours else None
            t = theirs["summary"] if theirs else None
            h = theirs.get("hls_summary") if theirs else None

            def g(s: Mapping[str, Any] | None, key: str) -> str:
                return _num(s.get(key)) if s else "–"

            lines.append(
                f"| {_label(results, 'streams', stream)} "
                f"| {_label(results, 'deliveries', delivery)} "
                f"| {g(o, 'latency_p50_s')} | {g(o, 'latency_p95_s')} | {g(o, 'startup_s')} "
                f"| {_stalls(o)} | {g(o, 'spread_p50_s')} "
                f"| {g(t, 'latency_p50_s')} | {g(h, 'latency_p50_s')} | {g(t, 'latency_p95_s')} "
                f"| {g(t, 'startup_s')} | {_stalls(t)} | {g(t, 'spread_p50_s')} |"
            )
    return lines


def render_report(
    results: Results,
    images: Sequence[str] = (),
    *,
    image_prefix: str = "",
    heading: str = "#",
    command: str | None = None,
) -> str:
    """``report.md`` (``heading`` "##" nests it as a section of another document)."""
    plan = results["plan"]
    sub = heading + "#"
    minutes = float(results["elapsed_s"]) / 60
    n = len(results["scenarios"])
    run = "quick run (`--quick`)" if plan["quick"] else "full run"
    command = command or (
        "llhls bench latency" + (" --quick" if plan["quick"] else "") + " --out latency-lab"
    )
    lines = [
        f"{heading} Latency lab: classic HLS vs LL-HLS over HTTP/1.1, HTTP/2, HTTP/3 and 0-RTT",
        "",
        f"Measured {results['date']} on {results['machine']}: {run}, {n} scenarios in "
        f"{minutes:.1f} min (`{command}`).",
        "",
        f"Each scenario: {plan['viewers']} viewers of our player (`llhls play`, in a worker "
        f"process) or {plan['browser_viewers']} hls.js tabs (headless Chromium, the demo page), "
        f"joining {plan['stagger_s']:g} s apart, each playing {plan['duration_s']:g} s from its "
        f"first frame. Source: the test source at {plan['picture']}, 30 fps, ladder 360p "
        "(600 kbit/s) + 180p (200 kbit/s) + AAC; LL-HLS with 0.2 s parts and 2 s segments, "
        "classic HLS with whole 2 s or 6 s segments (hold-back 3 segments). Every viewer has "
        "its own impairment relay (`llhls relay`: UDP + TCP, delay and loss per direction; "
        "a Reno sender model for TCP) between it and the origin; the hls.js page, the "
        "playlists and the media all cross it. Chromium is forced onto QUIC for HTTP/3 "
        "and has QUIC off for HTTP/2.",
        "",
        "Latency is glass-to-glass, read from the capture clock burned into every frame as a "
        "barcode: ours from decoded frames, hls.js from a canvas in the page every 100 ms; "
        "`hls.latency` (hls.js's own estimate) beside it. p50/p95 pool every viewer's "
        "samples. Startup: ours from the first request to the first decoded frame (a cold "
        "connection); hls.js from the page script to the first `playing` event (its "
        "connection already carried the page). Stalls: the sum over the viewers (count and "
        "seconds). Spread: max - min latency across the viewers at common instants (every "
        "0.5 s while all play), median over the instants.",
        "",
        "Caveats. QUIC runs end to end through the relay (datagrams are really dropped), so "
        "HTTP/3 pays for slow start and loss as on a real path. The relay terminates TCP, "
        "so it models the sender instead: per connection and direction a Reno window "
        "(initial window 10 segments, slow start, one halving per loss episode, restart "
        "after an idle RTO) paces the bytes, and a lost segment arrives 1.25 RTT late "
        "(head-of-line blocking included). TCP rows therefore pay for slow start and loss "
        "too, by a model rather than the kernel's CUBIC. "
        f"The machine (2 cores) runs the packagers, origins, relays, players and Chromium "
        f"at once ({plan['parallel']} scenario slots): differences of a few tens of ms are "
        "noise.",
        "",
        "| profile | network (relay, per direction: half the RTT each way) |",
        "| --- | --- |",
    ]
    for key, label in results["profiles"].items():
        extra = ""
        if key in (results.get("trace_files") or {}):
            extra = f" (downlink rate: `{Path(results['trace_files'][key]).name}`, looped)"
        lines.append(f"| {key} | {label}{extra} |")
    lines += [
        "",
        f"{sub} Headline ratios",
        "",
        *_headline_lines(results),
        *_versus_table(results),
        "",
        *_startup_table(results, sub),
    ]
    for profile in results["profiles"]:
        lines += [
            f"{sub} {_label(results, 'profiles', profile)}",
            "",
            *_table(results, profile),
            "",
        ]
    if images:
        lines += [f"{sub} Plots", ""]
        for name in images:
            lines += [f"![{name}]({image_prefix}{name}.png)", ""]
    notes = [
        f"- `{sc['key']}`: {'; '.join(([sc['error']] if sc.get('error') else []) + sc['checks'])}"
        for sc in results["scenarios"]
        if sc.get("error") or sc.get("checks")
    ]
    if notes:
        lines += [f"{sub} Warnings", "", *notes, ""]
    lines += [
        f"{sub} Reproduce",
        "",
        "```sh",
        "make venv web",
        ".venv/bin/llhls bench latency --out latency-lab            # full run, ~21 min on 2 cores",
        ".venv/bin/llhls bench latency --quick --out latency-lab    # CI-sized, ~2 min",
        "```",
        "",
        "`--profiles`, `--streams`, `--protocols` pick a subset; `--traces DIR` (or "
        "`$LLHLS_TRACES`) points at the shared traces (default `../shared/traces`); "
        "`--docs docs/benchmarks.md` rewrites this section and its plots.",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- plots


def _cell_grid(results: Results) -> tuple[list[str], list[str]]:
    return list(results["streams"]), list(results["profiles"])


def _series_lines(sc: Mapping[str, Any]) -> list[list[float]]:
    return [[float(p[1]) for p in v.get("series") or []] for v in sc["viewers"]]


def write_plots(results: Results, out_dir: Path) -> list[str]:
    """Draw the plots into ``out_dir``; returns their names (without ``.png``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    index = _index(results)
    streams, profiles = _cell_grid(results)
    deliveries = list(results["deliveries"])
    written: list[str] = []

    def lines_of(stream: str, profile: str) -> list[tuple[str, str, str, Mapping[str, Any]]]:
        out = []
        for player in ("ours", "hlsjs"):
            for d in deliveries:
                sc = index.get((stream, profile, d, player))
                if sc is not None:
                    color = _COLORS[d] if player == "ours" else _HLSJS_COLORS.get(d, "#444444")
                    name = d if player == "ours" else f"hls.js {d}"
                    out.append((name, color, "-" if player == "ours" else "--", sc))
        return out

    # latency p50 with p95 whiskers
    ncols = min(3, len(profiles))
    nrows = -(-len(profiles) // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(5.0 * ncols, 3.6 * nrows), squeeze=False, sharey=True
    )
    for extra in range(len(profiles), nrows * ncols):
        axes[extra // ncols][extra % ncols].set_visible(False)
    for col, profile in enumerate(profiles):
        ax = axes[col // ncols][col % ncols]
        x = 0.0
        ticks: list[float] = []
        for stream in streams:
            cells = lines_of(stream, profile)
            first = x
            for name, color, style, sc in cells:
                s = sc["summary"]
                p50, p95 = s.get("latency_p50_s"), s.get("latency_p95_s")
                if p50 is not None:
                    err = [[0.0], [max(0.0, float(p95 or p50) - float(p50))]]
                    ax.bar(
                        x,
                        p50,
                        color=color,
                        hatch="//" if style == "--" else None,
                        edgecolor="black",
                        linewidth=0.3,
                        yerr=err,
                        capsize=2,
                        label=name if col == 0 and stream == streams[0] else None,
                    )
                x += 1
            ticks.append((first + x - 1) / 2)
            x += 1
        ax.set_xticks(ticks, [_label(results, "streams", s) for s in streams], fontsize=8)
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_title(_label(results, "profiles", profile), fontsize=9)
        ax.grid(axis="y", alpha=0.3, which="both")
    for row in range(nrows):
        axes[row][0].set_ylabel("latency p50 (s), whisker p95", fontsize=8)
    fig.legend(loc="lower center", ncol=8, fontsize=8)
    fig.tight_layout(rect=(0, 0.06 / nrows, 1, 1))
    fig.savefig(out_dir / "latency_p50.png", dpi=90)
    plt.close(fig)
    written.append("latency_p50")

    # CDFs and latency over time: a cell per stream kind and profile
    for name in ("latency_cdf", "latency_time"):
        fig, axes = plt.subplots(
            len(streams),
            len(profiles),
            figsize=(3.6 * len(profiles), 2.8 * len(streams)),
            squeeze=False,
        )
        for row, stream in enumerate(streams):
            for col, profile in enumerate(profiles):
                ax = axes[row][col]
                for label, color, style, sc in lines_of(stream, profile):
                    if name == "latency_cdf":
                        values = sorted(v for line in _series_lines(sc) for v in line)
                        if values:
                            ys = [(i + 1) / len(values) for i in range(len(values))]
                            ax.plot(values, ys, style, color=color, label=label, linewidth=1.2)
                        continue
                    if sc["delivery"] != "h3":
                        continue
                    t0 = float(sc["start_wall"])
                    for i, v in enumerate(sc["viewers"]):
                        pts = v.get("series") or []
                        if pts:
                            ax.plot(
                                [float(p[0]) - t0 for p in pts],
                                [float(p[1]) for p in pts],
                                style,
                                color=color,
                                linewidth=1,
                                alpha=1.0 - 0.25 * i,
                                label=label if i == 0 else None,
                            )
                ax.set_title(f"{_label(results, 'streams', stream)} | {profile}", fontsize=8)
                ax.tick_params(labelsize=7)
                ax.grid(alpha=0.3)
                if name == "latency_cdf":
                    ax.set_xlabel("latency (s)", fontsize=7)
                    if col == 0:
                        ax.set_ylabel("CDF", fontsize=7)
                else:
                    ax.set_xlabel("time since the scenario started (s)", fontsize=7)
                    if col == 0:
                        ax.set_ylabel("latency (s)", fontsize=7)
                if ax.get_legend_handles_labels()[0]:
                    ax.legend(fontsize=6, loc="best")
        fig.tight_layout()
        fig.savefig(out_dir / f"{name}.png", dpi=80)
        plt.close(fig)
        written.append(name)

    # grouped bars: startup and viewer spread
    for name, key, ylabel in (
        ("startup", "startup_s", "startup (s), median of the viewers"),
        ("viewer_spread", "spread_p50_s", "viewer spread p50 (s)"),
    ):
        fig, axes = plt.subplots(1, len(streams), figsize=(4.8 * len(streams), 3.8), squeeze=False)
        for col, stream in enumerate(streams):
            ax = axes[0][col]
            series_names: list[tuple[str, str, str, str]] = [
                (d, "ours", d, _COLORS[d]) for d in deliveries
            ] + [(d, "hlsjs", f"hls.js {d}", c) for d, c in _HLSJS_COLORS.items()]
            present = [
                s for s in series_names if any(index.get((stream, p, s[0], s[1])) for p in profiles)
            ]
            width = 0.8 / max(1, len(present))
            for j, (d, player, label, color) in enumerate(present):
                xs, ys = [], []
                for i, profile in enumerate(profiles):
                    cell = index.get((stream, profile, d, player))
                    value = cell["summary"].get(key) if cell else None
                    if value is not None:
                        xs.append(i + (j - (len(present) - 1) / 2) * width)
                        ys.append(float(value))
                ax.bar(
                    xs,
                    ys,
                    width=width,
                    color=color,
                    hatch="//" if player == "hlsjs" else None,
                    edgecolor="black",
                    linewidth=0.3,
                    label=label,
                )
            ax.set_xticks(range(len(profiles)), profiles, fontsize=8)
            ax.set_title(_label(results, "streams", stream), fontsize=9)
            ax.grid(axis="y", alpha=0.3)
            if col == 0:
                ax.set_ylabel(ylabel, fontsize=8)
            ax.legend(fontsize=6)
        fig.tight_layout()
        fig.savefig(out_dir / f"{name}.png", dpi=90)
        plt.close(fig)
        written.append(name)
    return [n for n in _PLOTS if n in written]


def write_docs(results: Results, out_dir: Path, docs: Path) -> None:
    """Copy the plots to ``img/latency-*.png`` beside ``docs`` and put the report in
    ``docs`` between :data:`DOCS_BEGIN` and :data:`DOCS_END` (appended the first time)."""
    img = docs.parent / "img"
    img.mkdir(parents=True, exist_ok=True)
    names = []
    for name in _PLOTS:
        src = out_dir / f"{name}.png"
        if src.exists():
            shutil.copyfile(src, img / f"latency-{name}.png")
            names.append(name)
    quick = " --quick" if results["plan"]["quick"] else ""
    body = render_report(
        results,
        names,
        image_prefix="img/latency-",
        heading="##",
        command=f"llhls bench latency{quick} --out latency-lab --docs docs/benchmarks.md",
    )
    section = f"{DOCS_BEGIN}\n{body.rstrip()}\n{DOCS_END}\n"
    text = docs.read_text(encoding="utf-8") if docs.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(DOCS_BEGIN) + r".*?" + re.escape(DOCS_END) + r"\n?", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    else:
        text = text.rstrip() + "\n\n" + section
    docs.write_text(text, encoding="utf-8")
