"""The LL-HLS session: a sans-I/O state machine, in the manner of aioquic's QuicConnection.

Inputs are calls that carry the time: :meth:`Session.start`,
:meth:`Session.on_response`, :meth:`Session.on_error`,
:meth:`Session.handle_timer` (at :meth:`Session.get_timer`) and
:meth:`Session.switch`. Outputs are :mod:`player.actions` values popped with
:meth:`Session.next_action`: ``Fetch`` and ``Cancel`` for the transport,
``InitSection``, ``Deliver`` and ``EndOfStream`` for the decoder and buffer,
``Failed`` when it gives up. No sockets, no asyncio, no clock.

Flow: multivariant playlist -> rendition choice (the ``select`` hook) -> one
:class:`_Track` per followed playlist (``video``: the variant; ``audio``: its
alternate audio rendition). A track loads its playlist, starts at an
independent part PART-HOLD-BACK from the live edge (audio starts where video
did), fetches the CMAF header, then loops: a blocking reload
``?_HLS_msn=M&_HLS_part=N`` for the next part *and* the preload-hinted part
go out together; parts are delivered in order once the playlist lists them.
Delta updates (``_HLS_skip=YES``) are merged into the known playlist. Errors
back off (doubling) and make the next reload a full one. Classic playlists
(no parts) are followed segment by segment, with blocking ``_HLS_msn`` reloads
when offered and timed reloads otherwise; whole segments are fetched in
playback order, ``max_segment_inflight`` at a time, each with a timeout scaled
to what it carries and doubled on every retry (see
:attr:`~player.actions.SessionConfig.segment_timeout_factor`).

A track that fell behind keeps fetching the parts of segments the server lists
without parts any more (their files outlive their tags for a while); once such a
part fails, the track fetches the segment whole instead of retrying it, and
delivers it from its start (over what it delivered of it already). A track whose
segment left the playlist window goes on at the oldest segment listed.
"""

from __future__ import annotations

import logging
from collections import deque
from fractions import Fraction

from llhls.errors import PlaylistError
from llhls.playlist.model import MediaPlaylist, MultivariantPlaylist
from llhls.playlist.parse import parse
from player.actions import (
    Action,
    Cancel,
    Deliver,
    Failed,
    Fetch,
    RenditionInfo,
    RequestKind,
    Selector,
    SessionConfig,
    TrackName,
    default_select,
)
from player.timeline import Position, backoff, live_edge, segment_times
from player.track import Request, Track, rendition_id, resolve

__all__ = ["Session", "resolve", "rendition_id"]

logger = logging.getLogger(__name__)

_RATE_WEIGHT = 0.3
"""Weight of the newest sample in the moving average of segment throughput."""


class Session:
    """The LL-HLS client state machine for one stream.

    ``url`` is the absolute path (and query) of the multivariant playlist on
    the origin, e.g. ``/live/index.m3u8``; a media playlist's path works too
    (one track, no rendition choice). ``select`` picks the renditions once the
    multivariant playlist is known (default :func:`player.actions.default_select`).
    """

    def __init__(
        self, url: str, config: SessionConfig | None = None, *, select: Selector | None = None
    ) -> None:
        if not url.startswith("/"):
            raise ValueError(f"url must be an absolute path, got {url!r}")
        self.url = url
        self.config = config or SessionConfig()
        self._select = select or default_select
        self._actions: deque[Action] = deque()
        self._requests: dict[int, Request] = {}
        self._next_id = 1
        self._now = 0.0
        self._mv_failures = 0
        self._mv_wait: float | None = None
        self._started = False
        self.failed = False
        self.renditions: tuple[RenditionInfo, ...] = ()
        """Every rendition of the multivariant playlist (after it loaded)."""
        self.tracks: dict[TrackName, Track] = {}
        self._pending: Track | None = None
        self.anchor: tuple[int, Fraction] | None = None
        """Where the video track started: (msn, offset into that segment)."""
        self.anchor_us = 0
        """Media time of the anchor segment's start (its PDT in µs, or 0)."""
        self.use_pdt = False
        """Whether the media timeline is the PROGRAM-DATE-TIME."""
        self.restarted = False
        """The stream restarted once: the timeline continues from where it was, not on PDT."""
        self.timeline_end_us = 0
        """End of the latest delivered chunk on the media timeline."""
        self.segment_rate: float | None = None
        """Observed throughput of whole-segment downloads, bytes/s (a moving average
        over completed ones, request to last byte); ``None`` before the first."""
        self.reports: dict[str, tuple[int, int | None]] = {}
        """Latest (LAST-MSN, LAST-PART) of each rendition id, from rendition reports."""
        self.counters: dict[str, int] = {}
        """Event counts: ``requests``, ``hints``, ``playlist_requests``, ``full_requests``,
        ``delta_requests``, ``blocking_requests``, ``delta_merged``, ``delta_mismatch``,
        ``failures``, ``skipped``, ``switches``, ``restarts``."""

    # -- inputs ------------------------------------------------------------------------------

    def start(self, now: float) -> None:
        """Begin: request the multivariant playlist."""
        if self._started:
            raise RuntimeError("session already started")
        self._started = True
        self._now = now
        self._send_multivariant(now)

    def on_response(self, request_id: int, status: int, body: bytes, now: float) -> None:
        """A complete response to request ``request_id``."""
        self._now = max(self._now, now)
        req = self._requests.pop(request_id, None)
        if req is None or self.failed:
            return  # cancelled or unknown
        if status != 200:
            self._on_failure(req, str(status), now)
            return
        track = req.track
        if track is None:
            self._on_multivariant(body, now)
        elif track.retired:
            return
        elif req.kind == "playlist":
            track.on_playlist(body, now)
        else:
            if req.kind == "segment":
                self._note_rate(len(body), now - req.sent_at)
            track.on_media(req, body, now)

    def on_error(self, request_id: int, error: str, now: float) -> None:
        """Request ``request_id`` failed without a response (timeout, connection lost)."""
        self._now = max(self._now, now)
        req = self._requests.pop(request_id, None)
        if req is None or self.failed:
            return
        self._on_failure(req, error or "error", now)

    def handle_timer(self, now: float) -> None:
        """Time has come (see :meth:`get_timer`): issue due retries and reloads."""
        self._now = max(self._now, now)
        if self.failed:
            return
        if self._mv_wait is not None and now >= self._mv_wait:
            self._mv_wait = None
            self._send_multivariant(now)
        self.pump(now)

    def get_timer(self) -> float | None:
        """The next time :meth:`handle_timer` should be called, or ``None``."""
        if self.failed:
            return None
        times = [self._mv_wait] if self._mv_wait is not None else []
        for track in self._all_tracks():
            times.extend(t for t in track.timers() if t > self._now)
        return min(times) if times else None

    def switch(self, rendition: str, now: float) -> None:
        """Switch the video track to variant ``rendition`` at its next independent part.

        The current rendition keeps playing until the switch point; the new
        one's playlist is requested at its last reported part (rendition
        report), so the answer comes at once and is no older than that.
        """
        self._now = max(self._now, now)
        info = next((r for r in self.renditions if r.id == rendition and r.type == "video"), None)
        if info is None:
            raise ValueError(f"no variant {rendition!r}")
        current = self.tracks.get("video")
        if current is None or self.failed:
            raise RuntimeError("the session has not started a video track yet")
        if self._pending is not None:
            if self._pending.rendition.id == rendition:
                return
            self.cancel_all(self._pending)
            self._pending.retired = True
            current.stop_at = None
            self._pending = None
        if current.rendition.id == rendition:
            return
        new = Track(self, "video", info)
        if current.cursor is None:
            current.retired = True
            self.cancel_all(current)
            self.tracks["video"] = new
            self.pump(now)
            return
        new.active = False
        new.switch_from = current
        current.stop_at = (current.cursor[0] + 1, 0)
        report = self.reports.get(rendition)
        if report is not None and self.config.low_latency:
            new.first_directive = report
        self._pending = new
        logger.info("switching video %s -> %s", current.rendition.id, rendition)
        self.pump(now)

    def close(self) -> None:
        """Cancel every request in flight (``Cancel`` actions); nothing else follows."""
        for rid in list(self._requests):
            self.cancel(rid)
        self.failed = True

    # -- outputs -----------------------------------------------------------------------------

    def next_action(self) -> Action | None:
        """The next action for the adapter, or ``None`` when there is none."""
        return self._actions.popleft() if self._actions else None

    def current_rendition(self, track: TrackName) -> str | None:
        """The rendition id being delivered on ``track``."""
        t = self.tracks.get(track)
        return t.rendition.id if t is not None else None

    def playlist(self, track: TrackName) -> MediaPlaylist | None:
        """The known (merged) media playlist of ``track``."""
        t = self.tracks.get(track)
        return t.playlist if t is not None else None

    def edge_pdt_us(self, track: TrackName) -> int | None:
        """Capture time (PROGRAM-DATE-TIME, UTC µs) of the end of the newest chunk listed
        in ``track``'s playlist; ``None`` without a playlist or dates."""
        t = self.tracks.get(track)
        pl = t.playlist if t is not None else None
        if t is None or pl is None:
            return None
        starts, pdts = segment_times(pl)
        dated = [msn for msn in pdts if msn in starts]
        if not dated:
            return None
        msn = max(dated)
        edge = live_edge(pl, use_parts=t.use_parts)
        return round((pdts[msn] + (edge - starts[msn]) * 1000) * 1000)

    def hold_back(self, track: TrackName) -> Fraction | None:
        """How far behind the live edge ``track`` starts (the configured hold-back, else
        the playlist's PART-HOLD-BACK or HOLD-BACK), once its playlist is known."""
        t = self.tracks.get(track)
        if t is None or t.playlist is None:
            return None
        return t.hold_back_of(t.playlist)

    def cursor(self, track: TrackName) -> Position | None:
        """The next position ``track`` will deliver."""
        t = self.tracks.get(track)
        return t.cursor if t is not None else None

    @property
    def in_flight(self) -> int:
        """Requests sent and not answered yet."""
        return len(self._requests)

    # -- used by tracks ----------------------------------------------------------------------

    def emit(self, action: Action) -> None:
        if isinstance(action, Deliver):
            self.timeline_end_us = max(self.timeline_end_us, action.start_us + action.duration_us)
        self._actions.append(action)

    def count(self, key: str) -> None:
        self.counters[key] = self.counters.get(key, 0) + 1

    def send(
        self,
        now: float,
        kind: RequestKind,
        track: Track | None,
        uri: str,
        path: str,
        msn: int | None,
        part: int | None,
        timeout: float,
        *,
        blocking: bool = False,
        hint: bool = False,
    ) -> int:
        rid = self._next_id
        self._next_id += 1
        self._requests[rid] = Request(kind, track, uri, hint, now, timeout, msn)
        self.count("requests")
        if hint:
            self.count("hints")
        self.emit(
            Fetch(
                request_id=rid,
                path_and_query=path,
                kind=kind,
                track=track.name if track is not None else None,
                rendition=track.rendition.id if track is not None else None,
                msn=msn,
                part=part,
                timeout=timeout,
                blocking=blocking,
            )
        )
        return rid

    def cancel(self, request_id: int) -> None:
        if self._requests.pop(request_id, None) is not None:
            self.emit(Cancel(request_id))

    def cancel_all(self, track: Track) -> None:
        for rid, req in list(self._requests.items()):
            if req.track is track:
                self.cancel(rid)
        track.inflight.clear()
        track.segment_inflight.clear()
        track.playlist_req = None

    def fail(self, reason: str) -> None:
        if self.failed:
            return
        logger.error("session failed: %s", reason)
        for rid in list(self._requests):
            self.cancel(rid)
        self.failed = True
        self.emit(Failed(reason))

    def retire(self, old: Track, now: float) -> None:
        """``old`` reached the switch point: the pending track takes its place."""
        new = self._pending
        old.retired = True
        self.cancel_all(old)
        if new is None or new.switch_from is not old:
            return
        self._pending = None
        if new.cursor is None:
            new.cursor = old.stop_at
            new.seg_start_us.update(old.seg_start_us)
        new.active = True
        new.switch_from = None
        self.tracks[old.name] = new
        self.count("switches")
        new.pump(now)

    def restart(self) -> None:
        """The stream restarted (media sequence went back): start every track afresh."""
        self.count("restarts")
        if self._pending is not None:
            self.cancel_all(self._pending)
            self._pending.retired = True
            self._pending = None
        for track in self.tracks.values():
            track.reset()
        self.anchor = None
        self.restarted = True

    def note_reports(self, track: Track, pl: MediaPlaylist) -> None:
        for report in pl.rendition_reports:
            path = resolve(track.rendition.uri, report.uri)
            info = next((r for r in self.renditions if r.uri == path), None)
            key = info.id if info is not None else rendition_id(path)
            self.reports[key] = (report.last_msn, report.last_part)
        if pl.open_segment is not None:
            last = (pl.next_msn, len(pl.open_segment.parts) - 1)
            self.reports[track.rendition.id] = (last[0], last[1])
        elif pl.segments:
            parts = len(pl.segments[-1].parts)
            self.reports[track.rendition.id] = (pl.next_msn - 1, parts - 1 if parts else None)

    # -- internals ---------------------------------------------------------------------------

    def _all_tracks(self) -> list[Track]:
        out = list(self.tracks.values())
        if self._pending is not None:
            out.append(self._pending)
        return out

    def pump(self, now: float) -> None:
        """Let every track deliver what is ready and send what is due."""
        for track in self._all_tracks():
            track.pump(now)

    def _note_rate(self, size: int, seconds: float) -> None:
        """Fold one whole-segment download into :attr:`segment_rate`."""
        if size <= 0 or seconds <= 0:
            return
        sample = size / seconds
        rate = self.segment_rate
        self.segment_rate = sample if rate is None else rate + _RATE_WEIGHT * (sample - rate)

    def _send_multivariant(self, now: float) -> None:
        self.send(now, "multivariant", None, self.url, self.url, None, None, self._timeout())

    def _timeout(self) -> float:
        return self.config.request_timeout

    def _on_failure(self, req: Request, reason: str, now: float) -> None:
        self.count("failures")
        track = req.track
        if track is None:
            self._mv_failures += 1
            if self._mv_failures >= self.config.max_failures:
                self.fail(f"multivariant playlist: {reason} ({self._mv_failures} failures)")
                return
            cfg = self.config
            self._mv_wait = now + backoff(self._mv_failures, cfg.retry_base, cfg.retry_cap)
            return
        if track.retired:
            return
        if req.kind == "playlist":
            track.fail_playlist(reason, now)
        else:
            track.fail_media(req, reason, now)

    def _on_multivariant(self, body: bytes, now: float) -> None:
        try:
            pl = parse(body.decode("utf-8"))
        except (PlaylistError, UnicodeDecodeError) as exc:
            self.fail(f"not an HLS playlist: {exc}")
            return
        if isinstance(pl, MediaPlaylist):
            info = RenditionInfo(rendition_id(self.url), "video", self.url)
            self.renditions = (info,)
            track = Track(self, "video", info)
            self.tracks["video"] = track
            track.playlist_req = -1  # answered below
            track.on_playlist(body, now)
            return
        self.renditions = self._renditions(pl)
        if not self.renditions:
            self.fail("the multivariant playlist lists no variant")
            return
        try:
            video_id, audio_id = self._select(self.renditions)
        except ValueError as exc:
            self.fail(f"no rendition to play: {exc}")
            return
        by_id = {r.id: r for r in self.renditions}
        if video_id not in by_id or (audio_id is not None and audio_id not in by_id):
            self.fail(f"selection {video_id!r}, {audio_id!r} names no rendition")
            return
        self.tracks["video"] = Track(self, "video", by_id[video_id])
        if audio_id is not None:
            self.tracks["audio"] = Track(self, "audio", by_id[audio_id])
        self.pump(now)

    def _renditions(self, pl: MultivariantPlaylist) -> tuple[RenditionInfo, ...]:
        out: list[RenditionInfo] = []
        seen: set[str] = set()

        def unique(path: str) -> str:
            key = rendition_id(path)
            return path if key in seen else key

        for v in pl.variants:
            path = resolve(self.url, v.uri)
            info = RenditionInfo(
                unique(path), "video", path, v.bandwidth, v.resolution, v.codecs, v.audio
            )
            seen.add(info.id)
            out.append(info)
        for r in pl.renditions:
            if r.type != "AUDIO" or r.uri is None:
                continue
            path = resolve(self.url, r.uri)
            info = RenditionInfo(
                unique(path), "audio", path, group=r.group_id, name=r.name, default=r.default
            )
            seen.add(info.id)
            out.append(info)
        return tuple(out)
