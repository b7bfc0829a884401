"""Uploaded city files are size-limited, name-checked and validated before they are kept."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from citytwin.app.config import AppConfig
from citytwin.app.upload import save_upload
from citytwin.errors import GeodataError, InputError

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny.gpkg"


@pytest.fixture()
def cfg(tmp_path: Path) -> AppConfig:
    d = tmp_path / "data"
    d.mkdir()
    shutil.copy(TINY, d / "tiny.gpkg")
    return AppConfig(data_dir=d, results_dir=tmp_path / "results", city="tiny.gpkg",
                     max_upload_bytes=TINY.stat().st_size + 10)


def test_valid_upload_is_stored(cfg: AppConfig) -> None:
    path = save_upload(cfg, "mine.gpkg", TINY.read_bytes())
    assert path == Path(cfg.data_dir).resolve() / "mine.gpkg"
    assert "mine.gpkg" in cfg.city_files()
    with pytest.raises(InputError, match="already exists"):
        save_upload(cfg, "mine.gpkg", TINY.read_bytes())


def test_bad_uploads_are_refused_and_leave_nothing(cfg: AppConfig, tmp_path: Path) -> None:
    before = sorted(p.name for p in Path(cfg.data_dir).iterdir())
    with pytest.raises(InputError) as err:
        save_upload(cfg, "../evil.gpkg", b"x" * (cfg.max_upload_bytes + 1))
    assert len(err.value.problems) == 2  # the name and the size, reported together
    with pytest.raises(InputError, match="expected one of"):
        save_upload(cfg, "notes.txt", b"hello")
    with pytest.raises(GeodataError):
        save_upload(cfg, "broken.gpkg", b"this is not a geopackage")
    assert sorted(p.name for p in Path(cfg.data_dir).iterdir()) == before
    assert not (tmp_path / "evil.gpkg").exists()
