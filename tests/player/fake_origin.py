"""An in-memory LL-HLS origin on a virtual clock, and a harness that drives a Session.

The origin produces a synthetic live stream from time 0: part ``i`` of
segment ``msn`` is complete at ``(msn * parts_per_segment + i + 1) * part``
seconds. Playlists are built with :mod:`llhls.playlist.model` and rendered
with :mod:`llhls.playlist.render`; blocking reloads and preload-hinted parts
are answered when the media they wait for exists, plus ``rtt``.

By default a response arrives whole at its answer time. With
``Harness.link_rate`` set, response bodies then cross a link of that many
bytes/s shared fairly by every transfer under way (processor sharing), and
with ``Harness.enforce_timeouts`` a request not answered within its
``Fetch.timeout`` fails with ``"timeout"`` (its transfer is abandoned), as a
real adapter does.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from urllib.parse import parse_qs, urlsplit

from llhls.playlist.model import (
    Map,
    MediaPlaylist,
    MultivariantPlaylist,
    OpenSegment,
    Part,
    PreloadHint,
    Rendition,
    RenditionReport,
    Segment,
    ServerControl,
    Skip,
    Variant,
)
from llhls.playlist.render import render_media, render_multivariant
from player.actions import Action, Cancel, Deliver, EndOfStream, Failed, Fetch, InitSection
from player.session import Session

Fault = Callable[[str, float], "int | str | None"]


@dataclass
class StreamSpec:
    """Shape of the synthetic stream."""

    renditions: tuple[str, ...] = ("720p", "360p", "audio")
    part: Fraction = Fraction(1, 5)
    parts_per_segment: int = 10
    window: int = 10
    parts_window: int = 3
    independent_every: int = 10
    low_latency: bool = True
    can_block_reload: bool = True
    can_skip: bool = True
    pdt_base_ms: int | None = 1_700_000_000_000
    end_at_msn: int | None = None
    audio_part: Fraction | None = None

    @property
    def segment(self) -> Fraction:
        return self.part * self.parts_per_segment

    @property
    def target_duration(self) -> int:
        return math.ceil(self.segment)


@dataclass
class FakeOrigin:
    spec: StreamSpec = field(default_factory=StreamSpec)
    rtt: float = 0.02
    fault: Fault | None = None
    epoch: float = 0.0
    segment_bytes: int = 0
    """Pad whole-segment bodies to this many bytes (0: a short label only)."""
    log: list[tuple[float, str]] = field(default_factory=list)

    # -- stream state -------------------------------------------------------------------

    def part_dur(self, rid: str) -> Fraction:
        if rid == "audio" and self.spec.audio_part is not None:
            return self.spec.audio_part
        return self.spec.part

    def produced(self, now: float) -> int:
        """Parts complete at ``now`` (all renditions share the grid)."""
        n = math.floor(Fraction(now - self.epoch) / self.spec.part + Fraction(1, 10**9))
        if self.spec.end_at_msn is not None:
            n = min(n, (self.spec.end_at_msn + 1) * self.spec.parts_per_segment)
        return n

    def part_ready_at(self, msn: int, index: int) -> float:
        return self.epoch + float((msn * self.spec.parts_per_segment + index + 1) * self.spec.part)

    def ended(self, now: float) -> bool:
        end = self.spec.end_at_msn
        return end is not None and self.produced(now) >= (end + 1) * self.spec.parts_per_segment

    def media_playlist(self, rid: str, now: float, skip: bool = False) -> MediaPlaylist:
        spec = self.spec
        pps = spec.parts_per_segment
        n = self.produced(now)
        complete, open_parts = divmod(n, pps)
        first = max(0, complete - spec.window)
        dur = self.part_dur(rid)
        ll = spec.low_latency

        def parts(msn: int, count: int) -> tuple[Part, ...]:
            return tuple(
                Part(
                    uri=f"part{msn}.{i}.m4s",
                    duration=dur,
                    independent=rid == "audio" or i % spec.independent_every == 0,
                )
                for i in range(count)
            )

        def pdt(msn: int) -> int | None:
            base = spec.pdt_base_ms
            return None if base is None else base + int(msn * spec.segment * 1000)

        segments = [
            Segment(
                uri=f"seg{msn}.m4s",
                duration=dur * pps,
                pdt_ms=pdt(msn),
                parts=parts(msn, pps) if ll and msn >= complete - spec.parts_window else (),
            )
            for msn in range(first, complete)
        ]
        open_segment = None
        if ll and open_parts and not self.ended(now):
            open_segment = OpenSegment(parts=parts(complete, open_parts), pdt_ms=pdt(complete))
        td = spec.target_duration
        sc = ServerControl(
            can_block_reload=spec.can_block_reload,
            can_skip_until=Fraction(6 * td) if spec.can_skip else None,
            hold_back=Fraction(3 * td),
            part_hold_back=3 * spec.part if ll else None,
        )
        skip_tag = None
        media_sequence = first
        if skip and spec.can_skip:
            assert sc.can_skip_until is not None
            skipped = 0
            remaining = sum((s.duration for s in segments), Fraction(0))
            while skipped < len(segments) and remaining - segments[skipped].duration >= (
                sc.can_skip_until
            ):
                remaining -= segments[skipped].duration
                skipped += 1
            if skipped:
                skip_tag = Skip(skipped)
                segments = segments[skipped:]
        hints: tuple[PreloadHint, ...] = ()
        if ll and not self.ended(now):
            hints = (PreloadHint(uri=f"part{complete}.{open_parts}.m4s"),)
        reports = []
        for other in spec.renditions:
            if other == rid:
                continue
            if ll:
                last = (complete, open_parts - 1) if open_parts else (complete - 1, pps - 1)
                reports.append(RenditionReport(f"../{other}/media.m3u8", last[0], last[1]))
            else:
                reports.append(RenditionReport(f"../{other}/media.m3u8", complete - 1))
        return MediaPlaylist(
            target_duration=td,
            version=9,
            media_sequence=media_sequence,
            part_target=spec.part if ll else None,
            server_control=sc
            if (spec.can_block_reload or spec.can_skip or ll)
            else ServerControl(hold_back=Fraction(3 * td)),
            map=Map("init.mp4"),
            skip=skip_tag,
            segments=tuple(segments),
            open_segment=open_segment,
            preload_hints=hints,
            rendition_reports=tuple(reports),
            endlist=self.ended(now),
        )

    def multivariant(self) -> MultivariantPlaylist:
        variants = []
        renditions = []
        bandwidth = {"720p": 3_000_000, "360p": 800_000, "1080p": 6_000_000}
        has_audio = "audio" in self.spec.renditions
        for rid in self.spec.renditions:
            if rid == "audio":
                renditions.append(
                    Rendition(
                        "AUDIO",
                        "aud",
                        "audio",
                        uri="audio/media.m3u8",
                        default=True,
                        autoselect=True,
                    )
                )
            else:
                variants.append(
                    Variant(
                        uri=f"{rid}/media.m3u8",
                        bandwidth=bandwidth.get(rid, 1_000_000),
                        audio="aud" if has_audio else None,
                    )
                )
        return MultivariantPlaylist(variants=tuple(variants), renditions=tuple(renditions))

    # -- HTTP ---------------------------------------------------------------------------

    def handle(self, path_and_query: str, now: float) -> tuple[float, int | str, bytes]:
        """(answer time, status or error text, body) of a GET at ``now``."""
        self.log.append((now, path_and_query))
        if self.fault is not None:
            injected = self.fault(path_and_query, now)
            if injected is not None:
                return now + self.rtt, injected, b""
        split = urlsplit(path_and_query)
        query = {k: v[0] for k, v in parse_qs(split.query).items()}
        pieces = split.path.strip("/").split("/")
        if pieces == ["live", "index.m3u8"]:
            return now + self.rtt, 200, render_multivariant(self.multivariant()).encode()
        if len(pieces) != 3 or pieces[0] != "live" or pieces[1] not in self.spec.renditions:
            return now + self.rtt, 404, b""
        rid, name = pieces[1], pieces[2]
        pps = self.spec.parts_per_segment
        if name == "media.m3u8":
            at = now
            if "_HLS_msn" in query and not self.ended(now):
                msn = int(query["_HLS_msn"])
                part = int(query["_HLS_part"]) if "_HLS_part" in query else None
                if part is None:
                    ready = self.part_ready_at(msn, pps - 1)
                else:
                    if part >= pps:
                        msn, part = msn + 1, 0
                    ready = self.part_ready_at(msn, part)
                if msn > self.produced(now) // pps + 2:
                    return now + self.rtt, 400, b""
                at = max(now, ready)
            pl = self.media_playlist(rid, at, skip=query.get("_HLS_skip") == "YES")
            return at + self.rtt, 200, render_media(pl).encode()
        if name == "init.mp4":
            return now + self.rtt, 200, f"init:{rid}".encode()
        n = self.produced(now)
        if name.startswith("part"):
            msn_text, index_text = name[4:-4].split(".")
            msn, index = int(msn_text), int(index_text)
            position = msn * pps + index
            if position < n:
                return now + self.rtt, 200, f"{rid}:{msn}.{index}".encode()
            if position == n and not self.ended(now):
                return (
                    self.part_ready_at(msn, index) + self.rtt,
                    200,
                    f"{rid}:{msn}.{index}".encode(),
                )
            return now + self.rtt, 404, b""
        if name.startswith("seg"):
            msn = int(name[3:-4])
            if (msn + 1) * pps <= n:
                body = f"{rid}:{msn}".encode()
                return now + self.rtt, 200, body.ljust(self.segment_bytes, b".")
            return now + self.rtt, 404, b""
        return now + self.rtt, 404, b""


@dataclass
class Harness:
    """Runs a Session against a FakeOrigin on a virtual clock."""

    origin: FakeOrigin
    session: Session
    now: float = 0.0
    actions: list[tuple[float, Action]] = field(default_factory=list)
    _heap: list[tuple[float, int, int, int | str, bytes]] = field(default_factory=list)
    _seq: int = 0
    _cancelled: set[int] = field(default_factory=set)
    drop_at: list[float] = field(default_factory=list)
    link_rate: float | None = None
    """Bytes/s of a link shared fairly by the bodies in transfer (``None``: no link)."""
    enforce_timeouts: bool = False
    """Fail a request with ``"timeout"`` when it is not answered within ``Fetch.timeout``."""
    _deadlines: dict[int, float] = field(default_factory=dict)
    _transfers: dict[int, tuple[list[float], int | str, bytes]] = field(default_factory=dict)
    _link_at: float = 0.0
    answered: list[tuple[float, int, float]] = field(default_factory=list)
    """(time, request id, seconds since it was sent) of every response delivered."""
    timed_out: list[tuple[float, int]] = field(default_factory=list)
    """(time, request id) of every request failed for its timeout."""
    _sent_at: dict[int, float] = field(default_factory=dict)

    def start(self, at: float) -> None:
        self.now = at
        self._link_at = at
        self.session.start(at)
        self._drain()

    def _drain(self) -> None:
        while (action := self.session.next_action()) is not None:
            self.actions.append((self.now, action))
            if isinstance(action, Fetch):
                when, status, body = self.origin.handle(action.path_and_query, self.now)
                self._seq += 1
                heapq.heappush(self._heap, (when, self._seq, action.request_id, status, body))
                self._sent_at[action.request_id] = self.now
                if self.enforce_timeouts:
                    self._deadlines[action.request_id] = self.now + action.timeout
            elif isinstance(action, Cancel):
                self._cancelled.add(action.request_id)
                self._deadlines.pop(action.request_id, None)
                self._transfers.pop(action.request_id, None)

    # -- the link -------------------------------------------------------------------------

    def _advance_link(self, t: float) -> None:
        if self._transfers and self.link_rate is not None and t > self._link_at:
            share = (t - self._link_at) * self.link_rate / len(self._transfers)
            for remaining, _, _ in self._transfers.values():
                remaining[0] -= share
        self._link_at = max(self._link_at, t)

    def _next_transfer(self) -> tuple[float, int] | None:
        if not self._transfers or self.link_rate is None:
            return None
        rid = min(self._transfers, key=lambda r: (self._transfers[r][0][0], r))
        left = max(0.0, self._transfers[rid][0][0])
        return self._link_at + left * len(self._transfers) / self.link_rate, rid

    def _next_deadline(self) -> tuple[float, int] | None:
        if not self._deadlines:
            return None
        rid = min(self._deadlines, key=lambda r: (self._deadlines[r], r))
        return self._deadlines[rid], rid

    def _answer(self, rid: int, status: int | str, body: bytes, t: float) -> None:
        self._deadlines.pop(rid, None)
        if isinstance(status, str):
            self.session.on_error(rid, status, t)
        else:
            self.answered.append((t, rid, t - self._sent_at.get(rid, t)))
            self.session.on_response(rid, status, body, t)

    # -- events ---------------------------------------------------------------------------

    def step(self) -> bool:
        """Process the next event; False when there is none."""
        t = self._next_time()
        if t is None:
            return False
        self._advance_link(t)
        self.now = t
        drops = [d for d in self.drop_at if d >= self.now]
        deadline = self._next_deadline()
        transfer = self._next_transfer()
        if drops and min(drops) <= t:
            self.drop_at.remove(min(drops))
            pending, self._heap = self._heap, []
            for _, _, rid, _, _ in sorted(pending):
                if rid not in self._cancelled:
                    self._deadlines.pop(rid, None)
                    self.session.on_error(rid, "connection lost", t)
            for rid in sorted(self._transfers):
                self._deadlines.pop(rid, None)
                self.session.on_error(rid, "connection lost", t)
            self._transfers.clear()
        elif deadline is not None and deadline[0] <= t:
            rid = deadline[1]
            del self._deadlines[rid]
            self._cancelled.add(rid)  # whatever is on its way is abandoned
            self._transfers.pop(rid, None)
            self.timed_out.append((t, rid))
            self.session.on_error(rid, "timeout", t)
        elif transfer is not None and transfer[0] <= t:
            _, status, body = self._transfers.pop(transfer[1])
            self._answer(transfer[1], status, body, t)
        elif self._heap and self._heap[0][0] <= t:
            _, _, rid, status, body = heapq.heappop(self._heap)
            if rid not in self._cancelled:
                if self.link_rate is not None and body and not isinstance(status, str):
                    self._transfers[rid] = ([float(len(body))], status, body)
                else:
                    self._answer(rid, status, body, t)
        else:
            self.session.handle_timer(t)
        self._drain()
        return True

    def run_until(self, until: float) -> None:
        while True:
            nxt = self._next_time()
            if nxt is None or nxt > until:
                break
            self.step()
        self._advance_link(until)
        self.now = max(self.now, until)

    def _next_time(self) -> float | None:
        times = [self._heap[0][0]] if self._heap else []
        timer = self.session.get_timer()
        if timer is not None:
            times.append(timer)
        times.extend(d for d in self.drop_at if d >= self.now)
        for event in (self._next_deadline(), self._next_transfer()):
            if event is not None:
                times.append(event[0])
        return max(self.now, min(times)) if times else None

    # -- views --------------------------------------------------------------------------

    def fetches(self) -> list[tuple[float, Fetch]]:
        return [(t, a) for t, a in self.actions if isinstance(a, Fetch)]

    def delivered(self, track: str | None = None) -> list[Deliver]:
        return [
            a
            for _, a in self.actions
            if isinstance(a, Deliver) and (track is None or a.track == track)
        ]

    def inits(self) -> list[InitSection]:
        return [a for _, a in self.actions if isinstance(a, InitSection)]

    def failed(self) -> list[Failed]:
        return [a for _, a in self.actions if isinstance(a, Failed)]

    def ends(self) -> list[EndOfStream]:
        return [a for _, a in self.actions if isinstance(a, EndOfStream)]
