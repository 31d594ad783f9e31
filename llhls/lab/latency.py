"""`llhls bench latency`: classic HLS vs LL-HLS across HTTP/1.1, HTTP/2, HTTP/3 and 0-RTT.

One run measures every scenario of a :class:`~llhls.lab.latency_plan.Plan`
(stream kind x network profile x delivery x player) on the same machine:

* **Streams**: one :class:`~llhls.apps.live.LiveApp` per stream kind (classic
  HLS 6 s, classic HLS 2 s, LL-HLS), all from the test source at 640x360
  (360p + 180p + AAC), started together at the beginning and each closed once
  its scenarios are done. Every scenario of a kind shares its origin.
* **Network**: every viewer gets its own impairment relay
  (:func:`~llhls.lab.relay.start_relay`, UDP and TCP on one port) in front of
  the origin, set up from the profile, started with the scenario: its own
  access link, so viewers never share a rate limit, and every delivery of a
  profile sees the same trace from the same point.
* **Viewers**: ``viewers`` of our players join ``stagger`` seconds apart and
  each plays ``duration`` seconds, in a worker process per scenario
  (:mod:`~llhls.lab.latency_worker`); hls.js plays in tabs of one headless
  Chromium per scenario (:mod:`~llhls.lab.latency_browser`). Both are
  measured from the pixels: the barcode of the capture clock burned into the
  test source, read back from decoded frames (ours) or from a canvas in the
  page (hls.js, which also reports ``hls.latency``).
* **Scheduling**: ``parallel`` slots; a scenario of ours takes one, an hls.js
  scenario two (Chromium costs more CPU). 2 cores: keep it at 3 or below.

Outputs in ``--out``: ``results.json`` (every viewer's series and summary,
each scenario's figures, the headline ratios), the plots (PNG) and
``report.md``. A progress line per finished scenario shows the counts, the
elapsed time and an ETA.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llhls.errors import ConfigError, LLHLSError
from llhls.lab.latency_plan import (
    DELIVERIES,
    PROFILES,
    STARTUP_STAGGER_S,
    STARTUP_TRIAL_S,
    STREAMS,
    Plan,
    Scenario,
    build_plan,
    link_configs,
    split_names,
    traces_dir,
)

if TYPE_CHECKING:
    from llhls.apps.live import LiveApp
    from llhls.lab.impair import RateSchedule
    from llhls.lab.relay import Relay

__all__ = [
    "add_latency_parser",
    "run_bench_latency",
    "run_latency_bench",
    "render_results",
    "LAB_SIZE",
]

log = logging.getLogger(__name__)

LAB_SIZE = (640, 360)
"""Test source picture of the lab's streams (decoding 360p is cheap on 2 cores)."""

_SEGMENTS_READY = 3
"""Complete segments a stream has before its first viewer joins (a full HOLD-BACK)."""

Announce = Callable[[str], None]


class _Slots:
    """A weighted semaphore, first come first served."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.free = capacity
        self._cond = asyncio.Condition()

    async def acquire(self, weight: int) -> None:
        async with self._cond:
            await self._cond.wait_for(lambda: self.free >= weight)
            self.free -= weight

    async def release(self, weight: int) -> None:
        async with self._cond:
            self.free += weight
            self._cond.notify_all()


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}:{seconds % 60:02d}"


def _s(value: object, digits: int = 2) -> str:
    return "n/a" if not isinstance(value, int | float) else f"{value:.{digits}f} s"


class _Progress:
    """One line per finished scenario: ``[3/24] ... (elapsed 1:23, ETA 5:40)``."""

    def __init__(self, plan: Plan, announce: Announce) -> None:
        self.plan = plan
        self.announce = announce
        self.total = len(plan.scenarios)
        self.done = 0
        self.started = time.monotonic()
        self._cost = {sc.key: plan.estimate_s(sc) * plan.weight(sc) for sc in plan.scenarios}
        self._left = sum(self._cost.values())
        self._spent = 0.0

    def finished(self, scenario: Scenario, summary: dict[str, Any], note: str) -> None:
        self.done += 1
        cost = self._cost[scenario.key]
        self._left -= cost
        self._spent += cost
        elapsed = time.monotonic() - self.started
        speed = elapsed / self._spent if self._spent else 1.0 / self.plan.parallel
        eta = self._left * speed
        figures = (
            f"p50 {_s(summary.get('latency_p50_s'))}, p95 {_s(summary.get('latency_p95_s'))}, "
            f"startup {_s(summary.get('startup_s'))}, stalls {summary.get('stalls', 0)}, "
            f"spread {_s(summary.get('spread_p50_s'))}"
        )
        self.announce(
            f"[{self.done}/{self.total}] {scenario.describe()}: {figures}{note}  "
            f"(elapsed {_clock(elapsed)}, ETA {_clock(eta)})"
        )


def _lab_app(stream: str) -> LiveApp:
    from llhls.apps.live import LiveApp, LiveOptions
    from packager.encode import Rung
    from packager.pipeline import PackagerConfig

    kind = STREAMS[stream]
    ladder = (Rung("360p", 640, 360, 600_000), Rung("180p", 320, 180, 200_000))
    config = PackagerConfig(ladder=ladder, low_latency=kind.low_latency, segment=kind.segment)
    return LiveApp(
        LiveOptions(
            port=0,
            width=LAB_SIZE[0],
            height=LAB_SIZE[1],
            fps=Fraction(30),
            packager=config,
            window=Fraction(60),
        )
    )


class _Lab:
    """State of one bench run."""

    def __init__(self, plan: Plan, announce: Announce, rates: dict[str, RateSchedule]) -> None:
        self.plan = plan
        self.announce = announce
        self.rates = rates
        self.apps: dict[str, LiveApp] = {}
        self.ready: dict[str, asyncio.Task[float]] = {}
        self.left = {s: sum(1 for sc in plan.scenarios if sc.stream == s) for s in plan.streams}
        self.results: list[dict[str, Any]] = []
        self.progress = _Progress(plan, announce)
        self.tmp = Path(tempfile.mkdtemp(prefix="llhls-latency-"))
        self.cafile: Path | None = None
        self.spki = ""

    async def start_streams(self) -> None:
        from llhls.origin.tls import spki_sha256_base64

        for stream in self.plan.streams:
            app = _lab_app(stream)
            await app.start()
            self.apps[stream] = app
            self.ready[stream] = asyncio.create_task(self._wait_ready(stream, app))
            if app.tls is not None:
                self.cafile = app.tls.certfile
                self.spki = spki_sha256_base64(app.tls.certfile)

    async def _wait_ready(self, stream: str, app: LiveApp) -> float:
        t0 = time.monotonic()
        segment = float(STREAMS[stream].segment)
        await app.wait_segments(_SEGMENTS_READY, timeout=segment * _SEGMENTS_READY + 60)
        took = time.monotonic() - t0
        self.announce(f"stream ready: {STREAMS[stream].label} on port {app.port} ({took:.1f} s)")
        return took

    async def close_stream(self, stream: str) -> None:
        app = self.apps.pop(stream, None)
        if app is not None:
            await app.close()

    async def close(self) -> None:
        for task in self.ready.values():
            task.cancel()
        for stream in list(self.apps):
            await self.close_stream(stream)
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- one scenario ---------------------------------------------------------------------

    async def _relays(self, scenario: Scenario, count: int) -> list[Relay]:
        from llhls.lab.relay import start_relay

        profile = PROFILES[scenario.profile]
        up, down = link_configs(profile, self.rates.get(scenario.profile))
        app = self.apps[scenario.stream]
        base = 1000 * list(PROFILES).index(scenario.profile)
        relays: list[Relay] = []
        try:
            for i in range(count):
                relays.append(
                    await start_relay(
                        "127.0.0.1",
                        0,
                        "127.0.0.1",
                        app.port,
                        udp=True,
                        tcp=True,
                        config_up=up,
                        config_down=down,
                        seed=base + i,
                    )
                )
        except BaseException:
            for relay in relays:
                relay.close()
            raise
        return relays

    async def _ours(self, scenario: Scenario, ports: list[int]) -> list[dict[str, Any]]:
        delivery = DELIVERIES[scenario.delivery]
        trials = scenario.player == "startup"
        duration = STARTUP_TRIAL_S if trials else self.plan.duration
        stagger = STARTUP_STAGGER_S if trials else self.plan.stagger
        app = self.apps[scenario.stream]
        work = Path(tempfile.mkdtemp(prefix="scenario-", dir=self.tmp))
        spec = {
            "cafile": str(self.cafile),
            "duration": duration,
            "tickets": str(work / "tickets"),
            "viewers": [
                {
                    "url": f"https://127.0.0.1:{port}/{app.options.name}/index.m3u8",
                    "protocol": delivery.protocol,
                    "h1_reuse": delivery.h1_reuse,
                    "zero_rtt": delivery.zero_rtt,
                    "join_s": i * stagger,
                }
                for i, port in enumerate(ports)
            ],
        }
        (work / "spec.json").write_text(json.dumps(spec))
        out = work / "out.json"
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "llhls.lab.latency_worker",
            str(work / "spec.json"),
            str(out),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        limit = duration + stagger * len(ports) + 150
        try:
            _, err = await asyncio.wait_for(proc.communicate(), timeout=limit)
        except (TimeoutError, asyncio.CancelledError):
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        if proc.returncode != 0 or not out.exists():
            tail = err.decode(errors="replace").strip()[-600:]
            raise LLHLSError(f"player worker failed ({proc.returncode}): {tail}")
        viewers: list[dict[str, Any]] = json.loads(out.read_text())["viewers"]
        return viewers

    async def _hlsjs(self, scenario: Scenario, ports: list[int]) -> list[dict[str, Any]]:
        from llhls.lab.latency_browser import run_tabs

        app = self.apps[scenario.stream]
        return await run_tabs(
            ports,
            protocol=DELIVERIES[scenario.delivery].protocol,
            spki=self.spki,
            duration=self.plan.duration,
            stagger=self.plan.stagger,
            stream_path=f"/{app.options.name}/index.m3u8",
        )

    async def run_scenario(self, scenario: Scenario) -> None:
        from llhls.lab.latency_stats import summarize

        await self.ready[scenario.stream]
        ours = scenario.player != "hlsjs"
        count = self.plan.viewers if ours else self.plan.browser_viewers
        if scenario.player == "startup":
            count = self.plan.startup_trials
        start_wall = time.time()
        t0 = time.monotonic()
        viewers: list[dict[str, Any]] = []
        error: str | None = None
        relays = await self._relays(scenario, count)
        try:
            ports = [relay.port for relay in relays]
            if ours:
                viewers = await self._ours(scenario, ports)
            else:
                viewers = await self._hlsjs(scenario, ports)
        except (LLHLSError, OSError, TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.warning("%s failed: %s", scenario.key, error)
        finally:
            for relay in relays:
                relay.close()
            for relay in relays:
                await relay.wait_closed()
        relay_stats = [asdict(relay.stats()) for relay in relays]
        summary = summarize(viewers)
        result: dict[str, Any] = {
            "key": scenario.key,
            "stream": scenario.stream,
            "profile": scenario.profile,
            "delivery": scenario.delivery,
            "player": scenario.player,
            "start_wall": start_wall,
            "wall_s": time.monotonic() - t0,
            "error": error,
            "summary": summary,
            "hls_summary": None if ours else summarize(viewers, "hls_series"),
            "checks": _checks(scenario, viewers, relay_stats),
            "relays": relay_stats,
            "viewers": viewers,
        }
        self.results.append(result)
        notes = [error] if error else []
        notes += result["checks"]
        note = f"  [{'; '.join(notes)[:200]}]" if notes else ""
        self.progress.finished(scenario, summary, note)


def _checks(
    scenario: Scenario, viewers: list[dict[str, Any]], relays: list[dict[str, Any]]
) -> list[str]:
    """Warnings: a viewer that failed, ran another protocol, missed 0-RTT, or bypassed
    the relay."""
    delivery = DELIVERIES[scenario.delivery]
    notes: list[str] = []
    for i, v in enumerate(viewers):
        summary = v.get("summary") or {}
        if v.get("error"):
            # the URL only names the viewer's relay port: leave it out
            text = re.sub(r" of starting \S+| \S+://\S+", "", str(v["error"]))
            notes.append(f"viewer {i}: {text[:120]}")
        if scenario.player != "hlsjs":
            if summary.get("protocol") not in (None, delivery.protocol):
                notes.append(f"viewer {i} used {summary.get('protocol')}")
            if delivery.zero_rtt and summary.get("zero_rtt") is not True:
                notes.append(f"viewer {i}: no 0-RTT")
            if summary.get("latency_source") not in (None, "pixels"):
                notes.append(f"viewer {i}: latency from {summary.get('latency_source')}")
        else:
            seen = set(summary.get("protocols") or {}) - {"unknown"}
            if seen and seen != {delivery.protocol}:
                notes.append(f"tab {i} used {sorted(seen)}")
    for i, r in enumerate(relays):
        down = r.get("down") or {}
        if not down.get("bytes"):
            notes.append(f"relay {i} carried nothing")
    return notes


async def run_latency_bench(
    plan: Plan,
    out_dir: Path,
    *,
    traces: str | Path | None = None,
    announce: Announce = print,
    plots: bool = True,
) -> dict[str, Any]:
    """Run the plan; write ``results.json``, the plots and ``report.md`` into
    ``out_dir``; return the results. Raises :class:`ConfigError` before anything
    starts when a trace profile has no traces directory."""
    from llhls.lab.latency_report import render_report, write_plots
    from llhls.lab.latency_stats import headline_ratios
    from llhls.lab.relay import load_trace
    from llhls.lab.spine import machine_description

    rates: dict[str, RateSchedule] = {}
    trace_files: dict[str, str] = {}
    for key in plan.profiles:
        profile = PROFILES[key]
        if profile.trace is not None:
            path = traces_dir(traces) / "network" / "hsdpa" / profile.trace
            rates[key] = load_trace(path)
            trace_files[key] = str(path)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    cpu0 = os.times()
    lab = _Lab(plan, announce, rates)
    announce(
        f"bench latency: {len(plan.scenarios)} scenarios, {plan.duration:g} s per viewer, "
        f"{plan.viewers} viewers each ({plan.browser_viewers} hls.js tabs), "
        f"{plan.parallel} slots; streams {', '.join(STREAMS[s].label for s in plan.streams)}"
    )
    slots = _Slots(plan.parallel)
    tasks: list[asyncio.Task[None]] = []
    try:
        await lab.start_streams()

        async def one(scenario: Scenario, weight: int) -> None:
            try:
                await lab.run_scenario(scenario)
            finally:
                await slots.release(weight)
                lab.left[scenario.stream] -= 1
                if lab.left[scenario.stream] == 0:
                    await lab.close_stream(scenario.stream)

        for scenario in plan.scenarios:
            weight = plan.weight(scenario)
            await lab.ready[scenario.stream]
            await slots.acquire(weight)
            tasks.append(asyncio.create_task(one(scenario, weight)))
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await lab.close()
    cpu1 = os.times()
    order = {sc.key: i for i, sc in enumerate(plan.scenarios)}
    scenarios = sorted(lab.results, key=lambda r: order[r["key"]])
    elapsed = time.monotonic() - started
    results: dict[str, Any] = {
        "machine": machine_description(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "elapsed_s": elapsed,
        "cpu_s": (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system),
        "plan": {
            "quick": plan.quick,
            "duration_s": plan.duration,
            "viewers": plan.viewers,
            "browser_viewers": plan.browser_viewers,
            "stagger_s": plan.stagger,
            "parallel": plan.parallel,
            "startup_trials": plan.startup_trials,
            "picture": f"{LAB_SIZE[0]}x{LAB_SIZE[1]}",
        },
        "streams": {k: s.label for k, s in STREAMS.items() if k in plan.streams},
        "profiles": {k: PROFILES[k].label for k in plan.profiles},
        "deliveries": {k: d.label for k, d in DELIVERIES.items()},
        "trace_files": trace_files,
        "scenarios": scenarios,
        "headlines": headline_ratios(scenarios),
    }
    (out_dir / "results.json").write_text(json.dumps(results, indent=1))
    images: list[str] = []
    if plots:
        try:
            images = write_plots(results, out_dir)
        except ImportError as exc:
            announce(f"bench latency: no plots ({exc}); pip install matplotlib")
    (out_dir / "report.md").write_text(render_report(results, images))
    announce(f"bench latency: done in {_clock(elapsed)}; wrote {out_dir}/report.md")
    return results


def render_results(out_dir: Path) -> dict[str, Any]:
    """Redraw the plots and ``report.md`` from ``out_dir/results.json`` (headline ratios
    recomputed); returns the results. Raises :class:`ConfigError` without the file."""
    from llhls.lab.latency_report import render_report, write_plots
    from llhls.lab.latency_stats import headline_ratios

    path = out_dir / "results.json"
    try:
        results: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    order = list(STREAMS)
    results["streams"] = dict(sorted(results["streams"].items(), key=lambda kv: order.index(kv[0])))
    results["headlines"] = headline_ratios(results["scenarios"])
    for sc in results["scenarios"]:
        scenario = Scenario(sc["stream"], sc["profile"], sc["delivery"], sc["player"])
        sc["checks"] = _checks(scenario, sc["viewers"], sc["relays"])
    path.write_text(json.dumps(results, indent=1))
    images = write_plots(results, out_dir)
    (out_dir / "report.md").write_text(render_report(results, images))
    return results


# --------------------------------------------------------------------------- CLI


def add_latency_parser(bench_subparsers: Any) -> argparse.ArgumentParser:
    """Add ``llhls bench latency`` to the ``bench`` sub-parsers; returns its parser."""
    p: argparse.ArgumentParser = bench_subparsers.add_parser(
        "latency",
        help="classic HLS vs LL-HLS over HTTP/1.1, HTTP/2, HTTP/3 and 0-RTT, through "
        "impaired networks, our player beside hls.js: report.md + plots",
        description="Run the latency lab: streams {classic HLS 6 s, classic HLS 2 s, LL-HLS} "
        "x deliveries {HTTP/1.1 without reuse, keep-alive, HTTP/2, HTTP/3, HTTP/3 + 0-RTT} x "
        "network profiles {lan, good, mobile, bad, trace}, several viewers per scenario "
        "joining a few seconds apart, hls.js in headless Chromium over HTTP/2 and HTTP/3 "
        "beside our player. Latency is read from the clock barcode in the picture. Writes "
        "results.json, plots and report.md to --out.",
    )
    p.add_argument("--quick", action="store_true", help="the CI-sized run (under 3 minutes)")
    p.add_argument(
        "--out", type=Path, default=Path("latency-lab"), help="output directory (latency-lab)"
    )
    p.add_argument(
        "--duration", type=float, default=None, help="seconds each viewer plays (15; quick 8)"
    )
    p.add_argument(
        "--profiles",
        default=None,
        metavar="LIST",
        help=f"network profiles, comma-separated: {','.join(PROFILES)} (all; quick lan,mobile)",
    )
    p.add_argument(
        "--streams",
        default=None,
        metavar="LIST",
        help=f"stream kinds: {','.join(STREAMS)} (all; quick classic6,ll)",
    )
    p.add_argument(
        "--protocols",
        default=None,
        metavar="LIST",
        help=f"deliveries of our player: {','.join(DELIVERIES)} (all; quick h2,h3,h3-0rtt)",
    )
    p.add_argument(
        "--viewers", type=int, default=None, help="our viewers per scenario (3; quick 2)"
    )
    p.add_argument(
        "--parallel", type=int, default=None, help="scenario slots at once (3; hls.js takes 2)"
    )
    p.add_argument(
        "--startup-trials",
        type=int,
        default=None,
        metavar="N",
        help="cold HTTP/2, cold HTTP/3 and HTTP/3 + 0-RTT starts of LL-HLS at 100 ms RTT "
        "(mobile), N each, one after another, for the startup comparison (12; quick 4; "
        "0: none)",
    )
    p.add_argument("--no-browser", action="store_true", help="leave hls.js out")
    p.add_argument(
        "--traces",
        default=None,
        metavar="DIR",
        help="the shared traces directory (default $LLHLS_TRACES, else ../shared/traces)",
    )
    p.add_argument(
        "--render",
        action="store_true",
        help="run nothing: redraw the plots and report.md from --out/results.json",
    )
    p.add_argument(
        "--docs",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write the report as the latency section of FILE (docs/benchmarks.md), "
        "plots under img/ beside it",
    )
    return p


def run_bench_latency(args: argparse.Namespace, announce: Announce | None = None) -> int:
    """``llhls bench latency``: returns the exit status (0 once the report is written;
    1 if no scenario measured anything). A scenario without figures is a finding of the
    run, named in the report's warnings and here."""
    say = announce if announce is not None else (lambda text: print(text, flush=True))
    if args.render:
        results = render_results(args.out)
        say(f"bench latency: redrew {args.out}/report.md from results.json")
        if args.docs is not None:
            from llhls.lab.latency_report import write_docs

            write_docs(results, args.out, args.docs)
            say(f"bench latency: wrote the latency section of {args.docs}")
        return 0
    plan = build_plan(
        quick=args.quick,
        profiles=split_names(args.profiles, list(PROFILES), "profile"),
        streams=split_names(args.streams, list(STREAMS), "stream"),
        deliveries=split_names(args.protocols, list(DELIVERIES), "protocol"),
        browser=not args.no_browser,
        duration=args.duration,
        viewers=args.viewers,
        parallel=args.parallel,
        startup_trials=args.startup_trials,
    )
    if not args.no_browser and any(sc.player == "hlsjs" for sc in plan.scenarios):
        from llhls.lab.browser import chromium_path

        if chromium_path() is None:
            raise ConfigError("Chromium is not installed: install it or pass --no-browser")
    results = asyncio.run(run_latency_bench(plan, args.out, traces=args.traces, announce=say))
    if args.docs is not None:
        from llhls.lab.latency_report import write_docs

        write_docs(results, args.out, args.docs)
        say(f"bench latency: wrote the latency section of {args.docs}")
    failed = [sc["key"] for sc in results["scenarios"] if sc["summary"]["samples"] == 0]
    for key in failed:
        say(f"bench latency: no latency measured in {key} (see the report's warnings)")
    return 1 if len(failed) == len(results["scenarios"]) else 0
