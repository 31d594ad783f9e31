"""Framework-neutral HTTP request and response, shared by every origin adapter.

The hypercorn (HTTP/1.1, HTTP/2) and aioquic (HTTP/3) adapters translate their
own events to :class:`Request` and write :class:`Response` back; everything
in between is the origin's and knows nothing of the wire.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["Request", "Response"]


@dataclass(frozen=True, slots=True)
class Request:
    """An HTTP request as the origin sees it."""

    method: str
    """Upper-case method, e.g. ``GET``."""
    path: str
    """Decoded path, starting with ``/``, without the query."""
    query: str = ""
    """Raw query string without ``?`` (may be empty)."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Header fields with lower-case names (repeated fields joined with ``, ``)."""
    http_version: str = "1.1"
    """``1.1``, ``2`` or ``3``: for logs and metrics."""


@dataclass(frozen=True, slots=True)
class Response:
    """An HTTP response: status, header fields and the whole body."""

    status: int
    """HTTP status code."""
    headers: tuple[tuple[str, str], ...] = ()
    """Header fields with lower-case names, in order."""
    body: bytes = b""
    """The body (empty for HEAD; the adapter sets content-length)."""
