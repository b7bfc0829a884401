"""Fixtures for the app tests: a data folder with the tiny city, a results folder, configs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from citytwin.app.config import AppConfig

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny.gpkg"


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("appdata")
    shutil.copy(TINY, d / "tiny.gpkg")
    return d


@pytest.fixture()
def config(data_dir: Path, tmp_path: Path) -> AppConfig:
    return AppConfig(data_dir=data_dir, results_dir=tmp_path / "results", city="tiny.gpkg")


