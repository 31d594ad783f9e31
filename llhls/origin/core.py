"""The origin's decisions, as a pure function of request, store and time.

:func:`decide` answers one HTTP request for the URL scheme of ``contracts-dev.md``::

    /{name}/index.m3u8                  multivariant playlist
    /{name}/{rid}/media.m3u8            media playlist (_HLS_msn, _HLS_part, _HLS_skip)
    /{name}/{rid}/init.mp4              CMAF header
    /{name}/{rid}/seg{msn}.m4s          segment
    /{name}/{rid}/part{msn}.{idx}.m4s   part

It returns :class:`Ready` (a response), :class:`Wait` (ask again when the store
changes, or at ``deadline``) or :class:`Unclaimed` (not a path of a known stream: the
adapter may try another handler, else :func:`not_found`). It never reads the clock
and never raises: an unexpected condition is a 503, never a 500.

Choices (see ``llhls-server-rules.md``):

* ``content-type``: playlists ``application/vnd.apple.mpegurl``; ``init.mp4``
  ``video/mp4`` (``audio/mp4`` for audio renditions); ``.m4s`` segments and parts
  ``video/iso.segment`` -- the IANA type of ISO BMFF segments, the one Apple's HLS
  authoring specification lists for ``.m4s``. hls.js ignores media content types and
  Safari accepts it.
* ``cache-control`` per the low-latency server profile: blocking playlist 200 -> 6 TD,
  blocking playlist 404 -> 4 TD, other playlist 200 -> TD/2 (whole seconds, rounded
  down), playlist errors -> 1 TD, media 200/206 -> 6 TD, media errors -> 1 TD.
* A blocked request (``_HLS_msn``, a hinted part) waits at most 3 TD from when it
  was first seen, then gets 503.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal
from urllib.parse import parse_qsl

from llhls.origin.messages import Request, Response
from llhls.origin.store import PartStatus, SkipMode, Store, StreamInfo
from llhls.playlist.rules import advance_part_limit, blocking_timeout, max_block_msn

__all__ = [
    "OriginConfig",
    "Ready",
    "Wait",
    "Unclaimed",
    "Decision",
    "Directives",
    "decide",
    "parse_directives",
    "cache_max_age",
    "accepts_gzip",
    "parse_range",
    "not_found",
    "error_response",
    "PLAYLIST_TYPE",
    "SEGMENT_TYPE",
]

logger = logging.getLogger(__name__)

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
"""Content type of every playlist."""
SEGMENT_TYPE = "video/iso.segment"
"""Content type of ``.m4s`` segments and parts."""

_ALLOWED = "GET, HEAD, OPTIONS"
_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
_NUM = r"(0|[1-9][0-9]{0,17})"
_MULTIVARIANT = re.compile(rf"/({_NAME})/index\.m3u8")
_MEDIA = re.compile(rf"/({_NAME})/({_NAME})/media\.m3u8")
_INIT = re.compile(rf"/({_NAME})/({_NAME})/init\.mp4")
_SEGMENT = re.compile(rf"/({_NAME})/({_NAME})/seg{_NUM}\.m4s")
_PART = re.compile(rf"/({_NAME})/({_NAME})/part{_NUM}\.{_NUM}\.m4s")
_DIGITS = re.compile(r"[0-9]{1,18}")
_PLAIN_QUERY = re.compile(r"[A-Za-z0-9_.=&-]*")
"""A query with nothing to unquote (no ``%``, ``+`` or ``;``): split as it stands."""


def _query_pairs(query: str) -> list[tuple[str, str]]:
    """``parse_qsl(query, keep_blank_values=True)``; a plain query is split directly."""
    if _PLAIN_QUERY.fullmatch(query) is None:
        return parse_qsl(query, keep_blank_values=True)
    pairs: list[tuple[str, str]] = []
    for item in query.split("&"):
        if item:
            name, _, value = item.partition("=")
            pairs.append((name, value))
    return pairs


_REASONS = {
    200: "OK",
    204: "No Content",
    206: "Partial Content",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    416: "Range Not Satisfiable",
    503: "Service Unavailable",
}


@dataclass(frozen=True, slots=True)
class OriginConfig:
    """Settings of the origin core."""

    gzip: bool = True
    """gzip-encode playlists for clients that accept it."""
    unknown_max_age: int = 1
    """``max-age`` of answers without a stream to take a target duration from
    (unknown paths, 405)."""

    def __post_init__(self) -> None:
        if self.unknown_max_age < 0:
            raise ValueError(f"unknown_max_age must be >= 0, got {self.unknown_max_age}")


@dataclass(frozen=True, slots=True)
class Ready:
    """Answer now with ``response``."""

    response: Response
    """The response to send."""


@dataclass(frozen=True, slots=True)
class Wait:
    """Not yet: decide again when the store changes, or at ``deadline`` at the latest."""

    deadline: float
    """Monotonic time at which the request gets its final answer (a 503 if still
    unsatisfied)."""


@dataclass(frozen=True, slots=True)
class Unclaimed:
    """Not an HLS path of a known stream: another handler may serve it."""


Decision = Ready | Wait | Unclaimed
"""What :func:`decide` returns."""


@dataclass(frozen=True, slots=True)
class Directives:
    """Delivery directives of a playlist request (§6.2.5)."""

    msn: int | None = None
    """``_HLS_msn``."""
    part: int | None = None
    """``_HLS_part``."""
    skip: SkipMode = ""
    """``_HLS_skip``: ``YES``, ``v2`` or ``""``."""


def parse_directives(query: str) -> Directives | str:
    """The ``_HLS_`` directives of a query string, or an error message.

    Values must be decimal integers (``_HLS_msn``, ``_HLS_part``) or ``YES``/``v2``
    (``_HLS_skip``), each at most once. Other parameters are ignored.
    """
    return _parse_directives(query)


@lru_cache(maxsize=1024)
def _parse_directives(query: str) -> Directives | str:
    """:func:`parse_directives`, remembered: a blocked request is decided again on
    every publish (the answer is immutable: a frozen Directives or a str)."""
    found: dict[str, str] = {}
    for key, value in _query_pairs(query):
        if key in ("_HLS_msn", "_HLS_part", "_HLS_skip"):
            if key in found:
                return f"{key} given twice"
            found[key] = value
    numbers: dict[str, int | None] = {}
    for key in ("_HLS_msn", "_HLS_part"):
        text = found.get(key)
        if text is not None and not _DIGITS.fullmatch(text):
            return f"{key} must be a decimal integer, got {text!r}"
        numbers[key] = None if text is None else int(text)
    skip_text = found.get("_HLS_skip")
    skip: SkipMode = ""
    if skip_text == "YES":
        skip = "YES"
    elif skip_text == "v2":
        skip = "v2"
    elif skip_text is not None:
        return f"_HLS_skip must be YES or v2, got {skip_text!r}"
    return Directives(msn=numbers["_HLS_msn"], part=numbers["_HLS_part"], skip=skip)


def cache_max_age(
    kind: Literal["playlist", "media"], status: int, target: int, blocking: bool
) -> int:
    """``max-age`` seconds of a response, per the low-latency server profile (App. B)."""
    ok = status in (200, 206)
    if kind == "playlist":
        if ok:
            return 6 * target if blocking else target // 2
        if status == 404 and blocking:
            return 4 * target
        return target
    return 6 * target if ok else target


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an ``Accept-Encoding`` value allows gzip (``gzip``, ``x-gzip`` or ``*``
    with a non-zero q-value)."""
    if not accept_encoding:
        return False
    explicit: float | None = None
    wildcard: float | None = None
    for item in accept_encoding.split(","):
        coding, _, params = item.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            pname, _, pvalue = param.strip().partition("=")
            if pname.strip().lower() == "q":
                try:
                    q = float(pvalue)
                except ValueError:
                    q = 0.0
        coding = coding.strip().lower()
        if coding in ("gzip", "x-gzip"):
            explicit = q if explicit is None else max(explicit, q)
        elif coding == "*":
            wildcard = q
    if explicit is not None:
        return explicit > 0
    return wildcard is not None and wildcard > 0


def parse_range(header: str | None, size: int) -> tuple[int, int] | Literal["unsatisfiable"] | None:
    """One ``bytes=`` range of a ``size``-byte body as inclusive (first, last).

    ``None`` means serve the whole body (no header, several ranges, or a syntax
    error, which RFC 9110 says to ignore); ``"unsatisfiable"`` means 416.
    """
    if header is None:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_text, dash, last_text = spec.strip().partition("-")
    first_text, last_text = first_text.strip(), last_text.strip()
    if not dash or (first_text and not first_text.isdigit()):
        return None
    if last_text and not last_text.isdigit():
        return None
    if not first_text:
        if not last_text:
            return None
        length = int(last_text)
        if length == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - length), size - 1
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last_text and last < first:
        return None
    if first >= size:
        return "unsatisfiable"
    return first, min(last, size - 1)


def _cors() -> list[tuple[str, str]]:
    return [
        ("access-control-allow-origin", "*"),
        ("access-control-expose-headers", "Age"),
    ]


def _finish(request: Request, status: int, headers: list[tuple[str, str]], body: bytes) -> Response:
    headers = headers + _cors()
    if request.method == "HEAD":
        headers.append(("content-length", str(len(body))))
        body = b""
    return Response(status=status, headers=tuple(headers), body=body)


def error_response(request: Request, status: int, detail: str, max_age: int | None) -> Response:
    """A short ``text/plain`` error; ``max_age=None`` forbids caching."""
    body = f"{status} {_REASONS.get(status, 'Error')}: {detail}\n".encode()
    cache = "no-store" if max_age is None else f"max-age={max_age}"
    headers = [("content-type", "text/plain; charset=utf-8"), ("cache-control", cache)]
    if status == 405:
        headers.append(("allow", _ALLOWED))
    return _finish(request, status, headers, body)


def not_found(request: Request, config: OriginConfig) -> Response:
    """The 404 for a path nobody serves."""
    return error_response(request, 404, f"no resource at {request.path}", config.unknown_max_age)


def _preflight(request: Request) -> Response:
    headers = [
        ("access-control-allow-methods", _ALLOWED),
        ("access-control-allow-headers", "Range"),
        ("access-control-max-age", "86400"),
    ]
    return _finish(request, 204, headers, b"")


def _playlist_ok(request: Request, body: bytes, gz: bytes | None, max_age: int) -> Response:
    headers = [
        ("content-type", PLAYLIST_TYPE),
        ("cache-control", f"max-age={max_age}"),
        ("vary", "accept-encoding"),
    ]
    if gz is not None:
        headers.append(("content-encoding", "gzip"))
        body = gz
    return _finish(request, 200, headers, body)


def _media_ok(request: Request, content_type: str, data: bytes, target: int) -> Response:
    headers = [("content-type", content_type), ("accept-ranges", "bytes")]
    rng = parse_range(request.headers.get("range"), len(data)) if request.method == "GET" else None
    if rng == "unsatisfiable":
        headers += [
            ("content-range", f"bytes */{len(data)}"),
            ("cache-control", f"max-age={cache_max_age('media', 416, target, False)}"),
        ]
        return _finish(request, 416, headers, b"")
    if rng is not None:
        first, last = rng
        headers += [
            ("content-range", f"bytes {first}-{last}/{len(data)}"),
            ("cache-control", f"max-age={cache_max_age('media', 206, target, False)}"),
        ]
        return _finish(request, 206, headers, data[first : last + 1])
    headers.append(("cache-control", f"max-age={cache_max_age('media', 200, target, False)}"))
    return _finish(request, 200, headers, data)


def _wait_or(
    request: Request, now: float, first_seen: float, target: int, kind: Literal["playlist", "media"]
) -> Decision:
    deadline = first_seen + float(blocking_timeout(target))
    if now >= deadline:
        detail = f"not available after blocking {3 * target} s"
        return Ready(error_response(request, 503, detail, cache_max_age(kind, 503, target, True)))
    return Wait(deadline)


class _Ctx:
    """One request being decided."""

    def __init__(
        self, request: Request, store: Store, now: float, config: OriginConfig, first_seen: float
    ) -> None:
        self.request = request
        self.store = store
        self.now = now
        self.config = config
        self.first_seen = first_seen

    def gzip_ok(self) -> bool:
        return self.config.gzip and accepts_gzip(self.request.headers.get("accept-encoding"))

    def playlist_error(self, status: int, detail: str, target: int, blocking: bool) -> Ready:
        age = cache_max_age("playlist", status, target, blocking)
        return Ready(error_response(self.request, status, detail, age))

    def media_error(self, status: int, detail: str, target: int) -> Ready:
        age = cache_max_age("media", status, target, False)
        return Ready(error_response(self.request, status, detail, age))

    def multivariant(self, info: StreamInfo) -> Decision:
        rendered = self.store.multivariant_playlist(info.name)
        td = info.target_duration
        if rendered is None:
            return self.playlist_error(404, f"no stream {info.name!r}", td, False)
        gz = rendered.gzip if self.gzip_ok() else None
        age = cache_max_age("playlist", 200, td, False)
        return Ready(_playlist_ok(self.request, rendered.text, gz, age))

    def media_playlist(self, info: StreamInfo, rid: str) -> Decision:
        td = info.target_duration
        parsed = parse_directives(self.request.query)
        asks_block = isinstance(parsed, str) or parsed.msn is not None or parsed.part is not None
        pos = self.store.position(info.name, rid)
        if pos is None:
            return self.playlist_error(404, f"no rendition {rid!r}", td, asks_block)
        if info.ended:
            directives = Directives()  # §6.2.5: ignored once the playlist has ENDLIST
        elif isinstance(parsed, str):
            return self.playlist_error(400, parsed, td, True)
        else:
            directives = parsed
        blocking = False
        if directives.part is not None and directives.msn is None:
            return self.playlist_error(400, "_HLS_part without _HLS_msn", td, True)
        if directives.msn is not None and info.can_block_reload:
            refused = self._refuse(info, rid, directives, pos.next_msn - 1)
            if refused is not None:
                return refused
            blocking = True
            if not self.store.reached(info.name, rid, directives.msn, directives.part):
                return _wait_or(self.request, self.now, self.first_seen, td, "playlist")
        if not pos.has_media and not info.ended:
            # Nothing published yet: hold the request rather than serve an empty playlist.
            return _wait_or(self.request, self.now, self.first_seen, td, "playlist")
        rendered = self.store.media_playlist(info.name, rid, directives.skip)
        if rendered is None:
            return self.playlist_error(404, f"no rendition {rid!r}", td, blocking)
        gz = rendered.gzip if self.gzip_ok() else None
        age = cache_max_age("playlist", 200, td, blocking)
        return Ready(_playlist_ok(self.request, rendered.text, gz, age))

    def _refuse(self, info: StreamInfo, rid: str, d: Directives, last_msn: int) -> Ready | None:
        """The immediate 400s of §6.2.5.2, or None."""
        td = info.target_duration
        assert d.msn is not None
        if d.part is not None and info.part_target is None:
            return self.playlist_error(400, "_HLS_part on a playlist without parts", td, True)
        if d.msn > max_block_msn(last_msn):
            detail = f"_HLS_msn={d.msn} is beyond the last segment {last_msn} + 2"
            return self.playlist_error(400, detail, td, True)
        if d.part is not None and info.part_target is not None:
            limit = advance_part_limit(info.part_target)
            ahead = self.store.parts_ahead(info.name, rid, d.msn, d.part)
            if ahead > limit:
                detail = f"_HLS_part={d.part} is {ahead} parts ahead (limit {limit})"
                return self.playlist_error(400, detail, td, True)
        return None

    def init(self, info: StreamInfo, rid: str) -> Decision:
        td = info.target_duration
        data = self.store.init_data(info.name, rid)
        if data is None:
            return self.media_error(404, f"no init segment for {rid!r}", td)
        audio = self._is_audio(info, rid)
        return Ready(_media_ok(self.request, "audio/mp4" if audio else "video/mp4", data, td))

    def _is_audio(self, info: StreamInfo, rid: str) -> bool:
        return rid in info.audio_renditions

    def segment(self, info: StreamInfo, rid: str, msn: int) -> Decision:
        td = info.target_duration
        data = self.store.segment_data(info.name, rid, msn, self.now)
        if data is None:
            return self.media_error(404, f"no segment {msn} of {rid!r}", td)
        return Ready(_media_ok(self.request, SEGMENT_TYPE, data, td))

    def part(self, info: StreamInfo, rid: str, msn: int, index: int) -> Decision:
        td = info.target_duration
        status: PartStatus = self.store.part_status(info.name, rid, msn, index, self.now)
        if status.kind == "ready":
            return Ready(_media_ok(self.request, SEGMENT_TYPE, status.data, td))
        if status.kind == "future" and info.part_target is not None:
            if status.ahead <= advance_part_limit(info.part_target):
                return _wait_or(self.request, self.now, self.first_seen, td, "media")
        return self.media_error(404, f"no part {msn}.{index} of {rid!r}", td)


def _route(ctx: _Ctx) -> Decision:
    path = ctx.request.path
    store = ctx.store
    m = _MULTIVARIANT.fullmatch(path)
    if m is not None:
        info = store.stream_info(m.group(1))
        return Unclaimed() if info is None else ctx.multivariant(info)
    for pattern in (_MEDIA, _INIT, _SEGMENT, _PART):
        m = pattern.fullmatch(path)
        if m is None:
            continue
        info = store.stream_info(m.group(1))
        if info is None:
            return Unclaimed()
        rid = m.group(2)
        if rid not in info.renditions:
            if pattern is _MEDIA:
                asks_block = "_HLS_msn" in ctx.request.query
                td = info.target_duration
                return ctx.playlist_error(404, f"no rendition {rid!r}", td, asks_block)
            return ctx.media_error(404, f"no rendition {rid!r}", info.target_duration)
        if pattern is _MEDIA:
            return ctx.media_playlist(info, rid)
        if pattern is _INIT:
            return ctx.init(info, rid)
        if pattern is _SEGMENT:
            return ctx.segment(info, rid, int(m.group(3)))
        return ctx.part(info, rid, int(m.group(3)), int(m.group(4)))
    return Unclaimed()


def decide(
    request: Request,
    store: Store,
    now: float,
    config: OriginConfig | None = None,
    *,
    first_seen: float | None = None,
) -> Decision:
    """Decide what to answer to ``request`` at monotonic time ``now``.

    ``first_seen`` is when the adapter first received this request (default
    ``now``): a blocked request's deadline is ``first_seen + 3 TD``. Never raises.
    """
    cfg = config if config is not None else OriginConfig()
    try:
        if request.method == "OPTIONS":
            return Ready(_preflight(request))
        if request.method not in ("GET", "HEAD"):
            detail = f"method {request.method} not allowed"
            return Ready(error_response(request, 405, detail, cfg.unknown_max_age))
        start = now if first_seen is None else min(first_seen, now)
        return _route(_Ctx(request, store, now, cfg, start))
    except Exception:  # the last line of defence: never a 500
        logger.exception("origin core failed on %s %s", request.method, request.path)
        return Ready(error_response(request, 503, "internal condition", None))
