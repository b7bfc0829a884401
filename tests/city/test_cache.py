"""The disk cache: keyed by input bytes, atomic, never half-written, rebuilt when broken."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest

import citytwin.city as city_mod
from citytwin.city import City, default_cache_dir
from citytwin.errors import GeodataError
from citytwin.layers import read_layers
from citytwin.osm import write_gpkg

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny.gpkg"


def _strip(s: dict) -> dict:
    return {k: v for k, v in s.items() if k not in ("build_s", "from_cache")}


def test_second_build_reads_cache(tmp_path: Path) -> None:
    c1 = City.from_path(TINY, cache_dir=tmp_path)
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].suffix == ".pkl" and not c1.from_cache
    c2 = City.from_path(TINY, cache_dir=tmp_path)
    assert c2.from_cache
    assert _strip(c2.summary()) == _strip(c1.summary())
    assert list(c2.roads.edges(keys=True, data="edge_id")) == list(
        c1.roads.edges(keys=True, data="edge_id"))
    assert c2.buildings.equals(c1.buildings)
    assert c2.road_arrays.n_edges == 23
    assert City.from_path(TINY, cache_dir=tmp_path, use_cache=False).from_cache is False


def test_changed_input_gets_a_new_entry(tmp_path: Path) -> None:
    layers = read_layers(TINY)
    src = write_gpkg(layers, tmp_path / "in" / "city.gpkg")
    cache = tmp_path / "cache"
    City.from_path(src, cache_dir=cache)
    layers["buildings"].loc[0, "levels"] = 6
    write_gpkg(layers, src)
    c = City.from_path(src, cache_dir=cache)
    assert not c.from_cache
    assert c.buildings.loc[0, "floor_area_m2"] == pytest.approx(1200.0)
    assert len(list(cache.glob("*.pkl"))) == 2


def test_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(city_mod.pickle, "dump", boom)
    city = City.from_path(TINY, cache_dir=tmp_path)  # still built, just not cached
    assert city.roads.number_of_nodes() == 9
    assert list(tmp_path.iterdir()) == []


def test_interrupted_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(city_mod.pickle, "dump", interrupted)
    with pytest.raises(KeyboardInterrupt):
        City.from_path(TINY, cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_bad_input_writes_nothing(tmp_path: Path) -> None:
    layers = read_layers(TINY)
    layers["roads"] = layers["roads"].drop(columns=["highway"])
    src = write_gpkg(layers, tmp_path / "bad.gpkg")
    cache = tmp_path / "cache"
    with pytest.raises(GeodataError):
        City.from_path(src, cache_dir=cache)
    assert not cache.exists() or list(cache.iterdir()) == []


def test_corrupt_cache_is_rebuilt(tmp_path: Path) -> None:
    City.from_path(TINY, cache_dir=tmp_path)
    (entry,) = tmp_path.glob("*.pkl")
    entry.write_bytes(b"not a pickle")
    c = City.from_path(TINY, cache_dir=tmp_path)
    assert not c.from_cache and c.roads.number_of_nodes() == 9
    with open(entry, "rb") as fh:
        assert isinstance(pickle.load(fh), City)


def test_cache_dir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYTWIN_CACHE", str(tmp_path / "env-cache"))
    assert default_cache_dir() == tmp_path / "env-cache"
    copy = tmp_path / "tiny.gpkg"
    shutil.copy(TINY, copy)
    City.from_path(copy)
    assert len(list((tmp_path / "env-cache").glob("tiny-*.pkl"))) == 1


def test_two_cold_builds_are_identical() -> None:
    a = City.from_path(TINY, use_cache=False)
    b = City.from_path(TINY, use_cache=False)
    assert a.buildings.equals(b.buildings) and a.facilities.equals(b.facilities)
    assert list(a.roads.edges(keys=True, data=True)) == list(b.roads.edges(keys=True, data=True))
    assert list(a.roads.nodes(data=True)) == list(b.roads.nodes(data=True))
    assert sorted(a.power.edges(data="element_id")) == sorted(b.power.edges(data="element_id"))


def test_temp_file_of_a_killed_cache_writer_is_removed(tmp_path: Path) -> None:
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # its pid is no longer alive
    stale = tmp_path / f"tiny-0123.pkl.tmp-{dead.pid}-abc"
    stale.write_bytes(b"half a pickle")
    City.from_path(TINY, cache_dir=tmp_path)
    names = [p.name for p in tmp_path.iterdir()]
    assert len(names) == 1 and names[0].endswith(".pkl"), names
