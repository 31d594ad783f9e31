"""One followed media playlist: the per-track half of :mod:`player.session`.

A :class:`Track` keeps the known (merged) playlist of one rendition, the
cursor (next position to deliver), the requests in flight, media that arrived
and waits for its turn, and back-off state. It never emits anything itself:
it calls back into its :class:`~player.session.Session` (``send``, ``emit``,
``cancel_all``, ...), which owns the request ids and the action queue.
"""

from __future__ import annotations

import logging
import re
from bisect import bisect_left
from collections.abc import Iterable
from fractions import Fraction
from functools import lru_cache
from posixpath import basename, dirname
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from llhls.errors import PlaylistError
from llhls.playlist.model import MediaPlaylist
from llhls.playlist.parse import parse_media
from player.actions import (
    Deliver,
    EndOfStream,
    InitSection,
    PlayFrom,
    RenditionInfo,
    RequestKind,
    TrackName,
)
from player.timeline import (
    Chunk,
    ChunkMemo,
    Position,
    backoff,
    choose_aligned,
    choose_start,
    chunks,
    hint_position,
    hinted_part_uri,
    last_position,
    live_edge,
    map_uris,
    merge_update,
    next_position,
    segment_times,
    skip_directive,
    with_directives,
)

if TYPE_CHECKING:
    from player.session import Session

__all__ = ["Request", "Track", "resolve", "rendition_id"]

logger = logging.getLogger(__name__)

_ZERO = Fraction(0)


def resolve(base: str, uri: str) -> str:
    """``uri`` (relative to the resource at path ``base``) as an absolute path and query."""
    path, foreign = _resolve(base, uri)
    if foreign:
        logger.debug("URI %r is on another origin; fetching its path on ours", uri)
    return path


_PLAIN_NAME = re.compile(r"[A-Za-z0-9._~-]+")
"""A URI that is one plain path segment (``part_12_3.mp4``): no scheme, no slash, no
query, no escape."""


@lru_cache(maxsize=4096)
def _resolve(base: str, uri: str) -> tuple[str, bool]:
    """(absolute path and query, whether ``uri`` names another origin): a pure function
    of two strings, remembered (a live client resolves the same URIs again and again).

    A plain file name (not ``.`` or ``..``) only replaces the last segment of the
    path ``base`` resolves to, so it is appended to the directory ``base`` gives
    any such name (found once per base) without a full ``urljoin``.
    """
    if uri not in (".", "..") and _PLAIN_NAME.fullmatch(uri) is not None:
        directory, foreign = _directory(base)
        if directory is not None:
            return directory + uri, foreign
    return _join(base, uri)


def _join(base: str, uri: str) -> tuple[str, bool]:
    joined = urlsplit(urljoin(base, uri))
    path = joined.path or "/"
    return (f"{path}?{joined.query}" if joined.query else path), bool(joined.netloc)


@lru_cache(maxsize=256)
def _directory(base: str) -> tuple[str | None, bool]:
    """What :func:`_join` gives ``base`` and a plain name, minus the name (``None``
    when that is not a plain path prefix ending in ``/``, e.g. ``base`` is empty)."""
    path, foreign = _join(base, "x")
    if not path.endswith("/x"):
        return None, foreign
    return path[:-1], foreign


def rendition_id(path: str) -> str:
    """Short id of a media playlist path: its directory's name, else the path."""
    path = path.split("?", 1)[0]
    parent = basename(dirname(path))
    return parent or path


def _round_ratio(numerator: int, denominator: int) -> int:
    """``round(Fraction(numerator, denominator))`` (halves to even; ``denominator > 0``)
    without making the Fraction."""
    floor, remainder = divmod(numerator, denominator)
    if remainder * 2 < denominator:
        return floor
    if remainder * 2 > denominator or floor % 2:
        return floor + 1
    return floor


def _position(chunk: Chunk) -> Position:
    return chunk.position


def _parts_listed_from(update: MediaPlaylist) -> int:
    """The MSN from which the server response ``update`` lists every segment with its
    parts: it lists the segments before it whole (or skips them)."""
    msn = update.next_msn
    for seg in reversed(update.segments):
        if not seg.parts:
            break
        msn -= 1
    return msn


def _any_part_byterange(pl: MediaPlaylist) -> bool:
    """Whether any listed part (the open segment's included) has a byte range."""
    for seg in pl.segments:
        for p in seg.parts:
            if p.byterange:
                return True
    return pl.open_segment is not None and any(p.byterange for p in pl.open_segment.parts)


class Request:
    """Book-keeping of one request in flight."""

    __slots__ = ("kind", "track", "uri", "hint", "sent_at", "timeout", "msn")

    def __init__(
        self,
        kind: RequestKind,
        track: Track | None,
        uri: str,
        hint: bool,
        now: float,
        timeout: float = 0.0,
        msn: int | None = None,
    ) -> None:
        self.kind = kind
        self.track = track
        self.uri = uri
        self.hint = hint
        self.sent_at = now
        self.timeout = timeout
        self.msn = msn
        """Media sequence number of the (parent) segment of a media request."""


class Track:
    """Follows one media playlist: known playlist, cursor, requests, ready media."""

    def __init__(self, session: Session, name: TrackName, rendition: RenditionInfo) -> None:
        self.s = session
        self.name: TrackName = name
        self.rendition = rendition
        self.use_parts = session.config.low_latency
        self.playlist: MediaPlaylist | None = None
        self.loaded_at = 0.0
        self.index: dict[Position, Chunk] = {}
        self.order: list[Chunk] = []
        """The playlist's chunks from the cursor's segment on (all of them before the start)."""
        self.last: Position | None = None
        """Position of the playlist's last chunk."""
        self._derived_of: MediaPlaylist | None = None
        self._maps: dict[int, str | None] = {}
        self._pdts: dict[int, Fraction] = {}
        self._starts: dict[int, Fraction] = {}
        self._chunk_memo: ChunkMemo = {}
        """Part chunks of earlier reloads, for :func:`~player.timeline.chunks`."""
        self.playlist_req: int | None = None
        self.playlist_sent_at = 0.0
        self.playlist_wait = 0.0
        self.need_full = True
        self.changed = True
        self.first_directive: tuple[int, int | None] | None = None
        self.cursor: Position | None = None
        self.stop_at: Position | None = None
        self.active = True
        self.switch_from: Track | None = None
        self.inflight: dict[str, int] = {}
        self.segment_inflight: set[str] = set()
        """URIs of whole segments in flight (bounded by ``max_segment_inflight``)."""
        self.last_timeout: dict[str, float] = {}
        """Timeout of the last failed attempt at a whole segment (the next one doubles it)."""
        self.parts_from: int | None = None
        """The MSN from which the server's latest playlist lists parts. The parts of the
        segments before it are only remembered (:func:`~player.timeline.merge_update`
        keeps them: their files outlive their tags for a while, not for ever)."""
        self.whole: set[int] = set()
        """Listed segments fetched whole although their parts are known: the server
        lists them without parts and a part of theirs failed (its file is likely gone)."""
        self.ready: dict[str, bytes] = {}
        self.not_before: dict[str, float] = {}
        self.attempts: dict[str, int] = {}
        self.skipped: set[str] = set()
        self.inits: dict[str, bytes] = {}
        self.init_sent: str | None = None
        self.seg_start_us: dict[int, int] = {}
        self.failures = 0
        self.ended = False
        self.retired = False

    # -- scheduling --------------------------------------------------------------------------

    def pump(self, now: float) -> None:
        """Deliver what is ready and issue every request that is due."""
        if self.ended or self.retired or self.s.failed:
            return
        pl = self.playlist
        if pl is None:
            self._reload(now)
            return
        if self.cursor is None and not self._start():
            self._reload(now)
            return
        self._deliver(now)
        if self.ended or self.retired:
            return
        self._fetch_media(now)
        self._reload(now)

    def _start(self) -> bool:
        """Choose the first chunk; False when it cannot be chosen yet."""
        pl = self.playlist
        assert pl is not None
        s = self.s
        chunk: Chunk | None
        old = self.switch_from
        if old is not None and old.cursor is not None and old.stop_at is not None:
            # switch at the earliest independent part the old track has not reached,
            # at the latest at the next segment start (set by Session.switch)
            at, stop = old.cursor, old.stop_at
            early = [c for c in self.order if c.independent and not c.gap and at <= c.position]
            if early and early[0].position < stop:
                old.stop_at = stop = early[0].position
            self.cursor = stop
            self.seg_start_us.update(old.seg_start_us)
            self._extend_times()
            logger.info("%s switch point %s", self.rendition.id, stop)
            return True
        if self.name == "audio" and "video" in s.tracks:
            if s.anchor is None:
                return False
            chunk = choose_aligned(pl, s.anchor[0], s.anchor[1], use_parts=self.use_parts)
            if chunk is None:
                logger.warning("audio has no segment %d; starting on its own", s.anchor[0])
                chunk = choose_start(pl, self._hold_back(pl), use_parts=self.use_parts)
        else:
            chunk = choose_start(pl, self._hold_back(pl), use_parts=self.use_parts)
        if chunk is None:
            return False
        self.cursor = chunk.position
        self._derive(pl)
        first_start = s.anchor is None
        if first_start:
            pdt = self._pdts.get(chunk.msn)
            s.use_pdt = pdt is not None and not s.restarted
            s.anchor = (chunk.msn, chunk.offset)
            s.anchor_us = round(pdt * 1000) if pdt is not None and s.use_pdt else s.timeline_end_us
        anchor_msn = s.anchor[0] if s.anchor is not None else chunk.msn
        if anchor_msn in self._starts:
            self.seg_start_us.setdefault(anchor_msn, s.anchor_us)
        else:
            self.seg_start_us.setdefault(chunk.msn, s.anchor_us)
        self._extend_times()
        if first_start and s.config.exact_start:
            target = live_edge(pl, use_parts=self.use_parts) - self._hold_back(pl)
            start_us, _ = self._times(chunk, self._pdts)
            s.emit(PlayFrom(start_us + max(0, round((target - chunk.start) * 1_000_000))))
        logger.info(
            "%s %s starts at %s (edge %s)",
            self.name,
            self.rendition.id,
            chunk.position,
            self.last,
        )
        return True

    def hold_back_of(self, pl: MediaPlaylist) -> Fraction:
        """The hold-back this track starts at on playlist ``pl``."""
        return self._hold_back(pl)

    def _hold_back(self, pl: MediaPlaylist) -> Fraction:
        cfg = self.s.config
        if cfg.hold_back is not None:
            return Fraction(cfg.hold_back)
        sc = pl.server_control
        if self.use_parts and pl.has_parts and sc is not None and sc.part_hold_back is not None:
            return sc.part_hold_back
        if sc is not None and sc.hold_back is not None:
            return sc.hold_back
        return Fraction(3 * pl.target_duration)

    def _chunk_at(self, position: Position) -> Chunk | None:
        chunk = self.index.get(position)
        if chunk is None and position[1] > 0:
            whole = self.index.get((position[0], 0))
            if whole is not None and whole.part is None:
                return whole
        return chunk

    def _derive(self, pl: MediaPlaylist) -> None:
        """Compute what :meth:`_deliver` and friends look up in ``pl``, once per playlist."""
        if self._derived_of is not pl:
            self._maps = map_uris(pl)
            self._starts, self._pdts = segment_times(pl)
            self._derived_of = pl

    def _deliver(self, now: float) -> None:
        pl = self.playlist
        assert pl is not None and self.cursor is not None
        self._derive(pl)
        maps = self._maps
        pdts = self._pdts
        while True:
            if self.stop_at is not None and self.cursor >= self.stop_at:
                self.s.retire(self, now)
                return
            chunk = self._chunk_at(self.cursor)
            if chunk is None:
                if self.cursor[0] < pl.first_msn:
                    if self._to_oldest(pl):
                        continue
                    logger.warning("%s fell behind the playlist window; restarting", self.name)
                    self.cursor = None
                    self.order = chunks(pl, use_parts=self.use_parts, memo=self._chunk_memo)
                    self.index = {c.position: c for c in self.order}
                    self.pump(now)
                    return
                break
            if chunk.gap or chunk.uri in self.skipped:
                self.cursor = next_position(pl, chunk)
                continue
            map_uri = maps.get(chunk.msn)
            if map_uri is not None and map_uri != self.init_sent:
                data = self.inits.get(map_uri)
                if data is None:
                    self._fetch(now, "init", map_uri, None, None)
                    break
                if not self.active:
                    break
                self.s.emit(InitSection(self.name, self.rendition.id, data))
                self.init_sent = map_uri
            if not self.active or chunk.uri not in self.ready:
                break
            data = self.ready.pop(chunk.uri)
            start_us, pdt_us = self._times(chunk, pdts)
            self.s.emit(
                Deliver(
                    track=self.name,
                    rendition=self.rendition.id,
                    msn=chunk.msn,
                    part=chunk.part,
                    data=data,
                    duration_us=round(chunk.duration * 1_000_000),
                    start_us=start_us,
                    pdt_us=pdt_us,
                    independent=chunk.independent,
                )
            )
            self.cursor = next_position(pl, chunk)
        if pl.endlist and self.last is not None and self.cursor > self.last:
            self.ended = True
            self.s.emit(EndOfStream(self.name))
            self.s.cancel_all(self)

    def _times(self, chunk: Chunk, pdts: dict[int, Fraction]) -> tuple[int, int | None]:
        pdt = pdts.get(chunk.msn)
        on, od = chunk.offset.numerator, chunk.offset.denominator
        pdt_us: int | None = None
        if pdt is not None:
            # round((pdt + offset * 1000) * 1000), in integers
            pn, pd = pdt.numerator, pdt.denominator
            pdt_us = _round_ratio(1000 * (pn * od + 1000 * on * pd), pd * od)
        if self.s.use_pdt and pdt_us is not None:
            return pdt_us, pdt_us
        base = self.seg_start_us.get(chunk.msn, 0)
        return base + _round_ratio(on * 1_000_000, od), pdt_us

    def _extend_times(self) -> None:
        """Carry segment start times (non-PDT timeline) to every listed segment."""
        pl = self.playlist
        if pl is None or not self.seg_start_us:
            return
        self._derive(pl)
        starts = self._starts
        known = [m for m in starts if m in self.seg_start_us]
        if not known:
            return
        ref = known[-1]
        low = (self.cursor[0] if self.cursor else pl.first_msn) - 2
        for msn, start in starts.items():
            # (those below ``low`` would be dropped again at once)
            if msn >= low and msn not in self.seg_start_us:
                self.seg_start_us[msn] = self.seg_start_us[ref] + round(
                    (start - starts[ref]) * 1_000_000
                )
        for msn in [m for m in self.seg_start_us if m < low]:
            del self.seg_start_us[msn]

    def _fetch_media(self, now: float) -> None:
        pl = self.playlist
        assert pl is not None and self.cursor is not None
        cfg = self.s.config
        self._derive(pl)
        maps = self._maps
        map_uri = maps.get(self.cursor[0], next(reversed(maps.values()), None))
        if map_uri is not None and map_uri != self.init_sent:
            self._fetch(now, "init", map_uri, None, None)
        for chunk in self.order[self._cursor_index() :]:
            if self.stop_at is not None and chunk.position >= self.stop_at:
                return
            if len(self.inflight) >= cfg.max_inflight:
                return
            uri = chunk.uri
            if chunk.gap or uri in self.skipped:
                continue
            if chunk.part is not None:
                self._fetch(now, "part", uri, chunk.msn, chunk.part)
                continue
            # whole segments: in playback order, a bounded number at a time; nothing
            # later (segment, part or hint) goes out before this one is on its way
            if uri in self.ready or uri in self.inflight:
                continue
            if (
                len(self.segment_inflight) >= cfg.max_segment_inflight
                or self.not_before.get(uri, 0.0) > now
            ):
                return
            self._fetch(now, "segment", uri, chunk.msn, None, duration=chunk.duration)
        hint = hinted_part_uri(pl) if self.use_parts and cfg.prefetch_hint else None
        if hint is None or pl.endlist or len(self.inflight) >= cfg.max_inflight:
            return
        msn, part = hint_position(pl)
        if (msn, part) < self.cursor or self.stop_at is not None and (msn, part) >= self.stop_at:
            return
        self._fetch(now, "part", hint, msn, part, hint=True)

    def _fetch(
        self,
        now: float,
        kind: RequestKind,
        uri: str,
        msn: int | None,
        part: int | None,
        *,
        hint: bool = False,
        duration: Fraction | None = None,
    ) -> None:
        """Request a media resource unless it is here, on its way, or backing off."""
        if uri in self.ready or uri in self.inflight or uri in self.inits:
            return
        if self.not_before.get(uri, 0.0) > now:
            return
        pl = self.playlist
        assert pl is not None
        held = hint or (kind == "part" and (msn, part) == hint_position(pl))
        if held:
            timeout = self._blocking_timeout()
        elif kind == "segment" and duration is not None:
            timeout = self._segment_timeout(uri, duration)
        else:
            timeout = self.s.config.request_timeout
        path = resolve(self.rendition.uri, uri)
        rid = self.s.send(now, kind, self, uri, path, msn, part, timeout, blocking=held, hint=hint)
        self.inflight[uri] = rid
        if kind == "segment":
            self.segment_inflight.add(uri)

    def _segment_timeout(self, uri: str, duration: Fraction) -> float:
        """Timeout of a whole-segment request: see ``SessionConfig.segment_timeout_factor``."""
        cfg = self.s.config
        k = cfg.segment_timeout_factor
        seconds = float(duration)
        timeout = max(cfg.request_timeout, k * seconds)
        rate = self.s.segment_rate
        if rate is not None and self.rendition.bandwidth > 0:
            expected_bytes = self.rendition.bandwidth * seconds / 8
            timeout = max(timeout, k * expected_bytes / rate)
        previous = self.last_timeout.get(uri)
        if previous is not None:
            timeout = max(timeout, 2 * previous)
        return timeout

    def _blocking_timeout(self) -> float:
        td = self.playlist.target_duration if self.playlist is not None else 6
        return 3 * max(td, 1) + self.s.config.blocking_margin

    def _reload(self, now: float) -> None:
        """Issue the next playlist request when it is due."""
        if self.playlist_req is not None or now < self.playlist_wait:
            return
        pl = self.playlist
        cfg = self.s.config
        msn: int | None = None
        part: int | None = None
        skip: str | None = None
        blocking = False
        if pl is None or self.need_full:
            if pl is None and self.first_directive is not None:
                msn, part = self.first_directive
                blocking = True
        elif pl.endlist:
            return
        else:
            sc = pl.server_control
            ll = self.use_parts and sc is not None and sc.can_block_reload
            if ll and pl.has_parts:
                msn, part = hint_position(pl)
                blocking = True
            elif ll:
                msn, blocking = pl.next_msn, True
            else:
                due = self.playlist_sent_at + (
                    pl.target_duration if self.changed else pl.target_duration / 2
                )
                if now < due:
                    self.playlist_wait = due
                    return
            if self.use_parts and cfg.delta_updates:
                skip = skip_directive(pl, now - self.loaded_at)
        path = with_directives(self.rendition.uri, msn, part, skip)
        timeout = self._blocking_timeout() if blocking else cfg.request_timeout
        self.playlist_req = self.s.send(
            now, "playlist", self, self.rendition.uri, path, msn, part, timeout, blocking=blocking
        )
        self.playlist_sent_at = now
        self.s.count("playlist_requests")
        self.s.count("delta_requests" if skip else "full_requests")
        if blocking:
            self.s.count("blocking_requests")

    # -- answers -----------------------------------------------------------------------------

    def on_playlist(self, body: bytes, now: float) -> None:
        self.playlist_req = None
        try:
            update = parse_media(body.decode("utf-8"))
        except (PlaylistError, UnicodeDecodeError) as exc:
            self.fail_playlist(f"bad playlist: {exc}", now)
            return
        try:
            merged = merge_update(self.playlist, update)
        except PlaylistError as exc:
            logger.info("%s: delta update does not fit (%s); reloading in full", self.name, exc)
            self.s.count("delta_mismatch")
            self.need_full = True
            self.pump(now)
            return
        if any(seg.byterange for seg in merged.segments) or _any_part_byterange(merged):
            self.s.fail(f"{self.rendition.id}: BYTERANGE segments and parts are not supported")
            return
        old = self.playlist
        if old is not None and hint_position(merged) < hint_position(old):
            if merged.next_msn + 3 < old.next_msn:
                logger.warning("%s: media sequence went back; restarting", self.name)
                self.s.restart()
                merged = merge_update(None, update)
                old = None
            else:
                logger.debug("%s: stale playlist ignored", self.name)
                self.playlist_wait = now + self._pause(old)
                self.pump(now)
                return
        self.changed = old is None or hint_position(merged) != hint_position(old)
        if old is not None and not self.changed and not merged.endlist:
            self.playlist_wait = now + self._pause(merged)
        if update.skip is not None:
            self.s.count("delta_merged")
        self.playlist = merged
        self.loaded_at = now
        self.need_full = False
        self.failures = 0
        self.parts_from = _parts_listed_from(update)
        if self.whole:
            self.whole = {m for m in self.whole if merged.first_msn <= m < merged.next_msn}
        self._list_chunks(merged)
        if self.attempts:
            self._whole_after_failures()
        self.last = last_position(merged, use_parts=self.use_parts)
        self._forget_unlisted()
        self._extend_times()
        self.s.note_reports(self, merged)
        self.s.pump(now)  # every track: the others may wait for this one's start

    def _list_chunks(self, pl: MediaPlaylist) -> None:
        """:attr:`order` and :attr:`index` of ``pl``: the chunks from the cursor's segment
        on (chunks behind it are of no more use), segments in :attr:`whole` as one chunk."""
        since = self.cursor[0] if self.cursor is not None else None
        self._derive(pl)
        order = chunks(
            pl,
            use_parts=self.use_parts,
            since=since,
            memo=self._chunk_memo,
            starts=self._starts,
        )
        if self.whole:
            order = self._with_wholes(pl, order)
        self.order = order
        self.index = {(c.msn, c.part or 0): c for c in order}  # (Chunk.position)

    def _with_wholes(self, pl: MediaPlaylist, order: list[Chunk]) -> list[Chunk]:
        """``order`` with the part chunks of every segment in :attr:`whole` replaced by
        the segment's own chunk (which stands for any position in it: see
        :meth:`_chunk_at`)."""
        out: list[Chunk] = []
        whole = self.whole
        for c in order:
            if c.part is None or c.msn not in whole:
                out.append(c)
            elif not out or out[-1].msn != c.msn:
                seg = pl.segments[c.msn - pl.first_msn]
                start = c.start - c.offset
                out.append(Chunk(c.msn, None, seg.uri, seg.duration, True, seg.gap, start, _ZERO))
        return out

    def _cursor_index(self) -> int:
        """Index in :attr:`order` of the chunk at the cursor (or the first after it): a
        whole segment holds every position in it."""
        cursor = self.cursor
        assert cursor is not None
        start = bisect_left(self.order, cursor, key=_position)
        if start and cursor[1]:
            before = self.order[start - 1]
            if before.part is None and before.msn == cursor[0]:
                return start - 1
        return start

    def _parts_dropped(self, msn: int) -> bool:
        """Whether segment ``msn`` is complete, listed, and listed by the server without
        its parts now (only remembered ones are known)."""
        pl = self.playlist
        if pl is None or self.parts_from is None:
            return False
        return pl.first_msn <= msn < min(self.parts_from, pl.next_msn)

    def _whole_after_failures(self) -> None:
        """Fetch whole the segments whose parts failed and that the server lists without
        parts now (the failure came before the playlist showed them gone)."""
        dropped = {
            c.msn
            for c in self.order
            if c.part is not None
            and c.uri in self.attempts
            and c.msn not in self.whole
            and self._parts_dropped(c.msn)
        }
        if dropped:
            logger.info(
                "%s: a part of segment %s failed and the playlist lists no parts of it any "
                "more: fetching it whole",
                self.name,
                ", ".join(map(str, sorted(dropped))),
            )
            self._fetch_whole(dropped)

    def _fetch_whole(self, msns: Iterable[int]) -> None:
        """Fetch segments ``msns`` whole from now on: their remembered parts are
        forgotten and those in flight cancelled."""
        pl = self.playlist
        assert pl is not None
        self.whole.update(msns)
        self._list_chunks(pl)
        wanted = {c.uri for c in self.order}
        parts = [p.uri for m in self.whole for p in pl.segments[m - pl.first_msn].parts]
        self._cancel_media(u for u in parts if u not in wanted)
        self._forget_unlisted()

    def _cancel_media(self, uris: Iterable[str]) -> None:
        for uri in uris:
            rid = self.inflight.pop(uri, None)
            if rid is not None:
                self.s.cancel(rid)
                self.segment_inflight.discard(uri)

    def _to_oldest(self, pl: MediaPlaylist) -> bool:
        """The cursor's segment left the playlist window: go on at the oldest listed
        independent chunk (fetched whole if the server lists it without parts), dropping
        what was on its way for positions behind it. False when there is none."""
        listed = [c for c in self.order if c.independent and not c.gap]
        if not listed:
            return False
        oldest = listed[0]
        logger.warning(
            "%s fell behind the playlist window (at %s); going on at its oldest segment %d",
            self.name,
            self.cursor,
            oldest.msn,
        )
        self.cursor = oldest.position
        if oldest.part is not None and self._parts_dropped(oldest.msn):
            self.whole.add(oldest.msn)
        self._list_chunks(pl)
        wanted = {c.uri for c in self.order}
        self._cancel_media(
            [u for u in self.inflight if u not in wanted and u not in self._maps.values()]
        )
        self._forget_unlisted()
        self._extend_times()
        return True

    def _forget_unlisted(self) -> None:
        """Drop ready media and retry state of URIs the playlist no longer offers ahead."""
        pl = self.playlist
        assert pl is not None
        if self.cursor is None:
            wanted = {c.uri for c in self.order}
        else:
            wanted = {c.uri for c in self.order[self._cursor_index() :]}
        self._derive(pl)
        wanted.update(u for u in self._maps.values() if u is not None)
        hint = hinted_part_uri(pl)
        if hint is not None:
            wanted.add(hint)
        for table in (self.ready, self.not_before, self.attempts, self.last_timeout):
            for uri in [u for u in table if u not in wanted]:
                del table[uri]

    def _pause(self, pl: MediaPlaylist) -> float:
        """A short wait before asking again for a playlist that did not move."""
        if self.use_parts and pl.part_target is not None:
            return float(pl.part_target) / 2
        return pl.target_duration / 2

    def reset(self) -> None:
        """Forget everything about the stream (after a publisher restart)."""
        self.s.cancel_all(self)
        self.ready.clear()
        self.not_before.clear()
        self.attempts.clear()
        self.last_timeout.clear()
        self.skipped.clear()
        self.seg_start_us.clear()
        self.whole.clear()
        self.parts_from = None
        self.playlist = None
        self.order = []
        self.index = {}
        self._chunk_memo.clear()
        self.last = None
        self.cursor = None
        self.stop_at = None
        self.init_sent = None
        self.need_full = True

    def on_media(self, req: Request, body: bytes, now: float) -> None:
        self.inflight.pop(req.uri, None)
        self.segment_inflight.discard(req.uri)
        self.attempts.pop(req.uri, None)
        self.last_timeout.pop(req.uri, None)
        if req.kind == "init":
            self.inits[req.uri] = body
        else:
            self.ready[req.uri] = body
        self.pump(now)

    def fail_playlist(self, reason: str, now: float) -> None:
        self.playlist_req = None
        self.failures += 1
        self.need_full = True
        wait = backoff(self.failures, self.s.config.retry_base, self.s.config.retry_cap)
        self.playlist_wait = now + wait
        logger.info("%s playlist failed (%s); retry in %.2f s", self.name, reason, wait)
        if self.failures >= self.s.config.max_failures:
            self.s.fail(f"{self.rendition.id}: {reason} ({self.failures} failures in a row)")
            return
        self.pump(now)

    def fail_media(self, req: Request, reason: str, now: float) -> None:
        """A media request failed: back off on that URI, reload the playlist in full.

        Only playlist failures count towards giving up (a dropped connection
        fails every request at once); a part or segment that keeps failing is
        skipped after ``max_media_retries`` attempts.
        """
        self.inflight.pop(req.uri, None)
        if (
            req.kind == "part"
            and req.msn is not None
            and req.msn not in self.whole
            and self._parts_dropped(req.msn)
        ):
            # the server lists that segment without parts now: their files are going or
            # gone (a retry would find a 404), the segment itself is there
            logger.info(
                "%s: %s failed (%s); segment %d lists no parts any more: fetching it whole",
                self.name,
                req.uri,
                reason,
                req.msn,
            )
            self._fetch_whole((req.msn,))
            self.pump(now)
            return
        if req.kind == "segment":
            # the next attempt waits longer (a fast failure loses nothing by that)
            self.segment_inflight.discard(req.uri)
            self.last_timeout[req.uri] = max(self.last_timeout.get(req.uri, 0.0), req.timeout)
        cfg = self.s.config
        tries = self.attempts.get(req.uri, 0) + 1
        self.attempts[req.uri] = tries
        self.not_before[req.uri] = now + backoff(tries, cfg.retry_base, cfg.retry_cap)
        if req.hint and reason == "404":
            logger.debug("%s: hinted part %s withdrawn", self.name, req.uri)
        else:
            self.need_full = True
            logger.info("%s: %s failed (%s), attempt %d", self.name, req.uri, reason, tries)
        if req.kind == "init" and tries >= cfg.max_failures:
            self.s.fail(f"{self.rendition.id}: init {reason} ({tries} failures)")
            return
        if req.kind != "init" and tries >= cfg.max_media_retries and not req.hint:
            logger.warning("%s: giving up on %s after %d attempts", self.name, req.uri, tries)
            self.skipped.add(req.uri)
            self.s.count("skipped")
        self.pump(now)

    def timers(self) -> list[float]:
        out = list(self.not_before.values())
        if self.playlist_req is None:
            out.append(self.playlist_wait)
        return out
