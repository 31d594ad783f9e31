"""The latency lab's pure parts: plan, profiles, traces directory, figures, report."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from llhls.errors import ConfigError
from llhls.lab.impair import ConstantRate
from llhls.lab.latency import add_latency_parser
from llhls.lab.latency_browser import tab_result
from llhls.lab.latency_plan import (
    DELIVERIES,
    PROFILES,
    STREAMS,
    TRACES_ENV,
    build_plan,
    link_configs,
    split_names,
    traces_dir,
)
from llhls.lab.latency_report import DOCS_BEGIN, DOCS_END, render_report, write_docs
from llhls.lab.latency_stats import headline_ratios, percentile, spread_series, summarize

# --------------------------------------------------------------------------- plan


def test_full_plan_is_the_whole_product() -> None:
    plan = build_plan()
    ours = [sc for sc in plan.scenarios if sc.player == "ours"]
    theirs = [sc for sc in plan.scenarios if sc.player == "hlsjs"]
    assert len(ours) == len(STREAMS) * len(DELIVERIES) * len(PROFILES) == 75
    assert len(theirs) == len(STREAMS) * 2 * len(PROFILES) == 30
    assert {sc.delivery for sc in theirs} == {"h2", "h3"}
    assert len({sc.key for sc in plan.scenarios}) == len(plan.scenarios)
    # LL-HLS runs first: its stream is ready in seconds
    assert plan.scenarios[0].stream == "ll"
    assert plan.viewers == 3 and plan.browser_viewers == 2


def test_quick_plan() -> None:
    plan = build_plan(quick=True)
    assert set(plan.streams) == {"ll", "classic6"}
    assert plan.profiles == ("lan", "mobile")
    assert {sc.delivery for sc in plan.scenarios if sc.player == "ours"} == {
        "h2",
        "h3",
        "h3-0rtt",
    }
    browser = [sc for sc in plan.scenarios if sc.player == "hlsjs"]
    assert [sc.key for sc in browser] == ["ll/lan/h3/hlsjs"]
    assert build_plan(quick=True, browser=False).scenarios[-1].player == "ours"
    # startup trials of LL-HLS at 100 ms RTT, inside the LL-HLS block (its stream closes after)
    trials = [sc for sc in plan.scenarios if sc.player == "startup"]
    assert [sc.key for sc in trials] == [
        "ll/mobile/h2/startup",
        "ll/mobile/h3/startup",
        "ll/mobile/h3-0rtt/startup",
    ]
    assert plan.startup_trials == 4
    last_ll = max(i for i, sc in enumerate(plan.scenarios) if sc.stream == "ll")
    assert plan.scenarios[last_ll].player == "startup"
    assert not [
        sc for sc in build_plan(quick=True, startup_trials=0).scenarios if sc.player == "startup"
    ]
    assert not [
        sc for sc in build_plan(profiles=["lan"]).scenarios if sc.player == "startup"
    ]  # no 100 ms RTT profile: no trials
    estimate = sum(plan.estimate_s(sc) * plan.weight(sc) for sc in plan.scenarios)
    assert estimate / plan.parallel < 120  # well inside the 3 minutes


def test_plan_rejects_bad_values() -> None:
    with pytest.raises(ConfigError, match="unknown profile"):
        build_plan(profiles=["moon"])
    with pytest.raises(ConfigError, match="--viewers"):
        build_plan(viewers=0)
    with pytest.raises(ConfigError, match="--duration"):
        build_plan(duration=-1)
    with pytest.raises(ConfigError, match="unknown protocol"):
        split_names("h2,h4", list(DELIVERIES), "protocol")
    assert split_names(["lan,mobile", "lan"], list(PROFILES), "profile") == ["lan", "mobile"]
    assert split_names(None, list(PROFILES), "profile") == []


def test_profiles_as_relay_settings() -> None:
    up, down = link_configs(PROFILES["mobile"])
    assert up.delay_ms == down.delay_ms == 50 and up.loss == down.loss == 0.01
    up, down = link_configs(PROFILES["bad"])
    assert up.delay_ms == 150 and down.burst is not None
    assert down.burst.mean_loss() == pytest.approx(0.03, rel=1e-6)
    up, down = link_configs(PROFILES["lan"])
    assert up.delay_ms + down.delay_ms == 2 and down.rate is None
    with pytest.raises(ConfigError, match="trace"):
        link_configs(PROFILES["trace"])
    up, down = link_configs(PROFILES["trace"], ConstantRate(2.0))
    assert down.rate is not None and up.rate is None


def test_traces_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="no network traces at"):
        traces_dir(tmp_path)
    (tmp_path / "network" / "hsdpa").mkdir(parents=True)
    assert traces_dir(tmp_path) == tmp_path
    monkeypatch.setenv(TRACES_ENV, str(tmp_path))
    assert traces_dir() == tmp_path
    monkeypatch.setenv(TRACES_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match=f"\\${TRACES_ENV}"):
        traces_dir()


# --------------------------------------------------------------------------- figures


def test_percentile() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([0.0, 10.0], 95) == pytest.approx(9.5)


def _series(t0: float, seconds: float, latency: float) -> list[list[float]]:
    return [[t0 + i / 10, latency] for i in range(int(seconds * 10))]


def test_spread_at_common_instants() -> None:
    a = _series(100.0, 10, 1.0)
    b = _series(103.0, 10, 1.3)
    spread = spread_series([a, b])
    assert spread and all(s == pytest.approx(0.3) for _, s in spread)
    assert spread[0][0] == pytest.approx(103.0)
    assert spread[-1][0] <= 110.0
    # no overlap, or a single viewer: nothing to compare
    assert spread_series([a, _series(200.0, 5, 2.0)]) == []
    assert spread_series([a]) == []
    # a viewer whose samples stop (stalled reading) does not count with stale values
    c = a[:20] + a[-5:]
    assert all(t < 102.5 or t > 109 for t, _ in spread_series([a, c]))


def _viewer(latencies: list[float], startup: float, stalls: int = 0) -> dict[str, Any]:
    return {
        "series": [[100.0 + i / 10, v] for i, v in enumerate(latencies)],
        "summary": {"startup_s": startup, "stalls": stalls, "stall_s": 0.5 * stalls},
        "error": None,
    }


def test_summarize_a_scenario() -> None:
    viewers = [_viewer([1.0] * 50, 0.4), _viewer([1.2] * 50, 0.6, stalls=1), _viewer([], 0.9)]
    viewers[2]["error"] = "PlayerError: no playback"
    s = summarize(viewers)
    assert s["viewers"] == 3 and s["failed"] == 1 and s["samples"] == 100
    assert s["latency_p50_s"] == pytest.approx(1.1)
    assert s["latency_p95_s"] == pytest.approx(1.2)
    assert s["startup_s"] == pytest.approx(0.6)
    assert s["stalls"] == 1 and s["stall_s"] == pytest.approx(0.5)
    assert s["spread_p50_s"] == pytest.approx(0.2)
    assert s["spread_of_medians_s"] == pytest.approx(0.2)
    empty = summarize([])
    assert empty["latency_p50_s"] is None and empty["spread_p50_s"] is None


def _scenario(
    stream: str, profile: str, delivery: str, player: str, p50: float, startup: float
) -> dict[str, Any]:
    return {
        "key": f"{stream}/{profile}/{delivery}/{player}",
        "stream": stream,
        "profile": profile,
        "delivery": delivery,
        "player": player,
        "start_wall": 100.0,
        "error": None,
        "checks": [],
        "summary": {
            "viewers": 2,
            "latency_p50_s": p50,
            "latency_p95_s": p50 * 1.1,
            "startup_s": startup,
            "stalls": 0,
            "stall_s": 0.0,
            "spread_p50_s": 0.1,
            "samples": 10,
        },
        "hls_summary": {"latency_p50_s": p50 * 0.9} if player == "hlsjs" else None,
        "viewers": [_viewer([p50] * 10, startup), _viewer([p50 + 0.1] * 10, startup)],
    }


def _results() -> dict[str, Any]:
    scenarios = [
        _scenario("ll", "lan", "h3", "ours", 1.0, 0.3),
        _scenario("ll", "lan", "h3", "hlsjs", 1.25, 0.6),
        _scenario("classic6", "lan", "h2", "ours", 20.0, 0.5),
        _scenario("classic6", "lan", "h3", "ours", 21.0, 0.4),
        _scenario("ll", "mobile", "h2", "ours", 1.2, 1.0),
        _scenario("ll", "mobile", "h3-0rtt", "ours", 1.1, 0.6),
    ]
    return {
        "machine": "test machine",
        "date": "2030-01-01 00:00 UTC",
        "elapsed_s": 100.0,
        "plan": {
            "quick": True,
            "duration_s": 8,
            "viewers": 2,
            "browser_viewers": 2,
            "stagger_s": 2,
            "parallel": 3,
            "picture": "640x360",
        },
        "streams": {"classic6": "classic HLS 6 s", "ll": "LL-HLS"},
        "profiles": {"lan": "LAN: 2 ms RTT", "mobile": "mobile: 100 ms RTT, 1 % loss"},
        "deliveries": {k: d.label for k, d in DELIVERIES.items()},
        "trace_files": {},
        "scenarios": scenarios,
        "headlines": headline_ratios(scenarios),
    }


def test_startup_trials_take_over_the_0rtt_headline() -> None:
    results = _results()
    scenarios = [
        *results["scenarios"],
        _scenario("ll", "mobile", "h2", "startup", 1.0, 0.8),
        _scenario("ll", "mobile", "h3", "startup", 1.0, 0.7),
        _scenario("ll", "mobile", "h3-0rtt", "startup", 1.0, 0.4),
    ]
    heads = {h["kind"]: h for h in headline_ratios(scenarios)}
    assert heads["zero_rtt_over_h2_startup"]["ratio"] == pytest.approx(0.5)
    assert heads["zero_rtt_over_h2_startup"]["player"] == "startup"
    assert heads["zero_rtt_over_h3_startup"]["ratio"] == pytest.approx(0.4 / 0.7)
    results["scenarios"] = scenarios
    results["headlines"] = headline_ratios(scenarios)
    results["plan"]["startup_trials"] = 2
    text = render_report(results, [])
    assert "## Startup trials" in text and "| HTTP/3 + 0-RTT | 2 | 0.40 |" in text
    assert "**0.50x** (median of 2 starts each)" in text


def test_headline_ratios() -> None:
    heads = {(h["kind"], h["profile"], h["delivery"]): h for h in _results()["headlines"]}
    assert heads[("classic6_over_ll_h3", "lan", "h2")]["ratio"] == pytest.approx(20.0)
    assert heads[("classic6_over_ll_h3", "lan", "h3")]["ratio"] == pytest.approx(21.0)
    assert heads[("ours_over_hlsjs", "lan", "h3")]["ratio"] == pytest.approx(0.8)
    assert heads[("zero_rtt_over_h2_startup", "mobile", "h3-0rtt")]["ratio"] == pytest.approx(0.6)
    assert ("classic6_over_ll_h3", "mobile", "h2") not in heads  # not measured


def test_report_has_every_scenario_and_the_headlines() -> None:
    text = render_report(_results(), ["latency_cdf"])
    assert "20.0x" in text and "0.80x" in text and "0.60x" in text
    assert "| LL-HLS | HTTP/3 | 1.00 | 1.10 | 0.30 | 0 | 0.10 | 1.25 | 1.12 |" in text
    assert "| classic HLS 6 s | HTTP/2 | 20.00 |" in text
    assert "![latency_cdf](latency_cdf.png)" in text
    assert "test machine" in text and "2030-01-01" in text


def test_plots_and_docs_section(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from llhls.lab.latency_report import write_plots

    results = _results()
    out = tmp_path / "out"
    out.mkdir()
    names = write_plots(results, out)
    assert set(names) == {"latency_p50", "latency_cdf", "startup", "latency_time", "viewer_spread"}
    for name in names:
        assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    docs = tmp_path / "docs" / "benchmarks.md"
    docs.parent.mkdir()
    docs.write_text("# Benchmarks\n\nintro\n\n## Spine\n\nfigures\n")
    write_docs(results, out, docs)
    write_docs(results, out, docs)  # a second run replaces the section
    text = docs.read_text()
    assert text.count(DOCS_BEGIN) == 1 and text.count(DOCS_END) == 1
    assert text.startswith("# Benchmarks\n\nintro\n\n## Spine\n\nfigures\n")
    assert "![latency_cdf](img/latency-latency_cdf.png)" in text
    assert (docs.parent / "img" / "latency-latency_cdf.png").exists()


# --------------------------------------------------------------------------- hls.js tab


def test_tab_result_from_page_stats() -> None:
    samples = [
        {"t": 0.5 + i / 10, "wall": 1_000_000 + 100 * i, "barcodeLatency": None, "hlsLatency": None}
        for i in range(5)
    ] + [
        {"t": 1.0 + i / 10, "wall": 1_000_500 + 100 * i, "barcodeLatency": 1.2, "hlsLatency": 1.1}
        for i in range(10)
    ]
    stats = {
        "firstFrameSeconds": 1.0,
        "samples": samples,
        "protocols": {"h3": 40, "unknown": 1},
        "protocol": "h3",
        "stalls": 1,
        "stallSeconds": 0.25,
        "fatalErrors": [],
        "errors": [],
        "barcodeReads": 10,
        "barcodeMisses": 0,
    }
    r = tab_result(stats, 999.0, None)
    assert r["error"] is None and len(r["series"]) == 10 and len(r["hls_series"]) == 10
    assert r["series"][0] == [1000.5, 1.2]
    assert r["summary"]["startup_s"] == 1.0 and r["summary"]["stalls"] == 1
    assert tab_result({}, 1.0, None)["error"] == "hls.js never played"
    fatal = dict(stats, fatalErrors=[{"details": "manifestLoadError"}])
    assert "manifestLoadError" in str(tab_result(fatal, 1.0, None)["error"])
    json.dumps(r)


# --------------------------------------------------------------------------- CLI


def test_cli_parser() -> None:
    parser = argparse.ArgumentParser(prog="llhls bench")
    add_latency_parser(parser.add_subparsers(dest="bench"))
    args = parser.parse_args(
        ["latency", "--quick", "--out", "x", "--profiles", "lan", "--duration", "5"]
    )
    assert args.quick and args.out == Path("x") and args.profiles == "lan"
    assert args.duration == 5.0 and not args.no_browser and args.docs is None
