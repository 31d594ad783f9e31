"""The demo page's static handler (in memory, no network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from llhls.origin.messages import Request, Response
from llhls.origin.web import WEB_DIR_ENV, WebSite, default_web_dir


def get(site: WebSite, path: str, method: str = "GET", **headers: str) -> Response | None:
    return site.handle(Request(method, path, headers=headers))


@pytest.fixture
def web_dir(tmp_path: Path) -> Path:
    root = tmp_path / "web"
    (root / "node_modules" / "hls.js" / "dist").mkdir(parents=True)
    (root / "node_modules" / "hls.js" / "dist" / "hls.min.js").write_text("var Hls;")
    (root / "node_modules" / "secret.js").write_text("no")
    (root / "index.html").write_text("<!doctype html><title>x</title>")
    (root / "app.js").write_text("console.log(1)")
    (root / "style.css").write_text("body{}")
    (root / "package.json").write_text("{}")
    (root / ".hidden").write_text("no")
    (root / "img").mkdir()
    (root / "img" / "logo.svg").write_text("<svg/>")
    (tmp_path / "outside.txt").write_text("secret")
    (root / "link.txt").symlink_to(tmp_path / "outside.txt")
    return root


def test_routes(web_dir: Path) -> None:
    site = WebSite.load(web_dir)
    index = get(site, "/")
    assert index is not None and index.status == 200
    assert index.body == b"<!doctype html><title>x</title>"
    assert dict(index.headers)["content-type"] == "text/html; charset=utf-8"
    app = get(site, "/web/app.js")
    assert app is not None and app.body == b"console.log(1)"
    assert dict(app.headers)["content-type"] == "text/javascript; charset=utf-8"
    css = get(site, "/web/style.css")
    assert css is not None and dict(css.headers)["content-type"] == "text/css; charset=utf-8"
    svg = get(site, "/web/img/logo.svg")
    assert svg is not None and svg.status == 200
    hls = get(site, "/hls.js")
    assert hls is not None and hls.body == b"var Hls;"
    assert site.has_hls_js


@pytest.mark.parametrize(
    "path",
    [
        "/web/../outside.txt",
        "/web/node_modules/secret.js",
        "/web/node_modules/hls.js/dist/hls.min.js",
        "/web/node_modules/",
        "/web/package.json",
        "/web/.hidden",
        "/web/link.txt",
        "/web/",
        "/web/missing.js",
        "/hls.min.js.map",
    ],
)
def test_not_served(web_dir: Path, path: str) -> None:
    response = get(WebSite.load(web_dir), path)
    assert response is not None
    assert response.status == 404
    assert b"secret" not in response.body


def test_not_mine(web_dir: Path) -> None:
    site = WebSite.load(web_dir)
    for path in ("/live/index.m3u8", "/webx", "/index.html", "/hls.jsx"):
        assert get(site, path) is None


def test_head_and_methods(web_dir: Path) -> None:
    site = WebSite.load(web_dir)
    head = get(site, "/web/app.js", "HEAD")
    assert head is not None and head.status == 200
    post = get(site, "/web/app.js", "POST")
    assert post is not None and post.status == 405
    assert dict(post.headers)["allow"] == "GET, HEAD"


def test_etag_revalidation(web_dir: Path) -> None:
    site = WebSite.load(web_dir)
    first = get(site, "/web/app.js")
    assert first is not None
    etag = dict(first.headers)["etag"]
    again = get(site, "/web/app.js", **{"if-none-match": f'"other", {etag}'})
    assert again is not None and again.status == 304 and again.body == b""
    changed = get(site, "/web/app.js", **{"if-none-match": '"other"'})
    assert changed is not None and changed.status == 200


def test_files_are_read_once(web_dir: Path) -> None:
    site = WebSite.load(web_dir)
    (web_dir / "app.js").write_text("changed")
    (web_dir / "new.js").write_text("new")
    served = get(site, "/web/app.js")
    assert served is not None and served.body == b"console.log(1)"
    late = get(site, "/web/new.js")
    assert late is not None and late.status == 404


def test_missing_hls_js_hints_make_web(web_dir: Path) -> None:
    (web_dir / "node_modules" / "hls.js" / "dist" / "hls.min.js").unlink()
    site = WebSite.load(web_dir)
    assert not site.has_hls_js
    response = get(site, "/hls.js")
    assert response is not None and response.status == 404
    assert b"make web" in response.body


def test_missing_web_dir(tmp_path: Path) -> None:
    site = WebSite.load(tmp_path / "nowhere")
    response = get(site, "/")
    assert response is not None and response.status == 404


def test_web_dir_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WEB_DIR_ENV, str(tmp_path))
    assert default_web_dir() == tmp_path
    monkeypatch.delenv(WEB_DIR_ENV)
    assert default_web_dir() == Path(__file__).resolve().parents[2] / "web"


def test_the_real_page_is_complete() -> None:
    site = WebSite.load()
    for path in ("/", "/web/app.js", "/web/barcode.js", "/web/style.css"):
        response = get(site, path)
        assert response is not None and response.status == 200, path
    assert not any("node_modules" in path for path in site.paths)
