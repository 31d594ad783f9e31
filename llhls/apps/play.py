"""`llhls play`: the player on the command line.

A live status line on stderr (refreshed in place on a terminal, one line per
second otherwise), the metrics summary as JSON with ``--metrics``, and a
short summary on stdout at the end. Errors are :class:`~llhls.errors.PlayerError`
or :class:`~llhls.errors.ConfigError`, which ``llhls`` prints as one line
(exit status 2).

The player package is imported when the command runs, not when the parser is
built, so ``llhls --help`` stays fast.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from llhls.errors import ConfigError, PlayerError
from llhls.origin.tls import CERT_NAME, default_cache_dir

if TYPE_CHECKING:
    from player import PlayerStatus

__all__ = [
    "add_play_parser",
    "run_play",
    "StatusLine",
    "format_status",
    "format_summary",
    "metrics_json",
]

_PROTOCOLS = ("auto", "h3", "h2", "h1")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def add_play_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``play`` subcommand to ``llhls``'s subparsers."""
    p = subparsers.add_parser(
        "play",
        help="play an LL-HLS stream and measure it (latency from pixels, stalls, requests)",
        description="Play an LL-HLS stream: blocking playlist reloads and preload-hinted "
        "parts in flight together over one connection (HTTP/3 with 0-RTT resumption, "
        "HTTP/2, or HTTP/1.1), decode with PyAV and read the capture clock burned into "
        "testsrc frames for glass-to-glass latency. A status line goes to stderr; "
        "--metrics writes the summary as JSON. Exits 0 after --duration seconds of "
        "playback, at the end of the stream, or on Ctrl-C.",
        epilog="example: llhls play https://127.0.0.1:8443/live/index.m3u8 "
        "--cafile ~/.cache/llhls/tls/cert.pem --duration 30 --metrics run.json",
    )
    p.add_argument(
        "url",
        metavar="URL",
        help="multivariant (or media) playlist, e.g. https://127.0.0.1:8443/live/index.m3u8",
    )
    p.add_argument(
        "--protocol",
        choices=_PROTOCOLS,
        default="auto",
        help="transport: h3 (QUIC, 0-RTT with a cached session ticket), h2, h1, or auto "
        "(default: HTTP/3 if its handshake completes within 0.25 s, else HTTP/2; "
        "HTTP/1.1 for http:// URLs)",
    )
    p.add_argument(
        "--duration",
        type=_positive,
        default=None,
        metavar="S",
        help="stop after S seconds of playback (default: until the stream ends or Ctrl-C)",
    )
    p.add_argument(
        "--metrics",
        type=Path,
        default=None,
        metavar="FILE",
        help="write the metrics summary as JSON (startup, latency p50/p95 and source, "
        "stalls, requests, connections, 0-RTT, and a sample every 100 ms)",
    )
    p.add_argument(
        "--target-latency",
        type=_positive,
        default=None,
        metavar="S",
        help="latency to hold: start S seconds behind the live edge and steer the playout "
        "rate towards S (default: start at the playlist's PART-HOLD-BACK and hold the "
        "latency measured then); the target rises after stalls and decays back",
    )
    p.add_argument(
        "--sync",
        action="store_true",
        help="viewer sync: hold exactly --target-latency (it does not rise after stalls), "
        "so players given the same target show the same moment",
    )
    p.add_argument(
        "--no-catchup",
        action="store_true",
        help="keep the playout rate at 1 (no catch-up or slow-down; the target is still "
        "tracked and written to the samples)",
    )
    p.add_argument(
        "--no-abr",
        action="store_true",
        help="stay on the first rendition (default: switch with throughput and buffer)",
    )
    trust = p.add_mutually_exclusive_group()
    trust.add_argument(
        "--insecure", action="store_true", help="do not verify the server's certificate"
    )
    trust.add_argument(
        "--cafile",
        type=Path,
        default=None,
        metavar="F",
        help="trust this certificate (PEM), e.g. the self-signed one `llhls live` "
        "writes to ~/.cache/llhls/tls/cert.pem",
    )
    p.add_argument(
        "--no-decode",
        action="store_true",
        help="do not decode; measure latency from the chunks' prft boxes (less CPU)",
    )
    p.add_argument(
        "--qlog",
        type=Path,
        default=None,
        metavar="DIR",
        help="write HTTP/3 qlog traces to DIR (created if missing)",
    )
    p.add_argument(
        "--h1-no-reuse",
        action="store_true",
        help="HTTP/1.1: open a new connection for every request (no keep-alive)",
    )


# -- status line -------------------------------------------------------------------------


def format_status(status: PlayerStatus) -> str:
    """One status line: protocol, latency, buffer, rate, rendition, stalls."""
    if status.latency_s is None:
        latency = "latency    -   "
    else:
        latency = f"latency {status.latency_s:6.3f} s"
    source = f" ({status.latency_source})" if status.latency_source else ""
    target = f" target {status.target_s:.3f}" if status.target_s is not None else ""
    line = (
        f"{status.t:6.1f} s  {status.protocol or '?':>2}  {status.state:<9}  "
        f"{latency}{source}{target}  buffer {status.buffer_s:5.2f} s  rate {status.rate:4.2f}  "
        f"{status.rendition or '-'}  stalls {status.stalls}"
    )
    if status.last_error is not None and status.state != "playing":
        line += f"  ({status.last_error})"
    return line


class StatusLine:
    """Writes status lines to ``out``: in place on a terminal, else one per ``every`` seconds.

    Nothing is written before the first response (an unreachable origin then
    leaves only the error line).
    """

    def __init__(self, out: TextIO, *, every: float = 1.0, tty: bool | None = None) -> None:
        self._out = out
        self._tty = out.isatty() if tty is None else tty
        self._every = every
        self._next = 0.0
        self._open = False

    def update(self, status: PlayerStatus) -> None:
        """Show ``status`` (throttled)."""
        if status.requests == 0:
            return
        now = time.monotonic()
        if now < self._next:
            return
        line = format_status(status)
        if self._tty:
            self._out.write("\r" + line + "\x1b[K")
            self._open = True
            self._next = now + 0.2
        else:
            self._out.write(line + "\n")
            self._next = now + self._every
        self._out.flush()

    def close(self) -> None:
        """End an in-place line."""
        if self._open:
            self._out.write("\n")
            self._out.flush()
            self._open = False


# -- summary -----------------------------------------------------------------------------


def _num(value: object, unit: str = " s", places: int = 3) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:.{places}f}{unit}"
    return "-"


def format_summary(summary: dict[str, object]) -> str:
    """A short human summary of the metrics object."""
    zero_rtt = summary.get("zero_rtt")
    rtt = "" if zero_rtt is None else f", 0-RTT {'yes' if zero_rtt else 'no'}"
    size = summary.get("bytes")
    megabytes = size / 1e6 if isinstance(size, int) else 0.0
    return "\n".join(
        [
            f"protocol {summary.get('protocol')}{rtt}: {summary.get('connections')} "
            f"connection(s), {summary.get('requests')} requests, {megabytes:.1f} MB",
            f"startup {_num(summary.get('startup_s'))}, latency p50 "
            f"{_num(summary.get('latency_p50_s'))} p95 {_num(summary.get('latency_p95_s'))} "
            f"({summary.get('latency_source') or 'none'})",
            f"played {_num(summary.get('played_s'), places=1)}, {summary.get('stalls')} "
            f"stall(s) ({_num(summary.get('stall_s'))})",
        ]
    )


def metrics_json(summary: dict[str, object]) -> str:
    """The summary as JSON text: one key per line, one sample object per line."""
    lines = []
    for key, value in summary.items():
        if key == "samples" and isinstance(value, list):
            rows = ",\n".join(f"  {json.dumps(sample)}" for sample in value)
            text = f"[\n{rows}\n ]" if value else "[]"
        else:
            text = json.dumps(value)
        lines.append(f" {json.dumps(key)}: {text}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def _write_json(path: Path, data: dict[str, object]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(metrics_json(data), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise ConfigError(f"cannot write --metrics {path}: {exc}") from exc


# -- run ---------------------------------------------------------------------------------


def _check_paths(args: argparse.Namespace) -> None:
    if args.cafile is not None and not args.cafile.is_file():
        raise ConfigError(f"--cafile {args.cafile} is not a file")
    if args.sync and args.target_latency is None:
        raise ConfigError("--sync needs --target-latency S (the target every viewer shares)")
    if args.metrics is not None and not args.metrics.resolve().parent.is_dir():
        raise ConfigError(f"--metrics {args.metrics}: no such directory")
    if args.qlog is not None:
        try:
            args.qlog.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create --qlog {args.qlog}: {exc}") from exc


def run_play(args: argparse.Namespace) -> int:
    """Run ``llhls play`` with parsed ``args``; the exit status (errors raise LLHLSError)."""
    _check_paths(args)
    if not getattr(args, "verbose", 0):
        # The status line and the one error line say it all; -v shows the logs.
        for name in ("quic", "player"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    return asyncio.run(_play(args))


async def _play(args: argparse.Namespace) -> int:
    from player import Player
    from player.catchup import CatchupConfig
    from player.transport import ALPNError, TLSVerificationError

    status = StatusLine(sys.stderr)
    player = Player(
        args.url,
        protocol=args.protocol,
        duration=args.duration,
        target_latency=args.target_latency,
        catchup=not args.no_catchup,
        catchup_config=CatchupConfig(adapt_target=False) if args.sync else None,
        abr=not args.no_abr,
        insecure=args.insecure,
        cafile=args.cafile,
        decode=not args.no_decode,
        qlog_dir=args.qlog,
        h1_reuse=not args.h1_no_reuse,
        on_status=status.update,
    )
    loop = asyncio.get_running_loop()
    stoppers: list[asyncio.Task[None]] = []

    def stop() -> None:
        stoppers.append(asyncio.ensure_future(player.stop()))

    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop)
    try:
        summary = await player.run()
    except TLSVerificationError as exc:
        if isinstance(exc, ALPNError) or args.insecure:
            raise
        cert = default_cache_dir() / CERT_NAME
        raise PlayerError(
            f"{exc}; pass --cafile FILE to trust the server's certificate "
            f"(`llhls live` writes its own to {cert}) or --insecure"
        ) from exc
    finally:
        status.close()
        for sig in signals:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    if args.metrics is not None:
        _write_json(args.metrics, summary)
    print(format_summary(summary), flush=True)
    return 0
