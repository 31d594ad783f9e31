"""Headless Debian Chromium, driven by Playwright, pointed at the demo page.

Used by the browser tests and, later, by the latency lab. Chromium is the
system one (``/usr/bin/chromium`` or ``chromium`` on PATH), launched through
``executable_path`` with the flags from the field notes. Certificates are
accepted by SPKI hash (``--ignore-certificate-errors-spki-list``) so the same
set-up works for HTTP/3, where ``--ignore-certificate-errors`` is ignored.

The page publishes its numbers as ``window.llhlsStats`` (web/app.js).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from playwright.async_api import BrowserContext, ConsoleMessage, Page, async_playwright

__all__ = [
    "CHROMIUM_FLAGS",
    "Chromium",
    "chromium_path",
    "read_stats",
    "wait_playing",
    "wait_for_stats",
]

CHROMIUM_FLAGS: tuple[str, ...] = (
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--autoplay-policy=no-user-gesture-required",
)
"""Flags for every launch (headless is added by Playwright)."""


def chromium_path() -> str | None:
    """The system Chromium executable, or None when there is none."""
    found = shutil.which("chromium")
    if found:
        return found
    for candidate in ("/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if Path(candidate).is_file():
            return candidate
    return None


class Chromium:
    """One headless Chromium with a fresh profile; use as ``async with``.

    ``spki`` (base64 SHA-256 of a certificate's SubjectPublicKeyInfo, see
    :func:`llhls.origin.tls.spki_sha256_base64`) makes Chromium accept that
    certificate over TCP and QUIC. ``quic_origins`` (``host:port``) forces
    HTTP/3 to those origins.
    """

    def __init__(
        self,
        *,
        spki: Sequence[str] = (),
        quic_origins: Sequence[str] = (),
        extra_args: Sequence[str] = (),
        executable: str | None = None,
    ) -> None:
        path = executable or chromium_path()
        if path is None:
            raise RuntimeError("Chromium is not installed (apt-get install chromium)")
        self.executable = path
        args = list(CHROMIUM_FLAGS)
        if spki:
            args.append("--ignore-certificate-errors-spki-list=" + ",".join(spki))
        if quic_origins:
            args.append("--enable-quic")
            args.append("--origin-to-force-quic-on=" + ",".join(quic_origins))
        args.extend(extra_args)
        self.args = args
        self.console: list[str] = []
        """Console messages of type error/warning and uncaught page errors, in order."""
        self._profile: tempfile.TemporaryDirectory[str] | None = None
        self._playwright: Any = None
        self._context: BrowserContext | None = None

    async def __aenter__(self) -> Chromium:
        self._profile = tempfile.TemporaryDirectory(prefix="llhls-chromium-")
        self._playwright = await async_playwright().start()
        try:
            self._context = await self._playwright.chromium.launch_persistent_context(
                self._profile.name,
                executable_path=self.executable,
                headless=True,
                args=self.args,
                viewport={"width": 1280, "height": 900},
            )
        except BaseException:
            await self._playwright.stop()
            self._profile.cleanup()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._context is not None:
                await self._context.close()
        finally:
            if self._playwright is not None:
                await self._playwright.stop()
            if self._profile is not None:
                self._profile.cleanup()

    @property
    def context(self) -> BrowserContext:
        """The browser context (one profile)."""
        if self._context is None:
            raise RuntimeError("Chromium is not running: use `async with Chromium()`")
        return self._context

    async def new_page(self) -> Page:
        """A new tab whose console errors and page errors land in :attr:`console`."""
        page = await self.context.new_page()

        def on_console(message: ConsoleMessage) -> None:
            if message.type in ("error", "warning"):
                self.console.append(f"{message.type}: {message.text}")

        def on_page_error(error: Exception) -> None:
            self.console.append(f"pageerror: {error}")

        page.on("console", on_console)
        page.on("pageerror", on_page_error)
        return page

    async def open_demo(self, url: str, *, timeout: float = 15.0) -> Page:
        """Open the demo page at ``url`` (``https://host:port/?src=...``) in a new tab.

        Returns once ``window.llhlsStats`` exists (the page's script ran).
        """
        page = await self.new_page()
        await page.goto(url, timeout=timeout * 1000, wait_until="load")
        await page.wait_for_function(
            "() => window.llhlsStats !== undefined", timeout=timeout * 1000
        )
        return page


async def read_stats(page: Page) -> dict[str, Any]:
    """A copy of ``window.llhlsStats`` (plain JSON values)."""
    stats: dict[str, Any] = await page.evaluate(
        "() => JSON.parse(JSON.stringify(window.llhlsStats))"
    )
    return stats


async def wait_for_stats(
    page: Page, predicate: str, *, timeout: float = 20.0, poll: float = 0.2
) -> dict[str, Any]:
    """Poll until the JS expression ``predicate`` (over ``s = window.llhlsStats``) holds.

    Raises :class:`TimeoutError` with the last stats when it does not.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    check = f"(s) => Boolean({predicate})"
    while True:
        holds = await page.evaluate(f"() => ({check})(window.llhlsStats)")
        if holds:
            return await read_stats(page)
        if loop.time() >= deadline:
            stats = await read_stats(page)
            stats.pop("samples", None)
            raise TimeoutError(f"{predicate!r} not true after {timeout} s; stats: {stats}")
        await asyncio.sleep(poll)


async def wait_playing(
    page: Page, timeout: float = 20.0, *, advance: float = 1.0
) -> dict[str, Any]:
    """Wait until the page plays and its currentTime has advanced by ``advance`` seconds.

    Returns the stats at that moment; raises :class:`TimeoutError` after ``timeout``
    seconds in all.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    first = await wait_for_stats(page, "s.playing", timeout=timeout)
    start = float(first["currentTime"])
    return await wait_for_stats(
        page,
        f"s.playing && s.currentTime >= {start + advance}",
        timeout=max(deadline - loop.time(), 0.5),
    )
