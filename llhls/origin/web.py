"""The demo page's static files, read into memory once and served from there.

URL scheme (docs/contracts-dev.md):

* ``/``                -> ``web/index.html``
* ``/web/<file>``      -> files under ``web/`` (not ``node_modules``, no dot files,
                          not the npm manifests)
* ``/hls.js``          -> ``web/node_modules/hls.js/dist/hls.min.js``
* ``/hls.min.js.map``  -> its source map, when installed

``web/`` is found beside the package (``Path(__file__).parents[2] / "web"``)
unless ``LLHLS_WEB_DIR`` names another directory. There is no per-request disk
I/O: a path either is a key of the in-memory table or is not served, so path
traversal has nothing to reach.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from llhls.origin.messages import Request, Response

__all__ = ["WEB_DIR_ENV", "StaticFile", "WebSite", "default_web_dir"]

log = logging.getLogger(__name__)

WEB_DIR_ENV = "LLHLS_WEB_DIR"
"""Environment variable that overrides where ``web/`` is."""
MAX_FILE_BYTES = 16 << 20
"""Larger files under ``web/`` are skipped (the page needs none)."""
HLS_JS = Path("node_modules/hls.js/dist/hls.min.js")
"""hls.js inside ``web/``, as ``npm ci`` installs it."""
HLS_JS_MAP = Path("node_modules/hls.js/dist/hls.min.js.map")
"""Its source map."""

_SKIP_NAMES = frozenset({"node_modules", "package.json", "package-lock.json"})
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".map": "application/json",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}
_HLS_JS_MISSING = (
    b"hls.js is not installed: run `make web` (npm ci in web/) and restart the origin.\n"
)


@dataclass(frozen=True, slots=True)
class StaticFile:
    """One file held in memory."""

    body: bytes
    """The file's bytes."""
    content_type: str
    """The content-type field value."""
    etag: str
    """A strong entity tag (quoted) derived from the bytes."""
    cache_control: str = "no-cache"
    """The cache-control field value."""

    def __post_init__(self) -> None:
        if not (self.etag.startswith('"') and self.etag.endswith('"')):
            raise ValueError(f"etag must be quoted, got {self.etag!r}")


def default_web_dir() -> Path:
    """``$LLHLS_WEB_DIR`` if set, else the ``web/`` directory of the checkout."""
    override = os.environ.get(WEB_DIR_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "web"


class WebSite:
    """The demo page's files by URL path; :meth:`handle` answers the paths it owns."""

    def __init__(self, files: Mapping[str, StaticFile], *, web_dir: Path | None = None) -> None:
        self._files = dict(files)
        self.web_dir = web_dir
        """Where the files were read from (None when built from a mapping)."""

    @classmethod
    def load(cls, web_dir: Path | None = None) -> WebSite:
        """Read the page's files from ``web_dir`` (default :func:`default_web_dir`).

        A missing directory gives a site that answers 404 on its paths (and
        logs a warning); a missing hls.js gives 404 with a hint on ``/hls.js``.
        """
        root = default_web_dir() if web_dir is None else web_dir
        files: dict[str, StaticFile] = {}
        if not root.is_dir():
            log.warning("no demo page: %s is not a directory", root)
            return cls(files, web_dir=root)
        base = root.resolve()
        for path in sorted(_walk(root)):
            relative = path.relative_to(root).as_posix()
            loaded = _read(path, base)
            if loaded is not None:
                files[f"/web/{relative}"] = loaded
        if "/web/index.html" in files:
            files["/"] = files["/web/index.html"]
        for url, relative_path in (("/hls.js", HLS_JS), ("/hls.min.js.map", HLS_JS_MAP)):
            loaded = _read(root / relative_path, base, cache_control="max-age=3600")
            if loaded is not None:
                files[url] = loaded
        if "/hls.js" not in files:
            log.warning("hls.js is not installed in %s: run `make web`", root)
        log.debug("demo page: %d files from %s", len(files), root)
        return cls(files, web_dir=root)

    @property
    def paths(self) -> frozenset[str]:
        """Every URL path served."""
        return frozenset(self._files)

    @property
    def has_hls_js(self) -> bool:
        """Whether ``/hls.js`` is served."""
        return "/hls.js" in self._files

    def owns(self, path: str) -> bool:
        """Whether ``path`` belongs to the page (answered, possibly with 404)."""
        return path in ("/", "/hls.js", "/hls.min.js.map") or path.startswith("/web/")

    def handle(self, request: Request) -> Response | None:
        """The answer for a page path, or None when ``request.path`` is not the page's."""
        path = request.path
        if not self.owns(path):
            return None
        if request.method not in ("GET", "HEAD"):
            return Response(
                405,
                (("allow", "GET, HEAD"), ("content-type", "text/plain; charset=utf-8")),
                b"method not allowed\n",
            )
        found = self._files.get(path)
        if found is None:
            body = _HLS_JS_MISSING if path == "/hls.js" else b"not found\n"
            return Response(
                404,
                (("content-type", "text/plain; charset=utf-8"), ("cache-control", "no-store")),
                body,
            )
        headers = (
            ("content-type", found.content_type),
            ("cache-control", found.cache_control),
            ("etag", found.etag),
        )
        if found.etag in _etags(request.headers.get("if-none-match", "")):
            return Response(304, headers)
        return Response(200, headers, found.body)


def _etags(value: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in value.split(",") if tag.strip()}


def _walk(root: Path) -> list[Path]:
    found: list[Path] = []
    for entry in root.iterdir():
        if entry.name.startswith(".") or entry.name in _SKIP_NAMES:
            continue
        if entry.is_dir():
            found.extend(_walk(entry))
        elif entry.is_file():
            found.append(entry)
    return found


def _read(path: Path, base: Path, *, cache_control: str = "no-cache") -> StaticFile | None:
    """The file as a :class:`StaticFile`, or None if it is missing, too big or outside ``base``."""
    try:
        real = path.resolve(strict=True)
        if not real.is_relative_to(base) or not real.is_file():
            log.warning("not serving %s: it lies outside %s", path, base)
            return None
        if real.stat().st_size > MAX_FILE_BYTES:
            log.warning("not serving %s: larger than %d bytes", path, MAX_FILE_BYTES)
            return None
        body = real.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("not serving %s: %s", path, exc)
        return None
    content_type = _TYPES.get(path.suffix.lower(), "application/octet-stream")
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return StaticFile(body, content_type, etag, cache_control)
