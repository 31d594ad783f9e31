"""The ``llhls`` command.

Errors the user can fix (bad options, unknown source, port in use) print one
line ``llhls: error: ...`` and exit with status 2; nothing prints a traceback
unless ``--debug`` is given.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from llhls import __version__
from llhls.apps.play import add_play_parser, run_play
from llhls.errors import ConfigError, LLHLSError

if TYPE_CHECKING:
    from llhls.apps.live import LiveOptions
    from packager.encode import Rung

__all__ = ["main", "build_parser"]

EXIT_USAGE = 2


def _seconds(text: str) -> Fraction:
    try:
        value = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be in 0..65535: {text!r}")
    return value


def _add_live_options(p: argparse.ArgumentParser, *, default_duration: float | None) -> None:
    p.add_argument(
        "source",
        nargs="?",
        default="testsrc",
        help="'testsrc' (default: moving pattern with the capture clock burned in as a "
        "barcode, tone with a click each second) or any file/URL PyAV opens",
    )
    p.add_argument("--port", type=_port, default=8443, help="TCP+UDP port (0 = any free one)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--name", default="live", help="stream name: /NAME/index.m3u8")
    p.add_argument(
        "--part-target",
        type=_seconds,
        default=Fraction(1, 5),
        metavar="S",
        help="nominal part duration in seconds, rounded to whole frames (default 0.2)",
    )
    p.add_argument(
        "--segment",
        type=_seconds,
        default=Fraction(2),
        metavar="S",
        help="segment duration in seconds, rounded to whole parts (default 2)",
    )
    p.add_argument(
        "--ladder",
        default=None,
        metavar="SPEC",
        help="video renditions, e.g. '720p:1280x720@2500k,360p:640x360@600k' (the default)",
    )
    p.add_argument(
        "--window",
        type=_seconds,
        default=Fraction(60),
        metavar="S",
        help="seconds of segments kept in the live playlist (default 60)",
    )
    p.add_argument(
        "--duration",
        type=float,
        default=default_duration,
        metavar="S",
        help=(
            "stop after S seconds of media and end the playlist (default: run until Ctrl-C)"
            if default_duration is None
            else f"seconds our player plays the stream (default {default_duration:g})"
        ),
    )
    p.add_argument("--loop", action="store_true", help="loop a file source forever")
    p.add_argument("--no-audio", action="store_true", help="leave the audio rendition out")
    p.add_argument(
        "--classic",
        action="store_true",
        help="classic HLS: whole segments only, no parts (for comparisons)",
    )
    p.add_argument(
        "--no-tls",
        action="store_true",
        help="plain HTTP/1.1 and h2c, no HTTP/3 (local tests)",
    )
    p.add_argument("--no-h3", action="store_true", help="do not listen for HTTP/3 on UDP")
    p.add_argument("--qlog", type=Path, default=None, metavar="DIR", help="write QUIC qlog traces")
    p.add_argument(
        "--size",
        default="1280x720",
        metavar="WxH",
        help="testsrc picture size (default 1280x720)",
    )
    p.add_argument("--fps", type=_seconds, default=Fraction(30), help="testsrc frame rate")
    p.add_argument(
        "--stats",
        type=Path,
        default=None,
        metavar="FILE",
        help="write a JSON summary at exit (CPU, part publish delays)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (``llhls --help``)."""
    parser = argparse.ArgumentParser(
        prog="llhls",
        description="CMAF / Low-Latency HLS: packager, origin (HTTP/1.1, HTTP/2, HTTP/3), "
        "player and latency lab.",
    )
    parser.add_argument("--version", action="version", version=f"llhls {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    live = sub.add_parser(
        "live",
        help="package a live source and serve it (LL-HLS origin)",
        description="Packager and origin in one process. TLS with a generated self-signed "
        "certificate by default: TCP port P serves HTTP/1.1 and HTTP/2, UDP port P serves "
        "HTTP/3 (advertised with Alt-Svc). The multivariant playlist is at "
        "https://HOST:P/NAME/index.m3u8 and the demo page at https://HOST:P/.",
    )
    _add_live_options(live, default_duration=None)

    demo = sub.add_parser(
        "demo",
        help="llhls live on the test source + llhls play over HTTP/3 for 30 s",
        description="Packages the built-in test source and serves it (as `llhls live`), prints "
        "the stream and demo page URLs, then plays it with our player over HTTP/3 for "
        "--duration seconds (default 30) and prints the player's summary: latency read from "
        "the pixels, startup, stalls, requests, connections. Port 8443 unless --port.",
    )
    _add_live_options(demo, default_duration=30.0)
    add_play_parser(sub)

    bench = sub.add_parser(
        "bench",
        help="benchmarks (the latency lab); results go to docs/benchmarks.md",
        description="Run a benchmark and print its figures; --report appends them to a "
        "Markdown file (docs/benchmarks.md in the repository).",
    )
    bench_sub = bench.add_subparsers(dest="bench", metavar="BENCH", required=True)
    spine = bench_sub.add_parser(
        "spine",
        help="llhls live + an HTTP/2 follower + hls.js: CPU, publish and reload delays, "
        "hls.js latency",
    )
    spine.add_argument("--duration", type=float, default=60.0, help="seconds measured (60)")
    spine.add_argument("--no-browser", action="store_true", help="skip the hls.js player")
    spine.add_argument("--report", type=Path, default=None, help="append Markdown here")
    spine.add_argument("--json", type=Path, default=None, help="write the figures as JSON")
    pbench = bench_sub.add_parser(
        "player",
        help="llhls play against llhls live: h3 cold, h3 0-RTT, h2, h1, h3 without decoding",
    )
    pbench.add_argument("--duration", type=float, default=60.0, help="seconds per run (60)")
    pbench.add_argument("--report", type=Path, default=None, help="append Markdown here")
    from llhls.lab.latency import add_latency_parser

    add_latency_parser(bench_sub)
    from llhls.lab.control_cli import add_bench_parser

    add_bench_parser(bench_sub)

    from llhls.lab.relay import add_relay_parser

    add_relay_parser(sub)
    return parser


def _ladder(text: str | None) -> tuple[Rung, ...]:
    from packager.encode import DEFAULT_LADDER, parse_ladder

    return DEFAULT_LADDER if text is None else parse_ladder(text)


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--size must look like 1280x720, got {text!r}") from None
    if w <= 0 or h <= 0 or w % 2 or h % 2:
        raise ConfigError(f"--size needs positive even numbers, got {text!r}")
    return w, h


def _live_options(args: argparse.Namespace) -> LiveOptions:
    from llhls.apps.live import LiveOptions
    from packager.pipeline import PackagerConfig

    width, height = _size(args.size)
    config = PackagerConfig(
        part_target=args.part_target,
        segment=args.segment,
        ladder=_ladder(args.ladder),
        audio=not args.no_audio,
        low_latency=not args.classic,
    )
    return LiveOptions(
        source=args.source,
        host=args.host,
        port=args.port,
        name=args.name,
        packager=config,
        window=args.window,
        duration=args.duration,
        loop=args.loop,
        tls=not args.no_tls,
        h3=not args.no_h3 and not args.no_tls,
        qlog_dir=args.qlog,
        width=width,
        height=height,
        fps=args.fps,
    )


def _announce(text: str) -> None:
    print(text, flush=True)


def _run(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from llhls.apps.demo import run_demo

        options = replace(_live_options(args), duration=None)
        return asyncio.run(run_demo(options, args.duration, announce=_announce))
    if args.command == "live":
        from llhls.apps.live import run_live

        return asyncio.run(run_live(_live_options(args), announce=_announce, stats_path=args.stats))
    if args.command == "play":
        return run_play(args)
    if args.command == "bench" and args.bench == "spine":
        from llhls.lab.spine import render_markdown, result_json, run_spine

        if args.duration <= 0:
            raise ConfigError(f"--duration must be positive, got {args.duration:g}")
        _announce(f"bench spine: {args.duration:g} s of llhls live + HTTP/2 follower + hls.js")
        result = asyncio.run(run_spine(args.duration, browser=not args.no_browser))
        text = render_markdown(result)
        _announce(text)
        if args.report is not None:
            with args.report.open("a", encoding="utf-8") as out:
                out.write("\n" + text)
        if args.json is not None:
            args.json.write_text(result_json(result))
        return 0
    if args.command == "relay":
        from llhls.lab.relay import run_relay

        return run_relay(args, announce=_announce)
    if args.command == "bench" and args.bench == "player":
        from llhls.lab.player_bench import render_player_markdown, run_player_bench

        if args.duration <= 0:
            raise ConfigError(f"--duration must be positive, got {args.duration:g}")
        _announce(f"bench player: 5 runs of {args.duration:g} s against llhls live")
        runs = asyncio.run(run_player_bench(args.duration))
        text = render_player_markdown(runs, args.duration)
        _announce(text)
        if args.report is not None:
            with args.report.open("a", encoding="utf-8") as out:
                out.write("\n" + text)
        return 0
    if args.command == "bench" and args.bench == "control":
        from llhls.lab.control_cli import run_bench_control

        return run_bench_control(args)
    if args.command == "bench" and args.bench == "latency":
        from llhls.lab.latency import run_bench_latency

        return run_bench_latency(args, announce=_announce)
    raise ConfigError(f"unknown command {args.command!r}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return _run(args)
    except LLHLSError as exc:
        if args.debug:
            raise
        print(f"llhls: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
