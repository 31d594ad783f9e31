"""`llhls bench control --quick` runs in well under a minute and writes its outputs."""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path

import pytest

from llhls.lab.control_bench import (
    OURS,
    POLICIES,
    TracesMissing,
    add_bench_parser,
    default_traces_dir,
    make_policy,
    plan_jobs,
    run_bench_control,
    run_control_bench,
)
from player.catchup import Controller


def test_plan_of_a_quick_run() -> None:
    jobs = plan_jobs(True, default_traces_dir())
    kinds = {j.kind for j in jobs}
    assert {"stall", "sync"} <= kinds
    if default_traces_dir().is_dir():
        assert sum(j.kind == "trace" for j in jobs) == 3 * len(POLICIES)
    assert all(j.policy in POLICIES for j in jobs)
    full = plan_jobs(False, default_traces_dir())
    assert any(j.policy.startswith(OURS + "@") for j in full) or not default_traces_dir().is_dir()


def test_make_policy() -> None:
    assert isinstance(make_policy(OURS), Controller)
    tuned = make_policy("ours@2.5")
    assert isinstance(tuned, Controller) and tuned.config.target_s == 2.5
    with pytest.raises(ValueError):
        make_policy("vlc-like")


def test_quick_bench_via_the_cli_hooks(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="bench")
    add_bench_parser(sub)
    out = tmp_path / "control"
    report = tmp_path / "benchmarks.md"
    args = parser.parse_args(["control", "--quick", "--out", str(out), "--report", str(report)])
    started = time.perf_counter()
    assert run_bench_control(args) == 0
    assert time.perf_counter() - started < 60
    data = json.loads((out / "results.json").read_text())
    assert data["quick"] is True
    assert set(POLICIES) <= set(data["summary"])
    checks = data["checks"]
    assert checks["max_rate_ok"] is True
    assert checks["recovery_2s_ok"] is True
    assert checks["sync_spread_ok"] is True
    assert isinstance(checks["stalls_caused_by_catchup"], int)
    text = (out / "control.md").read_text()
    assert "| ours |" in text and "| dash.js-like |" in text
    assert report.read_text().strip() == text.strip()
    if importlib.util.find_spec("matplotlib") is not None:
        for name in ("stall_2s.png", "sync.png"):
            assert (out / name).stat().st_size > 1000


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_missing_traces_fail_clearly_with_exit_code_2(
    tmp_path: Path, make: str, capsys: pytest.CaptureFixture[str]
) -> None:
    traces = tmp_path / "no-such-traces"
    if make == "empty":
        traces.mkdir()
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="bench")
    add_bench_parser(sub)
    out = tmp_path / "out"
    args = parser.parse_args(["control", "--quick", "--out", str(out), "--traces", str(traces)])
    started = time.perf_counter()
    assert run_bench_control(args) == 2
    assert time.perf_counter() - started < 5  # fails before simulating anything
    err = capsys.readouterr().err
    assert str(traces) in err and "traces directory" in err
    assert not (out / "results.json").exists()
    with pytest.raises(TracesMissing, match="no-such-traces"):
        run_control_bench(out, True, traces_dir=traces)
