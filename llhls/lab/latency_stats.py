"""Figures of the latency lab from viewers' latency series (pure).

A viewer's result (our player's or one hls.js tab's) holds ``series``:
``[[wall_s, latency_s], ...]`` every ~100 ms from its first frame, plus a
``summary`` with ``startup_s``, ``stalls`` and ``stall_s``. From the viewers
of one scenario:

* latency p50/p95: over every viewer's samples pooled (each viewer plays the
  same number of seconds, so each weighs the same);
* startup: the median of the viewers' startup times;
* stalls: the sum over the viewers (count and seconds);
* viewer spread: at common instants (every ``step`` s while every viewer
  plays), the latest sample of each viewer no older than ``max_age``; the
  spread at an instant is the largest minus the smallest latency, reported
  as its median (p50) and 95th percentile over the instants. Different
  viewers of the same stream should see the same moment.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "percentile",
    "spread_series",
    "summarize",
    "headline_ratios",
    "ratio",
]

Series = Sequence[Sequence[float]]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100), linear interpolation; None without values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def spread_series(
    series: Sequence[Series], *, step: float = 0.5, max_age: float = 0.5
) -> list[tuple[float, float]]:
    """``[(wall_s, max - min latency), ...]`` at the instants every viewer has a fresh sample.

    Instants run every ``step`` seconds over the span every series covers; at
    each, each viewer's latest sample at or before it counts if it is at most
    ``max_age`` old. Fewer than two non-empty series give nothing.
    """
    live = [sorted((float(p[0]), float(p[1])) for p in s) for s in series if len(s) > 0]
    if len(live) < 2:
        return []
    begin = max(s[0][0] for s in live)
    end = min(s[-1][0] for s in live)
    walls = [[p[0] for p in s] for s in live]
    out: list[tuple[float, float]] = []
    t = begin
    while t <= end + 1e-9:
        values = []
        for s, w in zip(live, walls, strict=True):
            i = bisect.bisect_right(w, t + 1e-9) - 1
            if i >= 0 and t - s[i][0] <= max_age:
                values.append(s[i][1])
        if len(values) == len(live):
            out.append((t, max(values) - min(values)))
        t += step
    return out


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def summarize(viewers: Sequence[Mapping[str, Any]], key: str = "series") -> dict[str, Any]:
    """The figures of one scenario from its viewers' results (see the module docstring).

    ``key`` picks the series (``series``: from the pixels; ``hls_series``: hls.js's own
    estimate). Viewers with an error count in ``failed``; their samples still count.
    """
    pooled: list[float] = []
    startups: list[float] = []
    stalls = 0
    stall_s = 0.0
    failed = 0
    per_viewer: list[float | None] = []
    for v in viewers:
        values = [float(p[1]) for p in v.get(key) or []]
        pooled.extend(values)
        per_viewer.append(percentile(values, 50))
        summary = v.get("summary") or {}
        startup = _number(summary.get("startup_s"))
        if startup is not None:
            startups.append(startup)
        stalls += int(summary.get("stalls") or 0)
        stall_s += float(summary.get("stall_s") or 0.0)
        if v.get("error"):
            failed += 1
    spreads = [s for _, s in spread_series([v.get(key) or [] for v in viewers])]
    medians = [m for m in per_viewer if m is not None]
    return {
        "viewers": len(viewers),
        "failed": failed,
        "samples": len(pooled),
        "latency_p50_s": percentile(pooled, 50),
        "latency_p95_s": percentile(pooled, 95),
        "latency_mean_s": statistics.fmean(pooled) if pooled else None,
        "startup_s": statistics.median(startups) if startups else None,
        "startup_p25_s": percentile(startups, 25),
        "startup_p75_s": percentile(startups, 75),
        "stalls": stalls,
        "stall_s": stall_s,
        "spread_p50_s": percentile(spreads, 50),
        "spread_p95_s": percentile(spreads, 95),
        "spread_of_medians_s": (max(medians) - min(medians)) if len(medians) > 1 else None,
    }


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, or None when either is missing or b is not positive."""
    if a is None or b is None or b <= 0:
        return None
    return a / b


def headline_ratios(scenarios: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The closing note's ratios, from the scenarios' ``summary`` figures.

    * ``classic6_over_ll_h3``: latency p50 of classic HLS 6 s (over HTTP/2, the
      usual way it is served, and over HTTP/3) / LL-HLS over HTTP/3, per profile;
    * ``ours_over_hlsjs``: our latency p50 / hls.js's (barcode), same stream,
      profile and protocol;
    * ``zero_rtt_over_h2_startup``: startup of HTTP/3 + 0-RTT / cold HTTP/2, at
      ``mobile`` (100 ms RTT), per stream; ``zero_rtt_over_h3_startup`` the same
      against a cold HTTP/3 start (same transport: the handshake alone). From the
      ``startup`` trials when the plan ran them (``player`` is then ``startup``:
      medians of many starts), else from the viewers of the ``ours`` scenarios.
    """
    index: dict[tuple[str, str, str, str], Mapping[str, Any]] = {}
    for sc in scenarios:
        index[(sc["stream"], sc["profile"], sc["delivery"], sc["player"])] = sc["summary"]

    def fig(stream: str, profile: str, delivery: str, player: str, name: str) -> float | None:
        summary = index.get((stream, profile, delivery, player))
        return None if summary is None else _number(summary.get(name))

    profiles = list(dict.fromkeys(sc["profile"] for sc in scenarios))
    streams = list(dict.fromkeys(sc["stream"] for sc in scenarios))
    out: list[dict[str, Any]] = []
    for profile in profiles:
        ll = fig("ll", profile, "h3", "ours", "latency_p50_s")
        for classic_delivery in ("h2", "h3"):
            classic = fig("classic6", profile, classic_delivery, "ours", "latency_p50_s")
            value = ratio(classic, ll)
            if value is not None:
                out.append(
                    {
                        "kind": "classic6_over_ll_h3",
                        "profile": profile,
                        "stream": "ll",
                        "delivery": classic_delivery,
                        "numerator_s": classic,
                        "denominator_s": ll,
                        "ratio": value,
                    }
                )
    for stream in streams:
        for profile in profiles:
            for delivery in ("h2", "h3"):
                ours = fig(stream, profile, delivery, "ours", "latency_p50_s")
                theirs = fig(stream, profile, delivery, "hlsjs", "latency_p50_s")
                value = ratio(ours, theirs)
                if value is not None:
                    out.append(
                        {
                            "kind": "ours_over_hlsjs",
                            "profile": profile,
                            "stream": stream,
                            "delivery": delivery,
                            "numerator_s": ours,
                            "denominator_s": theirs,
                            "ratio": value,
                        }
                    )
    for kind, cold_delivery in (
        ("zero_rtt_over_h2_startup", "h2"),
        ("zero_rtt_over_h3_startup", "h3"),
    ):
        for stream in streams:
            source = "ours"
            zero = fig(stream, "mobile", "h3-0rtt", "startup", "startup_s")
            cold = fig(stream, "mobile", cold_delivery, "startup", "startup_s")
            if zero is not None and cold is not None:
                source = "startup"
            else:
                zero = fig(stream, "mobile", "h3-0rtt", "ours", "startup_s")
                cold = fig(stream, "mobile", cold_delivery, "ours", "startup_s")
            value = ratio(zero, cold)
            if value is not None:
                out.append(
                    {
                        "kind": kind,
                        "profile": "mobile",
                        "stream": stream,
                        "player": source,
                        "delivery": "h3-0rtt",
                        "numerator_s": zero,
                        "denominator_s": cold,
                        "ratio": value,
                    }
                )
    return out
