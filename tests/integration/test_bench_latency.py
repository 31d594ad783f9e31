"""`llhls bench latency --quick` end to end: files written, figures sane.

LL-HLS and classic HLS 6 s on the lan and mobile profiles, our player over
HTTP/2, HTTP/3 and HTTP/3 + 0-RTT, hls.js over HTTP/3 once (when Chromium is
installed). Under 3 minutes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import pytest

from llhls.lab.browser import chromium_path
from llhls.lab.latency import add_latency_parser, run_bench_latency

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]


def _find(results: dict[str, Any], key: str) -> dict[str, Any]:
    for sc in results["scenarios"]:
        if sc["key"] == key:
            summary: dict[str, Any] = sc["summary"]
            return summary
    raise AssertionError(f"no scenario {key}")


def test_quick_latency_bench(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_latency_parser(parser.add_subparsers(dest="bench"))
    argv = ["latency", "--quick", "--out", str(tmp_path / "lab")]
    browser = chromium_path() is not None
    if not browser:
        argv.append("--no-browser")
    lines: list[str] = []
    t0 = time.monotonic()
    status = run_bench_latency(parser.parse_args(argv), announce=lines.append)
    took = time.monotonic() - t0
    out = tmp_path / "lab"
    results = json.loads((out / "results.json").read_text())
    report = (out / "report.md").read_text()

    assert took < 180, f"--quick took {took:.0f} s"
    for name in ("latency_p50", "latency_cdf", "startup", "latency_time", "viewer_spread"):
        assert (out / f"{name}.png").stat().st_size > 1000
    # progress: one line per scenario with counts, elapsed and ETA
    progress = [line for line in lines if line.startswith("[")]
    assert len(progress) == len(results["scenarios"]) == (16 if browser else 15)
    assert progress[-1].startswith(f"[{len(progress)}/{len(progress)}]") and "ETA" in progress[-1]

    ll = _find(results, "ll/lan/h2/ours")
    classic = _find(results, "classic6/lan/h2/ours")
    assert ll["latency_p50_s"] is not None and classic["latency_p50_s"] is not None
    # LL-HLS sits around a second behind live, classic 6 s segments near 20 s
    assert 0.2 < ll["latency_p50_s"] < 3.0
    assert 10.0 < classic["latency_p50_s"] < 40.0
    assert ll["latency_p50_s"] * 4 < classic["latency_p50_s"]
    assert ll["stalls"] == 0 and ll["viewers"] == 2 and ll["failed"] == 0
    assert ll["spread_p50_s"] is not None and 0 <= ll["spread_p50_s"] < 2.0
    assert 0 < ll["startup_s"] < 5
    for key in ("ll/lan/h3/ours", "ll/mobile/h2/ours", "ll/lan/h3-0rtt/ours"):
        s = _find(results, key)
        assert s["latency_p50_s"] is not None and s["latency_p50_s"] < 8.0, key
    zero = next(sc for sc in results["scenarios"] if sc["key"] == "ll/lan/h3-0rtt/ours")
    assert all(v["summary"]["zero_rtt"] is True for v in zero["viewers"])
    assert all(v["summary"]["latency_source"] == "pixels" for v in zero["viewers"])
    # the startup trials: 4 starts per delivery, 0-RTT accepted on each of its own
    trials = next(sc for sc in results["scenarios"] if sc["key"] == "ll/mobile/h3-0rtt/startup")
    assert len(trials["viewers"]) == 4
    assert all(v["summary"]["zero_rtt"] is True for v in trials["viewers"])
    assert "Startup trials" in report
    kinds = {h["kind"] for h in results["headlines"]}
    assert {"classic6_over_ll_h3", "zero_rtt_over_h2_startup"} <= kinds
    zero_head = next(h for h in results["headlines"] if h["kind"] == "zero_rtt_over_h2_startup")
    assert zero_head["player"] == "startup"
    assert "Headline ratios" in report and "| LL-HLS | HTTP/2 |" in report
    if browser:
        hlsjs = _find(results, "ll/lan/h3/hlsjs")
        assert hlsjs["latency_p50_s"] is not None and 0.2 < hlsjs["latency_p50_s"] < 5.0
        sc = next(sc for sc in results["scenarios"] if sc["key"] == "ll/lan/h3/hlsjs")
        assert sc["hls_summary"]["latency_p50_s"] is not None
        assert all(set(v["summary"]["protocols"]) - {"unknown"} == {"h3"} for v in sc["viewers"])
        assert "ours_over_hlsjs" in kinds
    assert status == 0
