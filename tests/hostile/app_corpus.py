"""Hostile probes through the real app (issue 13): uploads, selects and scenario path fields,
driven in headless Chromium as a hostile client could (a file handed to the drop zone with any
name and bytes, a select's value emitted from the page's own Vue component with a value the
server never offered, the scenario editor's JSON with paths pointing anywhere).

Each probe is an :class:`AppProbe`; :func:`app_session` starts ``citytwin app`` on a prepared
set of folders (data, results, a scenarios folder, a secret CSV next to them) and a browser,
and :func:`run_probe` says how a probe ended: ``clear`` (the page shows a message naming what
was refused and what is expected), ``traceback`` (in the page or the server log),
``silent`` (accepted, or a secret shown) or ``lost`` (a file outside the app's folders
created or changed, or a refused upload left something in the data folder). Used by
tests/hostile/test_app_probes_inputs.py and ``benchmarks/bad_input.py --app``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import sqlite3
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.app._appharness import CHROMIUM, CHROMIUM_ARGS, ROOT, AppServer

TINY = ROOT / "tests" / "data" / "tiny.gpkg"
#: Strings that must never reach a page or the server log (the secret CSV's header).
SECRETS = ("password_hash", "root:x:0:0", "citytwin-probe-secret")
#: Limits the probed server runs with, so the limit probes finish quickly.
SERVER_ENV = {"CITYTWIN_APP_CHECK_CPU_S": "8", "CITYTWIN_APP_CHECK_WALL_S": "240",
              "CITYTWIN_APP_MAX_UPLOAD_MB": "1"}


@dataclass
class ProbeEnv:
    """The running app, its folders and one browser page per route (reused by probes)."""

    server: AppServer
    tmp: Path
    browser: Any
    pages: dict[str, Any] = field(default_factory=dict)

    @property
    def data(self) -> Path:
        return self.tmp / "data"

    @property
    def results(self) -> Path:
        return self.tmp / "results"

    def page(self, route: str) -> Any:
        """The open page of ``route`` ("" City, "scenarios"), opened and loaded once."""
        if route not in self.pages:
            ctx = self.browser.new_context(viewport={"width": 1400, "height": 1000})
            page = ctx.new_page()
            page.goto(self.server.url + route)
            ready = ".solara-file-drop" if route == "" else ".citytwin-scenario-select"
            page.wait_for_selector(ready, timeout=120_000)
            if route == "scenarios":
                page.wait_for_selector("text=Loaded shipped scenario", timeout=120_000)
                page.locator(".v-expansion-panel-header", has_text="Expert view").click()
                page.wait_for_selector("textarea", timeout=30_000)
            self.pages[route] = page
        return self.pages[route]

    def drop(self) -> None:
        """Forget a page (after a failed probe: the next probe starts afresh)."""
        for page in self.pages.values():
            with contextlib.suppress(Exception):
                page.context.close()
        self.pages.clear()


@dataclass(frozen=True)
class AppProbe:
    """One hostile action; ``expect``: strings the page's message must all contain (what was
    refused and what is expected)."""

    name: str
    route: str
    act: Callable[[ProbeEnv, Any], None]
    expect: tuple[str | Callable[[ProbeEnv], str], ...]  # a callable: from the folders
    timeout_s: float = 60.0

    def wanted(self, env: ProbeEnv) -> list[str]:
        return [e(env) if callable(e) else e for e in self.expect]


# ---- actions -----------------------------------------------------------------------------

_DROP_JS = """([name, b64]) => {
  const vm = document.querySelector('.solara-file-drop').__vue__;
  const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
  const f = new File([bytes], name);
  vm.native_file_info = [f];
  vm.file_info = [{name: f.name, isFile: true, size: f.size}];
  return 1; }"""


def _upload(name: str, make: Callable[[ProbeEnv], bytes]) -> Callable[[ProbeEnv, Any], None]:
    """Hand a file to the City page's drop zone (as a drop would: the file's name and bytes
    are the client's to choose)."""
    def act(env: ProbeEnv, page: Any) -> None:
        page.evaluate(_DROP_JS, [name, base64.b64encode(make(env)).decode()])
    return act


_EMIT_JS = """([sel, value]) => {
  document.querySelector(sel).__vue__.$emit('input', value); return 1; }"""


def _select(selector: str, value: object) -> Callable[[ProbeEnv, Any], None]:
    """Send ``value`` as the select's choice from the page's own Vue component (what the
    widget would send for an offered item; the server never offered this one)."""
    def act(env: ProbeEnv, page: Any) -> None:
        page.evaluate(_EMIT_JS, [selector, value])
    return act


def _edit_path(key: str, value: Callable[[ProbeEnv], str]) -> Callable[[ProbeEnv, Any], None]:
    """Put ``value`` into the scenario editor's JSON at dotted ``key``, then Validate and Run."""
    def act(env: ProbeEnv, page: Any) -> None:
        area = page.locator("textarea").first
        data = json.loads(area.input_value())
        for sec, name in (("emergency", "incident_log"), ("energy", "weather"),
                          ("traffic", "od_factors")):  # earlier probes' values out
            if isinstance(data.get(sec), dict):
                data[sec].pop(name, None)
        section, leaf = key.split(".")
        data.setdefault(section, {})[leaf] = value(env)
        area.fill(json.dumps(data, indent=2))
        page.wait_for_timeout(800)
        page.get_by_role("button", name="Validate").click()
        page.wait_for_timeout(800)
        page.click(".citytwin-run-button")
    return act


def _same_message(key: str, existing: Callable[[ProbeEnv], str], missing: str
                  ) -> Callable[[ProbeEnv, Any], None]:
    """Validate with an existing outside file, then with a missing one: the two messages
    must be the same once the value is taken out (the second is left on the page)."""
    def act(env: ProbeEnv, page: Any) -> None:
        texts = []
        for value in (existing(env), missing):
            _edit_path(key, lambda _e, v=value: v)(env, page)
            page.wait_for_function("(v) => document.querySelector('.citytwin-message')"
                                   ".innerText.includes(v)", arg=value, timeout=30_000)
            texts.append(page.inner_text(".citytwin-message").replace(value, "<value>"))
        if texts[0] != texts[1]:
            page.evaluate("(t) => { document.body.setAttribute('data-probe', t); return 1; }",
                          "different messages")
            raise AssertionError(f"the refusal differs: {texts[0]!r} vs {texts[1]!r}")
    return act


# ---- files the probes use ----------------------------------------------------------------

def _heavy_view_gpkg(env: ProbeEnv) -> bytes:
    """The tiny city with its ``roads`` layer replaced by a SQL view whose WHERE counts to
    3e9 in a recursive CTE (minutes of CPU per read)."""
    path = env.tmp / "heavy-view.gpkg"
    shutil.copy(TINY, path)
    with contextlib.closing(sqlite3.connect(path)) as con:
        con.execute("PRAGMA legacy_alter_table=ON")
        con.execute("ALTER TABLE roads RENAME TO roads_t")
        for (name,) in con.execute("select name from sqlite_master where type='trigger' "
                                   "and sql like '%roads%'").fetchall():
            con.execute(f'DROP TRIGGER "{name}"')
        con.execute("CREATE VIEW roads AS SELECT r.* FROM roads_t r WHERE (WITH RECURSIVE "
                    "c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000000) "
                    "SELECT count(*) FROM c) > 0")
        con.execute("DELETE FROM gpkg_extensions WHERE table_name = 'roads'")
        con.commit()
    data = path.read_bytes()
    path.unlink()
    return data


def _zip_of_zeros(env: ProbeEnv) -> bytes:
    """A small zip that expands to 200 MB of zeros."""
    path = env.tmp / "bomb.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("roads.geojson", b"\0" * (200 * 2**20))
    data = path.read_bytes()
    path.unlink()
    return data


def _secret(env: ProbeEnv) -> str:
    return str(env.tmp / "secret.csv")


def _other_workspace_log(env: ProbeEnv) -> str:
    return str(env.results / "sessions" / "w-0therw0rksp" / "run-1" / "incidents.parquet")


def _link_in_data(env: ProbeEnv) -> str:
    return str(env.data / "log.csv")


def prepare(tmp: Path) -> None:
    """The folders the probed app runs on: data (Helsinki, a broken listed file, a link out),
    results (another workspace's run), a scenarios folder (listed, hidden and linked-out
    scenarios), and the secret CSV beside them."""
    (tmp / "secret.csv").write_text("username,password_hash\nroot,citytwin-probe-secret\n")
    (tmp / "outside.toml").write_text('name = "outside"\nduration_h = 1\n')
    data = tmp / "data"
    data.mkdir()
    shutil.copy(ROOT / "geodata" / "helsinki.gpkg", data / "helsinki.gpkg")
    (data / "broken.gpkg").write_bytes(b"this is not a geopackage\n")
    (data / "link.gpkg").symlink_to(TINY)  # a city file, but outside the data folder
    (data / "log.csv").symlink_to(tmp / "secret.csv")
    other = tmp / "results" / "sessions" / "w-0therw0rksp" / "run-1"
    other.mkdir(parents=True)
    (other / "incidents.parquet").write_text("time_s,type\n")
    code = tmp / "code"  # the app's working folder: this checkout's package, own scenarios
    (code / "scenarios").mkdir(parents=True)
    (code / "citytwin").symlink_to(ROOT / "citytwin")
    shutil.copy(ROOT / "scenarios" / "baseline.toml", code / "scenarios" / "baseline.toml")
    (code / "scenarios" / "_hidden.toml").write_text('name = "hidden"\nduration_h = 1\n')
    (code / "scenarios" / "linked.toml").symlink_to(tmp / "outside.toml")


_REFUSED = "is not allowed: expected a file inside the app's data folder"


def _path_probes() -> list[AppProbe]:
    out = []
    for key in ("emergency.incident_log", "energy.weather", "traffic.od_factors"):
        values: list[tuple[str, Callable[[ProbeEnv], str]]] = [
            ("/etc/passwd", lambda _e: "/etc/passwd"),
            ("../../ traversal", lambda _e: "../../secret.csv"),
            ("absolute CSV outside the folders", _secret),
            ("another workspace's incidents.parquet", _other_workspace_log),
            ("a link in the data folder pointing out", _link_in_data),
        ]
        for label, value in values:  # the message names the key and the value as given
            out.append(AppProbe(f"path {key}: {label}", "scenarios", _edit_path(key, value),
                                (f"{key} '", lambda e, v=value: f"'{v(e)}' {_REFUSED}")))
        out.append(AppProbe(f"path {key}: same refusal for a missing file", "scenarios",
                            _same_message(key, _secret, "/nonexistent/secret.csv"),
                            (f"{key} '/nonexistent/secret.csv' {_REFUSED}",)))
    return out


APP_PROBES: list[AppProbe] = [
    # uploads (City page drop zone)
    AppProbe("upload: garbage .osm.pbf", "", _upload(
        "garbage.osm.pbf", lambda _e: b"\x00\x01garbage" * 10), (
        "garbage.osm.pbf", "not a readable OpenStreetMap .osm.pbf file")),
    AppProbe("upload: text named .gpkg", "", _upload("notes.gpkg", lambda _e: b"hello\n" * 9), (
        "notes.gpkg", "cannot read as GeoPackage")),
    AppProbe("upload: PNG named .geojson", "", _upload(
        "picture.geojson", lambda _e: b"\x89PNG\r\n\x1a\n" + bytes(range(256))), (
        "picture.geojson", "a single .geojson file holds one layer")),
    AppProbe("upload: zip bomb", "", _upload("bomb.zip", _zip_of_zeros), (
        "bomb.zip", "expected one of .gpkg")),
    AppProbe("upload: zip bomb named .gpkg", "", _upload("bomb.gpkg", _zip_of_zeros), (
        "bomb.gpkg", "cannot read as GeoPackage")),
    AppProbe("upload: beyond the size limit", "", _upload(
        "big.gpkg", lambda _e: b"\0" * (3 * 2**20 // 2)), (
        "big.gpkg", "the limit is 1,048,576 bytes")),
    AppProbe("upload: roads layer a CPU-heavy SQL view", "", _upload(
        "heavy.gpkg", _heavy_view_gpkg), (
        "heavy.gpkg", "exceeded the app's CPU time limit of 8 s"), timeout_s=300.0),
    AppProbe("upload: non-UTF-8 file name", "", _upload(
        "caf\udce9.gpkg", lambda _e: TINY.read_bytes()), (
        "uploaded file name", "is not allowed: expected letters, digits")),
    AppProbe("upload: traversal in the file name", "", _upload(
        "../../evil.gpkg", lambda _e: TINY.read_bytes()), (
        "'../../evil.gpkg' is not allowed", "no path separators")),
    AppProbe("upload: over an existing city file", "", _upload(
        "helsinki.gpkg", lambda _e: TINY.read_bytes()), (
        "'helsinki.gpkg' already exists",)),
    # selects: the City page's city, the Scenarios page's shipped scenario
    AppProbe("city select: a value the server never offered", "", _select(
        ".citytwin-city-select", "nope.gpkg"), ("'nope.gpkg' is not allowed",
                                                "expected one of the city files")),
    AppProbe("city select: a listed-looking link out of the data folder", "", _select(
        ".citytwin-city-select", "link.gpkg"), ("'link.gpkg' is not allowed",
                                                "expected one of the city files")),
    AppProbe("city select: a traversal path", "", _select(
        ".citytwin-city-select", "../secret.csv"), ("'../secret.csv' is not allowed",
                                                    "expected one of the city files")),
    AppProbe("city select: an absolute path", "", _select(
        ".citytwin-city-select", "/etc/passwd"), ("'/etc/passwd' is not allowed",
                                                  "expected one of the city files")),
    AppProbe("city select: not a string", "", _select(
        ".citytwin-city-select", {"path": "/etc/passwd"}), (
        "city file \"{'path': '/etc/passwd'}\" is not allowed", "expected one of the city")),
    AppProbe("city select: a listed file that does not open", "", _select(
        ".citytwin-city-select", "broken.gpkg"), ("broken.gpkg", "cannot read as GeoPackage",
                                                  "keeps the city file")),
    AppProbe("scenario select: a name never listed", "scenarios", _select(
        ".citytwin-scenario-select", "nope"), ("no shipped scenario named 'nope'",
                                                "known: ['baseline', 'linked']")),
    AppProbe("scenario select: a file the folder holds but does not list", "scenarios",
             _select(".citytwin-scenario-select", "_hidden"), (
                 "scenario '_hidden.toml' is not allowed", "expected letters, digits")),
    AppProbe("scenario select: a traversal path", "scenarios", _select(
        ".citytwin-scenario-select", "../../../etc/passwd"), (
        "'../../../etc/passwd.toml' is not allowed", "no path separators")),
    AppProbe("scenario select: a listed link out of the folder", "scenarios", _select(
        ".citytwin-scenario-select", "linked"), (
        "scenario 'linked.toml' is not allowed: it resolves", "expected a file inside that folder")),
    # scenario path fields, edited in the scenario editor
    *_path_probes(),
]


# ---- running -----------------------------------------------------------------------------

def _outside_files(env: ProbeEnv) -> dict[str, float]:
    """Files under the probe folder outside data/ and results/ (with mtimes)."""
    skip = (env.data, env.results, env.tmp / "code", env.server.log_path)
    out = {}
    for p in env.tmp.rglob("*"):
        if any(p == s or s in p.parents for s in skip):
            continue
        with contextlib.suppress(OSError):
            out[str(p)] = p.lstat().st_mtime
    return out


def _data_files(env: ProbeEnv) -> set[str]:
    return {p.name for p in env.data.iterdir()}


def run_probe(env: ProbeEnv, probe: AppProbe) -> tuple[str, str]:
    """Run one probe: (outcome, message shown or what went wrong)."""
    log_at = env.server.log_path.stat().st_size
    before_out, before_data = _outside_files(env), _data_files(env)
    want = probe.wanted(env)
    page = env.page(probe.route)
    try:
        probe.act(env, page)
        page.wait_for_function(
            "(want) => want.every(w => document.body.innerText.includes(w))",
            arg=want, timeout=probe.timeout_s * 1000)
        ok = True
    except Exception as exc:  # noqa: BLE001 - classified below
        ok, failure = False, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    try:
        body = page.inner_text("body")
    except Exception:  # noqa: BLE001
        body = ""
    time.sleep(0.3)
    with open(env.server.log_path, errors="replace") as fh:
        fh.seek(log_at)
        log = fh.read()
    message = next((ln for ln in body.splitlines() if want[0] in ln), "")
    runs = page.locator(".citytwin-run").count() if probe.route == "scenarios" else 0
    if not ok:
        env.drop()
    if "Traceback" in body or "Traceback" in log:
        i = (body + log).find("Traceback")
        return "traceback", (body + log)[i:i + 300]
    if any(s in body or s in log for s in SECRETS):
        return "silent", "a secret of the file outside the folders reached the page or log"
    if _outside_files(env) != before_out:
        return "lost", "a file outside the app's folders was created or changed"
    if _data_files(env) - before_data:
        return "lost", f"left in the data folder: {sorted(_data_files(env) - before_data)}"
    if runs:
        return "silent", f"{runs} run(s) started with the refused scenario"
    if not ok:
        return "silent", f"no message with {want} ({failure}); page: {body[:200]!r}"
    return "clear", message[:300]


@contextlib.contextmanager
def app_session(tmp: Path) -> Iterator[ProbeEnv]:
    """``citytwin app`` on :func:`prepare`'d folders under ``tmp`` and a headless Chromium."""
    from playwright.sync_api import sync_playwright

    prepare(tmp)
    saved = {k: os.environ.get(k) for k in SERVER_ENV}
    os.environ.update(SERVER_ENV)
    try:
        server = AppServer(results=tmp / "results", data=tmp / "data", log=tmp / "server.log",
                           code=tmp / "code")
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=CHROMIUM_ARGS)
            env = ProbeEnv(server=server, tmp=tmp, browser=browser)
            try:
                yield env
            finally:
                env.drop()
                browser.close()
    finally:
        server.stop()


def chromium_available() -> bool:
    return os.path.exists(CHROMIUM)
