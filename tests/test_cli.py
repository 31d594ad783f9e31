"""The `llhls` command: clear one-line errors, exit 2, clean Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llhls.cli import main

pytestmark = pytest.mark.integration


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llhls.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("live", "demo", "play", "bench", "relay"):
        assert command in out


def test_unknown_source_is_one_clear_line() -> None:
    proc = run_cli("live", "no-such-thing.mp4", "--port", "0", "--no-tls")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("llhls: error:") and "no-such-thing.mp4" in lines[0]
    assert "Traceback" not in proc.stderr


def test_unreadable_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 100)
    proc = run_cli("live", str(junk), "--port", "0", "--no-tls")
    assert proc.returncode == 2
    assert proc.stderr.startswith("llhls: error:") and "junk.mp4" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_port_in_use() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = run_cli("live", "--port", str(port), "--no-tls")
    assert proc.returncode == 2
    assert "llhls: error:" in proc.stderr and str(port) in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "args, word",
    [
        (["--part-target", "-1"], "part-target"),
        (["--segment", "abc"], "segment"),
        (["--ladder", "720p:12x7@1k"], "720p"),
        (["--port", "70000"], "port"),
        (["--size", "641x360"], "size"),
    ],
)
def test_bad_options(args: list[str], word: str) -> None:
    proc = run_cli("live", "--no-tls", *args)
    assert proc.returncode == 2, proc.stderr
    assert word in proc.stderr
    assert "Traceback" not in proc.stderr


def test_ctrl_c_stops_cleanly() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llhls.cli",
            "live",
            "--port",
            "0",
            "--no-tls",
            "--size",
            "320x180",
            "--ladder",
            "180p:320x180@200k",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("stream:") and "/live/index.m3u8" in line
        time.sleep(2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopping" in out and "done:" in out
    assert "Traceback" not in err


def test_live_file_source_loops(tmp_path: Path) -> None:
    """A media file as SOURCE, re-encoded and looped as a live stream."""
    import av
    import numpy as np

    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 320, 180, "yuv420p"
        for i in range(25):  # one second
            img = np.full((180, 320, 3), (i * 10) % 255, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    env = dict(os.environ)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "llhls.cli",
            "live",
            str(path),
            "--loop",
            "--port",
            "0",
            "--no-tls",
            "--duration",
            "3",
            "--ladder",
            "180p:320x180@200k",
            "--segment",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    done = [line for line in proc.stdout.splitlines() if line.startswith("done:")]
    assert done, proc.stdout
    # 3 s of a 1 s clip at 25 fps: the file looped three times
    frames = int(re.search(r"frames (\d+)", done[0]).group(1))  # type: ignore[union-attr]
    assert frames == 75


def test_demo_runs_live_and_play_together() -> None:
    """`make demo` in small: the stream's URL, then our player's summary."""
    proc = run_cli(
        "demo",
        "--port",
        "0",
        "--duration",
        "4",
        "--size",
        "640x360",
        "--ladder",
        "360p:640x360@600k",
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "stream:    https://127.0.0.1:" in out and "/live/index.m3u8" in out
    assert "demo page:" in out
    assert "protocol h3" in out and "(pixels)" in out and "0 stall(s)" in out
