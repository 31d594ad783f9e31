"""`llhls bench control`: every rate policy over every shared trace, injected stalls, sync.

Runs the simulator (:mod:`llhls.lab.sim`) for our controller
(:class:`player.catchup.Controller`) and the baselines
(:mod:`llhls.lab.baselines`), all with the same ABR and base target:

* **traces** — one viewer per policy over every network trace in
  ``../shared/traces/network`` (the whole trace; ``--quick``: three traces,
  90 s each), RTT 80 ms on 3G (HSDPA) traces, 40 ms on broadband (FCC);
* **stalls** — a 5 Mbit/s link, the origin paused for 1, 2 and 4 s;
* **sync** — four viewers joining at different moments, RTTs 20-120 ms, one
  shared target: the latency spread between them.

Writes ``results.json``, PNG plots (when matplotlib is installed: the ``lab``
extra) and ``control.md``, a Markdown report; returns the results. Jobs run
in parallel processes; each is deterministic, so the figures do not depend
on the number of workers.
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from llhls.lab.baselines import BASELINES
from llhls.lab.control_stats import recovery, spread, viewer_stats
from llhls.lab.sim import RatePolicy, SimConfig, ViewerSpec, simulate
from llhls.lab.traces import Capacity, ConstantRate, load_trace
from player.catchup import CatchupConfig, Controller

__all__ = [
    "TracesMissing",
    "OURS",
    "POLICIES",
    "Job",
    "BenchResults",
    "default_traces_dir",
    "make_policy",
    "plan_jobs",
    "run_job",
    "run_control_bench",
    "render_markdown",
    "add_bench_parser",
    "run_bench_control",
]

logger = logging.getLogger(__name__)

OURS = "ours"
"""Name of our controller in the results."""
POLICIES: tuple[str, ...] = (OURS, *BASELINES)
"""Every policy, ours first."""
BASE_TARGET_S = 1.0
"""The base target latency of every policy."""
JOIN_S = 10.0
"""When the (first) viewer joins: the playlist has a few segments by then."""
STALL_AT_S = 40.0
"""Sim time of the injected origin pause."""
STALLS_S = (1.0, 2.0, 4.0)
"""Injected pause lengths."""
SYNC_RTTS = (0.02, 0.05, 0.09, 0.12)
"""RTTs of the sync viewers."""
SYNC_JOINS = (10.0, 11.37, 12.91, 14.53)
"""Join times of the sync viewers (different phases of the part grid)."""
SYNC_TARGET_S = 1.5
"""The shared target of the sync scenario."""
FRONTIER_TARGETS = (1.5, 2.0, 2.5)
"""Extra base targets ours runs at on the traces (``ours@T``): its latency/stall frontier."""


class TracesMissing(FileNotFoundError):
    """The shared network traces directory is missing (or holds no trace)."""

    def __init__(self, path: Path, why: str = "not found") -> None:
        super().__init__(
            f"network traces directory {why}: {path} "
            "(pass --traces DIR or set LLHLS_TRACES; the bench expects ../shared/traces/network "
            "beside the checkout)"
        )
        self.path = path


def default_traces_dir() -> Path:
    """``shared/traces/network`` beside the repository (``LLHLS_TRACES`` overrides)."""
    env = os.environ.get("LLHLS_TRACES")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "traces" / "network"


def make_policy(name: str, target_s: float = BASE_TARGET_S, *, sync: bool = False) -> RatePolicy:
    """A fresh policy by name, at base target ``target_s`` (``ours@T``: ours at ``T``)."""
    if name.startswith(OURS + "@"):
        target_s = float(name.split("@", 1)[1])
        name = OURS
    if name == OURS:
        return Controller(CatchupConfig(target_s=target_s, adapt_target=not sync))
    cls = BASELINES.get(name)
    if cls is None:
        raise ValueError(f"unknown policy {name!r}")
    return cls(target_s)


@dataclass(frozen=True, slots=True)
class _PolicyFactory:
    """A picklable policy builder."""

    name: str
    target_s: float
    sync: bool = False

    def __call__(self) -> RatePolicy:
        return make_policy(self.name, self.target_s, sync=self.sync)


@dataclass(frozen=True, slots=True)
class Job:
    """One simulation of the bench."""

    kind: Literal["trace", "stall", "sync"]
    """Scenario."""
    policy: str
    """Policy name."""
    seconds: float
    """Sim seconds after the (first) join."""
    trace: str | None = None
    """Trace file (``trace`` jobs)."""
    pause_s: float = 0.0
    """Origin pause (``stall`` jobs)."""
    rtt_s: float = 0.04
    """RTT (``trace`` and ``stall`` jobs)."""
    series: bool = False
    """Keep the time series for plots."""

    @property
    def label(self) -> str:
        """Short name of the scenario."""
        if self.kind == "trace":
            return Path(self.trace or "").name
        if self.kind == "stall":
            return f"pause {self.pause_s:g} s"
        return "sync"


def _capacity(job: Job) -> Capacity:
    if job.trace is not None:
        return load_trace(Path(job.trace))
    return ConstantRate(5e6)


def run_job(job: Job) -> dict[str, Any]:
    """Run one job; a JSON-friendly result (figures, and series when asked)."""
    started = time.perf_counter()
    startup = job.policy.split("@")[0] == OURS
    if job.kind == "sync":
        viewers = tuple(
            ViewerSpec(
                f"{job.policy}#{i}",
                _PolicyFactory(job.policy, SYNC_TARGET_S, sync=True),
                ConstantRate(5e6),
                rtt_s=rtt,
                join_s=join,
            )
            for i, (rtt, join) in enumerate(zip(SYNC_RTTS, SYNC_JOINS, strict=True))
        )
        config = SimConfig(duration_s=JOIN_S + job.seconds, viewers=viewers)
    else:
        viewer = ViewerSpec(
            job.policy,
            _PolicyFactory(job.policy, BASE_TARGET_S),
            _capacity(job),
            rtt_s=job.rtt_s,
            join_s=JOIN_S,
            startup_buffer=startup,
        )
        pauses = ((STALL_AT_S, job.pause_s),) if job.kind == "stall" else ()
        config = SimConfig(duration_s=JOIN_S + job.seconds, viewers=(viewer,), pauses=pauses)
    result = simulate(config)
    wall = time.perf_counter() - started
    out: dict[str, Any] = {
        "kind": job.kind,
        "policy": job.policy,
        "scenario": job.label,
        "sim_s": job.seconds * len(config.viewers),
        "wall_s": round(wall, 3),
        "events": result.events,
    }
    stats = [viewer_stats(v, config.tick_s) for v in result.viewers]
    out["stats"] = stats[0].as_dict()
    first = result.viewers[0]
    out["startup_extra_s"] = first.startup_extra_s
    if job.kind == "stall":
        rec = recovery(first, STALL_AT_S, job.pause_s)
        out["recovery"] = {
            "stalled": rec.stalled,
            "to_target_s": rec.to_target_s,
            "to_base_s": rec.to_base_s,
            "target_rise_s": round(rec.target_rise_s, 4),
        }
    if job.kind == "sync":
        last = JOIN_S + job.seconds
        mean, worst = spread(result.viewers, last - job.seconds / 3)
        out["spread"] = {"mean_s": round(mean, 4), "max_s": round(worst, 4)}
        out["viewers"] = [s.as_dict() for s in stats]
    if job.series:
        step = 1 if job.kind != "trace" else 10
        out["series"] = [
            {
                "t": [round(t, 2) for t in v.t[::step]],
                "latency": [None if math.isnan(x) else round(x, 4) for x in v.latency[::step]],
                "target": [round(x, 4) for x in v.target[::step]],
                "rate": [round(x, 4) for x in v.rate[::step]],
            }
            for v in result.viewers
        ]
    return out


def plan_jobs(
    quick: bool,
    traces_dir: Path,
    trace_seconds: float | None = None,
    frontier: Sequence[float] = FRONTIER_TARGETS,
) -> list[Job]:
    """The jobs of a full or ``quick`` bench (``trace_seconds`` caps each trace;
    ``frontier``: extra base targets for ours on the traces, none when quick)."""
    variants = () if quick else tuple(f"{OURS}@{t:g}" for t in frontier)
    files = sorted(p for p in traces_dir.rglob("*") if p.is_file()) if traces_dir.is_dir() else []
    if quick:
        picks = [f for f in files if "hsdpa" in f.parts][:2] + [
            f for f in files if "fcc" in f.parts
        ][:1]
        files = picks
    jobs: list[Job] = []
    for i, path in enumerate(files):
        seconds = 90.0 if quick else load_trace(path).period_s
        if trace_seconds is not None:
            seconds = min(seconds, trace_seconds)
        rtt = 0.08 if "hsdpa" in path.parts else 0.04
        for policy in POLICIES:
            jobs.append(Job("trace", policy, seconds, str(path), rtt_s=rtt, series=i == 0))
        for policy in variants:
            jobs.append(Job("trace", policy, seconds, str(path), rtt_s=rtt))
    stall_s = 45.0 if quick else 60.0
    for pause in STALLS_S:
        for policy in POLICIES:
            jobs.append(Job("stall", policy, stall_s, pause_s=pause, series=pause == 2.0))
    for policy in POLICIES:
        jobs.append(Job("sync", policy, 40.0 if quick else 90.0, series=True))
    return jobs


@dataclass(slots=True)
class BenchResults:
    """Everything the bench measured."""

    quick: bool
    """Whether it was a quick run."""
    jobs: list[dict[str, Any]] = field(default_factory=list)
    """One result per job."""
    summary: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per policy: aggregate figures."""
    checks: dict[str, Any] = field(default_factory=dict)
    """The done-when checks of issue 4 (ours against the baselines)."""
    wall_s: float = 0.0
    """Wall seconds of the whole bench."""
    sim_s: float = 0.0
    """Simulated viewer-seconds."""

    def to_json(self) -> dict[str, Any]:
        """The ``results.json`` object."""
        return {
            "quick": self.quick,
            "wall_s": round(self.wall_s, 2),
            "sim_s": round(self.sim_s, 1),
            "summary": self.summary,
            "checks": self.checks,
            "jobs": self.jobs,
        }


def _summarise(jobs: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    summary: dict[str, dict[str, Any]] = {}
    names = list(POLICIES) + sorted({j["policy"] for j in jobs} - set(POLICIES))
    for policy in names:
        mine = [j for j in jobs if j["policy"] == policy]
        traces = [j["stats"] for j in mine if j["kind"] == "trace"]
        row: dict[str, Any] = {}
        if traces:
            seconds = sum(s["seconds"] for s in traces)
            stall = sum(s["stall_s"] for s in traces)
            played = seconds - stall
            row.update(
                traces=len(traces),
                mean_latency_s=sum(s["mean_latency_s"] * s["seconds"] for s in traces) / seconds,
                p95_latency_s=max(s["p95_latency_s"] for s in traces),
                mean_p95_latency_s=sum(s["p95_latency_s"] for s in traces) / len(traces),
                stall_ratio=stall / max(stall + played, 1e-9),
                rate_off_s=sum(s["rate_off_s"] for s in traces),
                rate_off_share=sum(s["rate_off_s"] for s in traces) / seconds,
                max_rate=max(s["max_rate"] for s in traces),
                min_rate=min(s["min_rate"] for s in traces),
                max_rate_dev=max(s["max_rate_dev"] for s in traces),
                reversals_per_min=sum(s["reversals_per_min"] * s["seconds"] for s in traces)
                / seconds,
                changes_per_min=sum(s["changes_per_min"] * s["seconds"] for s in traces) / seconds,
                stalls_after_catchup=sum(s["stalls_after_catchup"] for s in traces),
                stalls_caused_by_catchup=sum(s["stalls_caused_by_catchup"] for s in traces),
                catchups=sum(s["catchups"] for s in traces),
                mean_bitrate_bps=sum(s["mean_bitrate_bps"] * s["seconds"] for s in traces)
                / seconds,
                jumps=sum(s["jumps"] for s in traces),
            )
        for j in mine:
            if j["kind"] == "stall":
                row[f"recovery_{j['scenario']}"] = j["recovery"]
                for key in ("stalls_after_catchup", "stalls_caused_by_catchup"):
                    row[f"{key}_stall_runs"] = row.get(f"{key}_stall_runs", 0) + j["stats"][key]
            elif j["kind"] == "sync":
                row["spread"] = j["spread"]
        summary[policy] = {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}
    return summary


def _checks(summary: dict[str, dict[str, Any]]) -> dict[str, Any]:
    ours = summary.get(OURS, {})
    others = {p: summary[p] for p in POLICIES if p != OURS and p in summary}
    checks: dict[str, Any] = {}
    if "stall_ratio" in ours:
        checks["stall_ratio_no_worse"] = {
            p: ours["stall_ratio"] <= s["stall_ratio"] + 1e-12 for p, s in others.items()
        }
        checks["mean_latency_no_worse"] = {
            p: ours["mean_latency_s"] <= s["mean_latency_s"] + 1e-12 for p, s in others.items()
        }
        checks["max_rate_ok"] = ours["max_rate"] <= 1.25 + 1e-9
        for key in ("stalls_after_catchup", "stalls_caused_by_catchup"):
            checks[key] = ours[key] + ours.get(f"{key}_stall_runs", 0)
    rec = ours.get("recovery_pause 2 s")
    if rec is not None:
        checks["recovery_2s_to_target_s"] = rec["to_target_s"]
        checks["recovery_2s_ok"] = rec["to_target_s"] is not None and rec["to_target_s"] <= 10.0
    if "spread" in ours:
        checks["sync_spread_ok"] = ours["spread"]["max_s"] <= 0.1 + 1e-9
    return checks


def run_control_bench(
    out_dir: Path,
    quick: bool,
    *,
    traces_dir: Path | None = None,
    workers: int | None = None,
    trace_seconds: float | None = None,
) -> BenchResults:
    """Run the bench, write ``results.json``, ``control.md`` and plots into ``out_dir``.

    Raises :class:`TracesMissing` (before running anything) when ``traces_dir`` (default
    :func:`default_traces_dir`) is not a directory or holds no trace file."""
    started = time.perf_counter()
    traces_dir = traces_dir or default_traces_dir()
    if not traces_dir.is_dir():
        raise TracesMissing(traces_dir)
    jobs = plan_jobs(quick, traces_dir, trace_seconds)
    if not any(j.kind == "trace" for j in jobs):
        raise TracesMissing(traces_dir, "holds no trace file")
    workers = workers or min(len(jobs), os.cpu_count() or 1)
    # longest first, so the pool is not left waiting on one long trace at the end
    order = sorted(range(len(jobs)), key=lambda i: -jobs[i].seconds)
    done: dict[int, dict[str, Any]] = {}
    if workers <= 1:
        for i in order:
            done[i] = run_job(jobs[i])
    else:
        context = multiprocessing.get_context("spawn")  # no fork of a threaded parent
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = {i: pool.submit(run_job, jobs[i]) for i in order}
            for i, fut in futures.items():
                done[i] = fut.result()
    results = BenchResults(quick=quick, jobs=[done[i] for i in range(len(jobs))])
    results.summary = _summarise(results.jobs)
    results.checks = _checks(results.summary)
    results.wall_s = time.perf_counter() - started
    results.sim_s = sum(j["sim_s"] for j in results.jobs)
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = _plots(results, out_dir)
    (out_dir / "results.json").write_text(json.dumps(results.to_json(), indent=1) + "\n")
    (out_dir / "control.md").write_text(render_markdown(results, plots))
    return results


# -- report ---------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "never"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def render_markdown(results: BenchResults, plots: Sequence[str] = ()) -> str:
    """The Markdown report: summary table, checks, per-trace table, plots."""
    s = results.summary
    lines = [
        "## Latency control (`llhls bench control" + (" --quick" if results.quick else "") + "`)",
        "",
        f"Simulated {results.sim_s:,.0f} viewer-seconds in {results.wall_s:.0f} s of wall time "
        f"({results.sim_s / max(results.wall_s, 1e-9):,.0f}x real time over all workers). "
        f"Base target {BASE_TARGET_S:g} s for every policy; same ABR for all.",
        "",
        "| policy | mean latency (s) | p95 latency (s, mean / worst trace) | stall ratio "
        "| s at rate != 1 (share) | max abs(rate-1) | reversals / min | stalls <= 5 s after "
        "catch-up (caused by it) | back within 50 ms after 1 / 2 / 4 s pause (s) "
        "| viewer spread mean / max (s) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for policy in list(s):
        row = s.get(policy, {})
        recs = []
        for pause in STALLS_S:
            rec = row.get(f"recovery_pause {pause:g} s")
            recs.append("n/a" if rec is None else _fmt(rec["to_target_s"], 1))
        sp = row.get("spread", {})
        after = row.get("stalls_after_catchup", 0) + row.get("stalls_after_catchup_stall_runs", 0)
        caused = row.get("stalls_caused_by_catchup", 0) + row.get(
            "stalls_caused_by_catchup_stall_runs", 0
        )
        lines.append(
            f"| {policy} | {_fmt(row.get('mean_latency_s'))} "
            f"| {_fmt(row.get('mean_p95_latency_s'))} / {_fmt(row.get('p95_latency_s'))} "
            f"| {_fmt(row.get('stall_ratio'), 4)} "
            f"| {_fmt(row.get('rate_off_s'), 0)} "
            f"({_fmt(100 * row.get('rate_off_share', 0.0), 1)} %) "
            f"| {_fmt(row.get('max_rate_dev'))} | {_fmt(row.get('reversals_per_min'), 2)} "
            f"| {after} ({caused}) | {' / '.join(recs)} "
            f"| {_fmt(sp.get('mean_s'))} / {_fmt(sp.get('max_s'))} |"
        )
    lines += ["", "Checks (ours against every baseline):", ""]
    for key, value in results.checks.items():
        lines.append(f"- `{key}`: {json.dumps(value)}")
    lines += [
        "",
        "Per trace (mean latency s / stall ratio):",
        "",
        "| trace | " + " | ".join(POLICIES) + " |",
        "| --- |" + " ---: |" * len(POLICIES),
    ]
    traces = sorted({j["scenario"] for j in results.jobs if j["kind"] == "trace"})
    for trace in traces:
        cells = []
        for policy in POLICIES:
            job = next(
                (j for j in results.jobs if j["scenario"] == trace and j["policy"] == policy), None
            )
            st = job["stats"] if job else {}
            cells.append(f"{_fmt(st.get('mean_latency_s'), 2)} / {_fmt(st.get('stall_ratio'), 4)}")
        lines.append(f"| {trace} | " + " | ".join(cells) + " |")
    if plots:
        lines += [""] + [f"![{Path(p).stem}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def _plots(results: BenchResults, out_dir: Path) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed (pip install '.[lab]'): no plots")
        return []
    names: list[str] = []
    for kind, title, fname in (
        ("trace", "first trace", "trace_latency.png"),
        ("stall", "origin paused 2 s at t=40 s", "stall_2s.png"),
    ):
        jobs = [j for j in results.jobs if j["kind"] == kind and "series" in j]
        if not jobs:
            continue
        fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
        for j in jobs:
            series = j["series"][0]
            lat = [math.nan if x is None else x for x in series["latency"]]
            ax1.plot(series["t"], lat, label=j["policy"], linewidth=1)
            ax2.plot(series["t"], series["rate"], label=j["policy"], linewidth=1)
        ax1.set_ylabel("latency (s)")
        ax1.set_title(f"{title}: {jobs[0]['scenario']}")
        ax1.legend(fontsize=8)
        ax2.set_ylabel("rate")
        ax2.set_xlabel("sim time (s)")
        fig.tight_layout()
        fig.savefig(out_dir / fname, dpi=90)
        plt.close(fig)
        names.append(fname)
    sync = next((j for j in results.jobs if j["kind"] == "sync" and j["policy"] == OURS), None)
    if sync is not None and "series" in sync:
        fig, ax = plt.subplots(figsize=(10, 4))
        for i, series in enumerate(sync["series"]):
            lat = [math.nan if x is None else x for x in series["latency"]]
            ax.plot(series["t"], lat, label=f"viewer {i}", linewidth=1)
        ax.axhline(SYNC_TARGET_S, color="grey", linestyle=":")
        ax.set_ylabel("latency (s)")
        ax.set_xlabel("sim time (s)")
        ax.set_title("viewer sync (ours), shared target")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out_dir / "sync.png", dpi=90)
        plt.close(fig)
        names.append("sync.png")
    rows = [(p, r) for p, r in results.summary.items() if "stall_ratio" in r]
    if rows:
        fig, ax = plt.subplots(figsize=(6, 4))
        ours = sorted(
            (r["mean_latency_s"], 100 * r["stall_ratio"])
            for p, r in rows
            if p.split("@")[0] == OURS
        )
        if len(ours) > 1:
            ax.plot([x for x, _ in ours], [y for _, y in ours], color="grey", linewidth=0.8)
        for p, row in rows:
            ax.scatter(row["mean_latency_s"], 100 * row["stall_ratio"], label=p)
        ax.set_xlabel("mean latency (s)")
        ax.set_ylabel("stall ratio (%)")
        ax.set_title("shared traces: latency vs stalls (lower left is better)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out_dir / "tradeoff.png", dpi=90)
        plt.close(fig)
        names.append("tradeoff.png")
    return names


# -- CLI (re-exported from the light :mod:`llhls.lab.control_cli`) ----------------------------

from llhls.lab.control_cli import add_bench_parser, run_bench_control  # noqa: E402
