"""A track that fell behind: parts the origin dropped, segments that left the window.

The fake origin here behaves like ``llhls.origin``: it lists the parts of the last
``parts_window`` segments only, and (unlike :class:`FakeOrigin`, which serves old
parts for ever) answers 404 for the part files of the segments it lists without
parts. Media requests sent during a network outage are never answered; they fail at
their timeout, and their retries find the origin moved on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from player.actions import Cancel, Deliver, Fetch, SessionConfig
from player.session import Session
from tests.player.fake_origin import FakeOrigin, Harness, StreamSpec

URL = "/live/index.m3u8"
NEVER = 1e9


@dataclass
class TrimmingOrigin(FakeOrigin):
    """Part files go with their tags; media asked for in ``[lost_from, lost_until)`` is
    lost (never answered); the first request for a name in ``hang`` fails (``timeout``)
    at the time given."""

    lost_from: float = 31.0
    lost_until: float = 33.0
    hang: dict[str, float] = field(default_factory=dict)

    def handle(self, path_and_query: str, now: float) -> tuple[float, int | str, bytes]:
        name = path_and_query.rsplit("/", 1)[-1]
        if name in self.hang:
            self.log.append((now, path_and_query))
            return self.hang.pop(name), "timeout", b""
        media = name.startswith(("part", "seg"))
        if media and self.lost_from <= now < self.lost_until:
            self.log.append((now, path_and_query))
            return NEVER, 200, b""
        if name.startswith("part"):
            msn = int(name[4:].split(".")[0])
            complete = self.produced(now) // self.spec.parts_per_segment
            if msn < complete - self.spec.parts_window:
                self.log.append((now, path_and_query))
                return now + self.rtt, 404, b""
        return super().handle(path_and_query, now)


def harness(origin: FakeOrigin, config: SessionConfig | None = None) -> Harness:
    h = Harness(origin, Session(URL, config))
    h.enforce_timeouts = True
    return h


def requests_of(h: Harness, name: str) -> list[Fetch]:
    return [f for _, f in h.fetches() if f.path_and_query.endswith("/" + name)]


def test_parts_that_are_gone_are_fetched_as_their_whole_segment() -> None:
    """The outage at 31-33 s leaves the track at 15.5, its requests timing out at
    41-43 s: by then the origin lists segments 15 and 16 without parts and has deleted
    their part files. The track goes on with the whole segments, then parts again."""
    h = harness(TrimmingOrigin(StreamSpec(renditions=("720p",))))
    h.start(30.05)
    h.run_until(50.0)
    delivered = h.delivered("video")
    stuck = delivered.index(next(d for d in delivered if d.msn == 15 and d.part == 4))
    after = delivered[stuck + 1 :]
    # segment 15 whole (from its start: it holds 15.5, the next position), then 16 whole
    assert [(d.msn, d.part) for d in after[:2]] == [(15, None), (16, None)]
    assert after[0].start_us == delivered[stuck - 4].start_us  # 15.0 starts segment 15
    assert after[1].start_us == after[0].start_us + after[0].duration_us
    # then on part by part, contiguous, up to the live edge (49.8 s: 24.8)
    rest = after[2:]
    for prev, cur in zip(rest, rest[1:], strict=False):
        assert cur.start_us == prev.start_us + prev.duration_us
        assert cur.part is not None
    assert (rest[-1].msn, rest[-1].part) == (24, 8)
    # no dropped part was asked for twice, nothing was skipped
    for part in range(10):
        assert len(requests_of(h, f"part15.{part}.m4s")) <= 2
        assert len(requests_of(h, f"part16.{part}.m4s")) <= 2
    assert h.session.counters.get("skipped", 0) == 0


def test_a_404_on_a_dropped_part_does_not_loop() -> None:
    """15.5 hangs until 37.9 s and fails while its tags are still listed; its retry at
    38.0 s finds the part gone with its tags (404). The track fetches segment 15 whole
    instead of retrying 15.5 until it gives up on it."""
    spec = StreamSpec(renditions=("720p",))
    origin = TrimmingOrigin(spec, lost_from=0.0, lost_until=0.0, hang={"part15.5.m4s": 37.9})
    h = harness(origin)
    h.start(30.05)
    h.run_until(46.0)
    answers = [(t, p) for t, p in origin.log if p.endswith("/part15.5.m4s")]
    assert len(answers) == 2, answers  # the hung request and one retry (404)
    delivered = h.delivered("video")
    assert [(d.msn, d.part) for d in delivered if d.msn == 15][-1] == (15, None)
    last = delivered[-1]
    assert (last.msn, last.part) == (22, 8)  # at the live edge (45.8 s)
    assert h.session.counters.get("skipped", 0) == 0


def test_a_part_error_on_a_listed_part_is_still_retried() -> None:
    """A part the server still lists is retried as before (no whole segment)."""
    origin = FakeOrigin(StreamSpec(renditions=("720p",)))
    failed: set[str] = set()

    def fault(path: str, now: float) -> int | str | None:
        if path.endswith("part15.3.m4s") and path not in failed:
            failed.add(path)
            return 404
        return None

    origin.fault = fault
    h = harness(origin)
    h.start(30.05)
    h.run_until(36.0)
    delivered = h.delivered("video")
    assert all(d.part is not None for d in delivered)
    assert len(requests_of(h, "part15.3.m4s")) == 2
    assert not requests_of(h, "seg15.m4s")


def test_a_segment_that_left_the_window_goes_on_at_the_oldest_one() -> None:
    """An outage longer than the window (10 segments, 20 s): the track goes on at the
    oldest segment listed, whole, not at the live edge, and drops what was on its way."""
    spec = StreamSpec(renditions=("720p",))
    h = harness(TrimmingOrigin(spec), SessionConfig(blocking_margin=30.0))
    h.start(30.05)
    h.run_until(56.0)
    delivered = h.delivered("video")
    before = [d for d in delivered if d.msn <= 15]
    after = delivered[len(before) :]
    assert (before[-1].msn, before[-1].part) == (15, 4)
    assert after, "the track never went on"
    # at 52.x s the origin lists segments 16..25; 15 left the window
    # (16.0-16.4 were lost: 16 whole; 17 on came part by part before and is here)
    assert [(d.msn, d.part) for d in after[:3]] == [(16, None), (17, 0), (17, 1)]
    assert after[0].start_us == 1_700_000_032_000_000  # 16 starts at 32 s (PDT)
    # what was on its way for 15.5 on was cancelled, nothing of 15 asked again
    cancelled = {a.request_id for _, a in h.actions if isinstance(a, Cancel)}
    lost = [f for _, f in h.fetches() if f.kind == "part" and f.msn == 15 and (f.part or 0) >= 5]
    assert lost and all(f.request_id in cancelled for f in lost)
    assert h.session.cursor("video") is not None
    assert h.failed() == []


def test_whole_segment_delivery_is_what_the_model_supports() -> None:
    """The whole segment covers the cursor's position: a Deliver without part."""
    h = harness(TrimmingOrigin(StreamSpec(renditions=("720p",))))
    h.start(30.05)
    h.run_until(44.0)
    wholes = [d for d in h.delivered("video") if d.part is None]
    assert wholes and all(isinstance(d, Deliver) and d.duration_us == 2_000_000 for d in wholes)
