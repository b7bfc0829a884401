"""Hostile but fair inputs (issue 13): scenario files generated in code, one case each.

Each case is ``(name, write)`` where ``write(folder) -> Path`` writes the scenario file (and
anything it refers to) into ``folder``; ``REPAIRED`` names the cases whose documented outcome
is a repair (the run succeeds), every other case must end in one clear error.
:func:`classify` runs a case through the real ``citytwin run`` command in this process and
says which of tried / clear / repaired / traceback / silent / lost it ended in.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny.gpkg"

HEAD = f'name = "hostile"\ncity = "{TINY}"\nduration_h = 1\n'

Case = tuple[str, Callable[[Path], Path]]


def _text(body: str, *, head: str = HEAD, name: str = "s.toml") -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        p = folder / name
        p.write_text(head + body, encoding="utf-8")
        return p
    return write


def _bytes(data: bytes, name: str = "s.toml") -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        p = folder / name
        p.write_bytes(data)
        return p
    return write


def _extends_cycle(folder: Path) -> Path:
    (folder / "a.toml").write_text(HEAD + 'extends = "b.toml"\n', encoding="utf-8")
    (folder / "b.toml").write_text('extends = "a.toml"\n', encoding="utf-8")
    return folder / "a.toml"


def _extends_self(folder: Path) -> Path:
    p = folder / "s.toml"
    p.write_text(HEAD + 'extends = "s.toml"\n', encoding="utf-8")
    return p


def _extends_bad_parent(folder: Path) -> Path:
    (folder / "parent.toml").write_text("seed = [1\n", encoding="utf-8")
    p = folder / "s.toml"
    p.write_text(HEAD + 'extends = "parent.toml"\n', encoding="utf-8")
    return p


def _city_is(content: bytes, suffix: str) -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        city = folder / f"city{suffix}"
        city.write_bytes(content)
        p = folder / "s.toml"
        p.write_text(f'name = "hostile"\ncity = "{city}"\nduration_h = 1\n', encoding="utf-8")
        return p
    return write


def _city_folder(folder: Path) -> Path:
    (folder / "dir.gpkg").mkdir()
    p = folder / "s.toml"
    p.write_text(f'name = "h"\ncity = "{folder / "dir.gpkg"}"\nduration_h = 1\n')
    return p


def _incident_log(content: str, suffix: str = ".csv") -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        log = folder / f"log{suffix}"
        log.write_text(content, encoding="utf-8")
        p = folder / "s.toml"
        p.write_text(HEAD + f'[emergency]\nincident_log = "{log}"\n', encoding="utf-8")
        return p
    return write


SCENARIO_CASES: list[Case] = [
    # syntax and encoding
    ("empty file", _bytes(b"")),
    ("syntax: unclosed array", _text("seed = [1\n")),
    ("syntax: bare word", _text("seed = one\n")),
    ("syntax: duplicate key", _text("seed = 1\nseed = 2\n")),
    ("syntax: unclosed table header", _text("[traffic\n")),
    ("syntax: JSON instead of TOML", _bytes(b'{"name": "x", "city": "a.gpkg"}')),
    ("encoding: UTF-8 BOM", _bytes(b"\xef\xbb\xbf" + HEAD.encode())),
    ("encoding: Latin-1 bytes", _bytes(HEAD.encode() + b'description = "caf\xe9"\n')),
    ("encoding: UTF-16", _bytes(HEAD.encode("utf-16"))),
    ("encoding: NUL bytes", _bytes(HEAD.encode() + b"\x00\x00\n")),
    ("binary: PNG header", _bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))),
    ("binary: gzip", _bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 40)),
    ("huge line", _text("description = '" + "x" * 2_000_000 + "\n")),
    # top-level keys: missing, unknown, wrong types, out of range
    ("missing city", _text("", head='name = "x"\n')),
    ("unknown top-level key", _text("sed = 3\n")),
    ("unknown domain section", _text("[trafic]\nsample = 0.1\n")),
    ("name with slash", _text("", head=f'name = "../evil"\ncity = "{TINY}"\n')),
    ("name empty", _text("", head=f'name = ""\ncity = "{TINY}"\n')),
    ("name is a number", _text("", head=f'name = 3\ncity = "{TINY}"\n')),
    ("seed negative", _text("seed = -1\n")),
    ("seed float", _text("seed = 1.5\n")),
    ("seed string", _text('seed = "one"\n')),
    ("seed beyond int64", _text("seed = 99999999999999999999\n")),
    ("duration zero", _text("", head=f'name = "h"\ncity = "{TINY}"\nduration_h = 0\n')),
    ("duration negative", _text("", head=f'name = "h"\ncity = "{TINY}"\nduration_h = -5\n')),
    ("duration inf", _text("", head=f'name = "h"\ncity = "{TINY}"\nduration_h = inf\n')),
    ("duration nan", _text("", head=f'name = "h"\ncity = "{TINY}"\nduration_h = nan\n')),
    ("duration ten years", _text("", head=f'name = "h"\ncity = "{TINY}"\nduration_h = 87600\n')),
    ("step zero", _text("step_s = 0\n")),
    ("step beyond a day", _text("step_s = 100000\n")),
    ("start not a date", _text('start = "yesterday"\n')),
    ("start impossible date", _text('start = "2024-02-30"\n')),
    ("domain section is a value", _text("traffic = 3\n")),
    ("traffic sample zero", _text("[traffic]\nsample = 0\n")),
    ("traffic sample above one", _text("[traffic]\nsample = 2\n")),
    ("traffic car_share negative", _text("[traffic]\ncar_share = -0.1\n")),
    ("traffic unknown key", _text("[traffic]\nsampel = 0.1\n")),
    ("traffic demand_scale huge", _text("[traffic]\ndemand_scale = 1e9\n")),
    ("traffic demand_scale negative", _text("[traffic]\ndemand_scale = -1\n")),
    ("emergency rate negative", _text("[emergency]\nrate_multiplier = -2\n")),
    ("emergency unknown key", _text("[emergency]\nambulances = 3\n")),
    ("fleet ev_share above one", _text("[fleet]\nev_share = 1.5\n")),
    ("fleet ev_share string", _text('[fleet]\nev_share = "half"\n')),
    ("moved key traffic.ev_share", _text("[traffic]\nev_share = 0.3\n")),
    # interventions
    ("intervention unknown type", _text('[[interventions]]\ntype = "teleport"\n')),
    ("intervention without type", _text("[[interventions]]\nedges = [1]\n")),
    ("interventions not a list", _text('interventions = "close everything"\n')),
    ("close_road both selectors", _text(
        '[traffic]\n[[interventions]]\ntype = "close_road"\nedges = [1]\nstreet = "A"\n')),
    ("close_road no selector", _text('[traffic]\n[[interventions]]\ntype = "close_road"\n')),
    ("close_road negative edge", _text(
        '[traffic]\n[[interventions]]\ntype = "close_road"\nedges = [-3]\n')),
    ("close_road unknown edge", _text(
        '[traffic]\n[[interventions]]\ntype = "close_road"\nedges = [99999999]\n')),
    ("close_road unknown street", _text(
        '[traffic]\n[[interventions]]\ntype = "close_road"\nstreet = "Nowhere Street 404"\n')),
    ("add_station latitude 95", _text(
        '[emergency]\n[[interventions]]\ntype = "add_station"\nkind = "fire"\nname = "X"\n'
        "lon = 24.9\nlat = 95\n")),
    ("add_station unknown kind", _text(
        '[emergency]\n[[interventions]]\ntype = "add_station"\nkind = "spaceport"\n'
        'name = "X"\nlon = 24.9\nlat = 60.1\n')),
    ("add_station far outside city", _text(
        '[emergency]\n[[interventions]]\ntype = "add_station"\nkind = "fire"\nname = "X"\n'
        "lon = 0\nlat = 0\n")),
    # files referred to
    ("extends cycle", _extends_cycle),
    ("extends itself", _extends_self),
    ("extends missing file", _text('extends = "nope.toml"\n')),
    ("extends broken parent", _extends_bad_parent),
    ("extends a number", _text("extends = 3\n")),
    ("city missing file", _text("", head='name = "h"\ncity = "nowhere.gpkg"\n')),
    ("city is a folder", _city_folder),
    ("city is a text file named .gpkg", _city_is(b"not a geopackage\n", ".gpkg")),
    ("city is an empty .gpkg", _city_is(b"", ".gpkg")),
    ("city unknown extension", _city_is(b"x", ".docx")),
    ("city garbage .osm.pbf", _city_is(b"\x00\x01garbage" * 10, ".osm.pbf")),
    ("incident_log missing", _text('[emergency]\nincident_log = "nope.csv"\n')),
    ("incident_log wrong columns", _incident_log("a,b\n1,2\n")),
    ("incident_log empty", _incident_log("")),
    ("incident_log parquet that is text", _incident_log("hello", ".parquet")),
]

#: Cases whose documented outcome is a repair: the run succeeds (docs/ or this module).
REPAIRED = {"encoding: UTF-8 BOM": "a leading UTF-8 byte-order mark is dropped"}


def snapshot(folder: Path) -> dict[str, str]:
    """Content digest of every file under ``folder`` (to detect a lost or changed file)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def classify(write: Callable[[Path], Path], folder: Path, *, repaired: bool) -> tuple[str, str]:
    """Run one case through ``citytwin run``: (outcome, message) with outcome one of
    clear / repaired / traceback / silent / lost."""
    from citytwin.cli import main

    folder.mkdir(parents=True, exist_ok=True)
    path = write(folder)
    before = snapshot(folder)
    err = io.StringIO()
    out = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            rc = main(["run", str(path), "--out", str(folder / "out"), "--no-progress"])
    except SystemExit as exc:  # argparse
        rc = int(exc.code or 0)
    except BaseException as exc:  # noqa: BLE001 - this is what we are looking for
        return "traceback", f"{type(exc).__name__}: {exc}"[:300]
    msg = err.getvalue().strip()
    after = snapshot(folder)
    if any(after.get(k) != v for k, v in before.items()):
        return "lost", "a file of the case changed or vanished"
    if "Traceback" in msg or "internal error" in msg:
        return "traceback", msg[:300]
    if rc == 0:
        return ("repaired" if repaired else "silent"), out.getvalue()[:200]
    if rc == 2 and msg.startswith("error:"):
        return "clear", msg[:300]
    return "traceback", f"exit {rc}: {msg[:300]}"
