"""Fixtures for the browser tests: Chromium, a certificate, generated HLS media, an origin."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from llhls.lab.browser import Chromium, chromium_path
from llhls.origin.http import TCPServer, start_tcp
from llhls.origin.tls import TLSFiles, ensure_self_signed, spki_sha256_base64
from llhls.origin.web import WebSite
from tests.browser.media import make_vod, memory_handler


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here drives Chromium: mark it, and skip it when there is no Chromium."""
    missing = chromium_path() is None
    for item in items:
        if "tests/browser/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.browser)
            if missing:
                item.add_marker(pytest.mark.skip(reason="Chromium is not installed"))


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    """A self-signed certificate for localhost/127.0.0.1/::1 (not the user's cache)."""
    return ensure_self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def spki(tls_files: TLSFiles) -> str:
    """The certificate's SPKI hash, for Chromium."""
    return spki_sha256_base64(tls_files.certfile)


@pytest.fixture(scope="session")
def website() -> WebSite:
    """The demo page from web/."""
    return WebSite.load()


@pytest_asyncio.fixture
async def chromium(spki: str) -> AsyncIterator[Chromium]:
    """A fresh headless Chromium that trusts the test certificate."""
    async with Chromium(spki=[spki]) as browser:
        yield browser


@pytest.fixture(scope="session")
def vod_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The generated VOD stream as ``{"/vod/<name>": bytes}``."""
    directory = tmp_path_factory.mktemp("vod")
    make_vod(directory)
    return {f"/vod/{path.name}": path.read_bytes() for path in sorted(directory.iterdir())}


@pytest_asyncio.fixture
async def vod_origin(
    website: WebSite, vod_files: dict[str, bytes], tls_files: TLSFiles
) -> AsyncIterator[TCPServer]:
    """HTTPS (h2 + http/1.1) origin serving the demo page and the VOD stream."""
    server = await start_tcp(memory_handler(website, vod_files), "127.0.0.1", 0, tls_files)
    yield server
    await server.close()


@pytest_asyncio.fixture
async def plain_vod_origin(
    website: WebSite, vod_files: dict[str, bytes]
) -> AsyncIterator[TCPServer]:
    """Plain-HTTP origin serving the demo page and the VOD stream."""
    server = await start_tcp(memory_handler(website, vod_files), "127.0.0.1", 0, None)
    yield server
    await server.close()
