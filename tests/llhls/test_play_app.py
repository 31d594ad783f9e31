"""`llhls play` pieces that need no stream: parser, status line, summary, metrics file."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from llhls.apps.play import (
    StatusLine,
    add_play_parser,
    format_status,
    format_summary,
    metrics_json,
    run_play,
)
from llhls.errors import ConfigError
from player import SUMMARY_KEYS, PlayerStatus


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="llhls")
    add_play_parser(p.add_subparsers(dest="command"))
    return p


def status(**changes: object) -> PlayerStatus:
    fields: dict[str, object] = {
        "t": 12.34,
        "state": "playing",
        "protocol": "h3",
        "latency_s": 0.8123,
        "latency_source": "pixels",
        "buffer_s": 0.61,
        "rate": 1.0,
        "rendition": "720p",
        "stalls": 0,
        "stall_s": 0.0,
        "played_s": 12.0,
        "requests": 240,
        "connections": 1,
        "bytes": 1_000_000,
        "zero_rtt": True,
        "frames": 360,
    }
    fields.update(changes)
    return PlayerStatus(**fields)  # type: ignore[arg-type]


def test_defaults() -> None:
    args = parser().parse_args(["play", "https://h:1/live/index.m3u8"])
    assert args.url == "https://h:1/live/index.m3u8"
    assert args.protocol == "auto" and args.duration is None and args.metrics is None
    assert args.target_latency is None and not args.insecure and args.cafile is None
    assert not args.no_decode and args.qlog is None and not args.h1_no_reuse
    assert not args.sync and not args.no_catchup and not args.no_abr


def test_every_option() -> None:
    args = parser().parse_args(
        "play https://h:1/x.m3u8 --protocol h1 --duration 2.5 --metrics m.json "
        "--target-latency 1 --cafile c.pem --no-decode --qlog q --h1-no-reuse "
        "--sync --no-catchup --no-abr".split()
    )
    assert args.sync and args.no_catchup and args.no_abr
    assert args.protocol == "h1" and args.duration == 2.5 and args.metrics == Path("m.json")
    assert args.target_latency == 1.0 and args.cafile == Path("c.pem")
    assert args.no_decode and args.qlog == Path("q") and args.h1_no_reuse


@pytest.mark.parametrize(
    "argv",
    [
        "play u --insecure --cafile c.pem",
        "play u --protocol h4",
        "play u --duration 0",
        "play u --duration nan",
        "play u --target-latency -1",
        "play u --target-latency 0",
        "play",
    ],
)
def test_bad_arguments(argv: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parser().parse_args(argv.split())
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_help_mentions_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["play", "--help"])
    out = capsys.readouterr().out
    for option in (
        "--protocol",
        "--duration",
        "--metrics",
        "--target-latency",
        "--insecure",
        "--cafile",
        "--no-decode",
        "--qlog",
        "--h1-no-reuse",
        "--sync",
        "--no-catchup",
        "--no-abr",
    ):
        assert option in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ("play https://h:1/x --cafile /no/such/ca.pem", "--cafile"),
        ("play https://h:1/x --metrics /no/such/dir/m.json", "--metrics"),
        ("play https://h:1/x --sync", "--sync needs --target-latency"),
    ],
)
def test_bad_paths_fail_before_playing(argv: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        run_play(parser().parse_args(argv.split()))


def test_status_line_text() -> None:
    line = format_status(status())
    for part in ("12.3 s", "h3", "playing", "0.812 s (pixels)", "0.61 s", "1.00", "720p"):
        assert part in line
    assert "stalls 0" in line
    waiting = format_status(
        status(state="buffering", latency_s=None, latency_source=None, last_error="HTTP 404 for /x")
    )
    assert "latency    -" in waiting and "(HTTP 404 for /x)" in waiting


def test_status_line_on_a_pipe_writes_one_line_per_second() -> None:
    out = io.StringIO()
    line = StatusLine(out, tty=False, every=1.0)
    line.update(status(requests=0))  # nothing answered yet: nothing shown
    assert out.getvalue() == ""
    for _ in range(5):
        line.update(status())
    line.close()
    assert out.getvalue().count("\n") == 1 and "\r" not in out.getvalue()


def test_status_line_on_a_terminal_rewrites_in_place() -> None:
    out = io.StringIO()
    line = StatusLine(out, tty=True)
    line.update(status())
    line.close()
    text = out.getvalue()
    assert text.startswith("\r") and "\x1b[K" in text and text.endswith("\n")


def summary() -> dict[str, object]:
    return {
        "protocol": "h3",
        "startup_s": 0.1,
        "latency_p50_s": 0.8,
        "latency_p95_s": 0.85,
        "latency_source": "pixels",
        "stalls": 0,
        "stall_s": 0.0,
        "played_s": 10.0,
        "rate_changes": 0,
        "min_rate": 1.0,
        "max_rate": 1.0,
        "bytes": 2_500_000,
        "requests": 500,
        "connections": 1,
        "zero_rtt": True,
        "samples": [
            {"t": 0.0, "latency_s": None, "buffer_s": 0.0, "rate": 1.0, "rendition": None},
            {"t": 0.1, "latency_s": 0.8, "buffer_s": 0.6, "rate": 1.0, "rendition": "720p"},
        ],
    }


def test_metrics_file_is_the_summary() -> None:
    data = summary()
    assert tuple(data) == SUMMARY_KEYS
    text = metrics_json(data)
    assert json.loads(text) == data
    # braces, a line per key, a line per sample and the closing bracket
    assert text.count("\n") == 2 + len(SUMMARY_KEYS) + 2 + 1
    assert json.loads(metrics_json({**data, "samples": []}))["samples"] == []


def test_summary_text() -> None:
    text = format_summary(summary())
    assert "protocol h3, 0-RTT yes: 1 connection(s), 500 requests, 2.5 MB" in text
    assert "latency p50 0.800 s p95 0.850 s (pixels)" in text
    assert "startup 0.100 s" in text and "0 stall(s)" in text
    empty = format_summary({**summary(), "zero_rtt": None, "startup_s": None})
    assert "0-RTT" not in empty and "startup -" in empty
