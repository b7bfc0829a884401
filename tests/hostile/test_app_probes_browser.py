"""Issue 13: hostile probes through the real app — traversal in URLs (raw HTTP, so no client
normalises the dots away) and in the workspace parameter (in headless Chromium). Each ends in
a refusal or a fresh private workspace; no file outside the app's folders is served or
created, and no page shows a traceback."""

from __future__ import annotations

import http.client
import os
from pathlib import Path

import pytest

from tests.app._appharness import CHROMIUM, CHROMIUM_ARGS, ROOT, AppServer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} not installed"),
]
SECRET = "citytwin-probe-secret-7f3a"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("probe")
    (tmp / "secret.txt").write_text(SECRET, encoding="utf-8")   # outside --data / --results
    data = tmp / "data"
    data.mkdir()
    (data / "helsinki.gpkg").write_bytes((ROOT / "geodata" / "helsinki.gpkg").read_bytes())
    srv = AppServer(results=tmp / "results", data=data, log=tmp / "server.log")
    yield srv, tmp
    srv.stop()


TRAVERSALS = [
    "/static/../../../../../etc/passwd",
    "/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/_solara/static/..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/_solara/cdn/..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/_solara/cdn/%2e%2e/%2e%2e/%2e%2e/secret.txt",
    "/static/public/..%2f..%2f..%2fsecret.txt",
    "/_solara/static/public/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fsecret.txt",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_traversal_in_the_url_serves_nothing_outside(app, path: str) -> None:
    srv, tmp = app
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=20)  # answers, no hang
    conn.putrequest("GET", path, skip_accept_encoding=True)  # the path exactly as written
    conn.endheaders()
    resp = conn.getresponse()
    body = resp.read().decode("utf-8", "replace")
    conn.close()
    assert "root:x:0:0" not in body and SECRET not in body, (path, resp.status)
    assert "Traceback" not in body


def test_workspace_traversal_in_the_page_address(app) -> None:
    srv, tmp = app
    sync_api = pytest.importorskip("playwright.sync_api")
    results = (tmp / "results").resolve()
    before = {p for p in tmp.rglob("*")}
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            for ws in ("../../evil", "..%2F..%2Fevil", "/tmp/evil-abs", "a/../../b", "x" * 5000):
                page = b.new_page()
                page.goto(f"{srv.url}?workspace={ws}", wait_until="domcontentloaded")
                page.wait_for_selector(".v-application", timeout=60_000)
                page.wait_for_timeout(1500)
                text = page.inner_text("body")
                assert "Traceback" not in text, (ws, text[:500])
                if ws.startswith("x") or "/" in ws or ".." in ws:   # refused, said, replaced
                    page.wait_for_selector(".citytwin-workspace-refused", timeout=30_000)
                    assert "is not allowed" in page.inner_text(".citytwin-workspace-refused")
                    page.wait_for_function("!location.search.includes('evil')", timeout=30_000)
                page.close()
        finally:
            b.close()
    created = {p for p in tmp.rglob("*")} - before
    outside = [p for p in created if not str(p.resolve()).startswith(str(results))
               and p.name != "server.log"]
    assert outside == []
    assert not Path("/tmp/evil-abs").exists() and not (tmp.parent / "evil").exists()
    log = (tmp / "server.log").read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]
