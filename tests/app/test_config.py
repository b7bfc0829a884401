"""The app reads and writes only inside its data and results folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from citytwin.app.config import AppConfig, safe_join, safe_name
from citytwin.app.session import Session, list_results
from citytwin.errors import InputError

from ._apphelpers import write_results


@pytest.mark.parametrize("bad", ["..", "../etc", "a/b", "/etc/passwd", "..\\x", "", ".hidden",
                                 "x" * 200, "a..b"])
def test_safe_name_rejects_paths(bad: str) -> None:
    with pytest.raises(InputError, match="not allowed"):
        safe_name(bad, what="city file")


def test_safe_join_stays_inside(tmp_path: Path) -> None:
    assert safe_join(tmp_path, "a.gpkg") == (tmp_path / "a.gpkg").resolve()
    with pytest.raises(InputError):
        safe_join(tmp_path, "..", "secret")
    outside = tmp_path.parent / "outside_target"
    outside.mkdir(exist_ok=True)
    os.symlink(outside, tmp_path / "link")  # a symlink that points out of the root
    with pytest.raises(InputError, match="resolves outside"):
        safe_join(tmp_path, "link")


def test_config_collects_problems(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        AppConfig(data_dir=tmp_path / "missing", results_dir=tmp_path, city="../x.gpkg",
                  max_upload_bytes=0)
    assert len(err.value.problems) == 3
    assert "does not exist" in str(err.value) and "max_upload_bytes" in str(err.value)


def test_env_roundtrip(config: AppConfig) -> None:
    back = AppConfig.from_env(config.to_env())
    assert back.data_dir == Path(config.data_dir).resolve()
    assert back.results_dir == Path(config.results_dir).resolve()
    assert back.city == "tiny.gpkg"
    assert config.city_files() == ["tiny.gpkg"]


def test_session_refuses_results_outside(config: AppConfig, tmp_path: Path) -> None:
    # a real results folder exists *outside* the results dir: the session must not reach it
    outside = write_results(tmp_path, "elsewhere", scenario="x", seed=0,
                            kpis={"traffic": {"a": 1.0}})
    s = Session(config)
    for name in ("../elsewhere", str(outside), "..", "sessions/../../elsewhere"):
        with pytest.raises(InputError):
            s.resolve_result(name)
    with pytest.raises(InputError):
        s.start({"name": "x"}, seed=0, label="x", city="../tiny.gpkg")
    with pytest.raises(InputError, match="not found"):
        s.start({"name": "x"}, seed=0, label="x", city="nope.gpkg")


def test_list_results_skips_sessions(config: AppConfig) -> None:
    root = Path(config.results_dir)
    write_results(root, "base", scenario="base", seed=0, kpis={"traffic": {"a": 1.0}})
    write_results(root / "batch1", "ev-s1", scenario="ev", seed=1, kpis={"traffic": {"a": 2.0}})
    write_results(root / "sessions" / "other", "run", scenario="y", seed=0,
                  kpis={"traffic": {"a": 3.0}})
    found = list_results(root)
    assert sorted(found) == ["base", "batch1/ev-s1"]
    s = Session(config)
    assert s.resolve_result("batch1/ev-s1") == found["batch1/ev-s1"]
    with pytest.raises(InputError):
        s.resolve_result("sessions/other/run")


def test_cli_refuses_bad_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from citytwin.cli import main

    assert main(["app", "--data", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["app", "--data", str(tmp_path), "--city", "../x.gpkg"]) == 2
    assert "not allowed" in capsys.readouterr().err
    assert main(["app", "--data", str(tmp_path), "--results", str(tmp_path / "r")]) == 2
    assert "helsinki.gpkg" in capsys.readouterr().err
