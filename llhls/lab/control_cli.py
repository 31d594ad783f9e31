"""CLI hooks of `llhls bench control` (light: the bench is imported only to run).

Wire into ``llhls/cli.py``::

    from llhls.lab.control_cli import add_bench_parser, run_bench_control
    add_bench_parser(bench_sub)                # in build_parser()
    ...
    if args.command == "bench" and args.bench == "control":
        return run_bench_control(args)         # in _run()
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_bench_parser", "run_bench_control"]


def add_bench_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``control`` to the ``llhls bench`` subparsers."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "control",
        help="simulated latency control: our controller vs hls.js/ExoPlayer/Shaka/dash.js-like "
        "laws on the shared network traces, injected stalls and viewer sync",
        description="Runs the deterministic simulator (real session, buffer, controller and "
        "ABR on a virtual clock) for every policy over every shared network trace, injected "
        "1/2/4 s origin pauses and a viewer-sync scenario; writes results.json, PNG plots "
        "(with the 'lab' extra) and control.md into --out.",
    )
    p.add_argument(
        "--out", type=Path, default=Path("bench-control"), help="output directory (bench-control)"
    )
    p.add_argument("--quick", action="store_true", help="a short run (3 traces x 90 s, < 1 min)")
    p.add_argument("--traces", type=Path, default=None, help="trace directory")
    p.add_argument(
        "--trace-seconds", type=float, default=None, help="play at most S seconds of each trace"
    )
    p.add_argument("--workers", type=int, default=None, help="parallel processes (default: CPUs)")
    p.add_argument("--report", type=Path, default=None, help="append the Markdown here")
    return p


def run_bench_control(args: argparse.Namespace) -> int:
    """Run ``llhls bench control`` from parsed arguments; prints the Markdown report.

    Returns 2 (with the missing directory named on stderr) when the shared network
    traces are not there."""
    from llhls.lab.control_bench import TracesMissing, run_control_bench

    try:
        results = run_control_bench(
            args.out,
            args.quick,
            traces_dir=args.traces,
            workers=args.workers,
            trace_seconds=args.trace_seconds,
        )
    except TracesMissing as exc:
        print(f"llhls bench control: {exc}", file=sys.stderr, flush=True)
        return 2
    text = (args.out / "control.md").read_text()
    print(text, flush=True)
    if args.report is not None:
        with args.report.open("a", encoding="utf-8") as out:
            out.write("\n" + text)
    return 0 if results.jobs else 1
