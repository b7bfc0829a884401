"""Issue 13: one path guard for everything from the browser; app work runs under limits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from citytwin.app.config import AppConfig, guard_path, guard_scenario_paths
from citytwin.app.worker import run_request
from citytwin.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny.gpkg"


@pytest.fixture()
def cfg(tmp_path: Path) -> AppConfig:
    (tmp_path / "data").mkdir()
    (tmp_path / "results").mkdir()
    (tmp_path / "data" / "tiny.gpkg").write_bytes(TINY.read_bytes())
    return AppConfig(data_dir=tmp_path / "data", results_dir=tmp_path / "results",
                     city="tiny.gpkg")


def _msg(exc: pytest.ExceptionInfo[InputError]) -> str:
    return str(exc.value).replace(str(exc.value.problems[0].split("'")[1]), "<p>")


def test_same_refusal_whether_or_not_the_file_exists(cfg: AppConfig, tmp_path: Path) -> None:
    secret = tmp_path / "users.csv"
    secret.write_text("username,password_hash\nroot,x\n")
    with pytest.raises(InputError) as a:
        guard_path(str(secret), cfg.roots, what="emergency.incident_log")
    with pytest.raises(InputError) as b:
        guard_path(str(tmp_path / "nope.csv"), cfg.roots, what="emergency.incident_log")
    assert _msg(a) == _msg(b)
    assert "not allowed" in str(a.value) and "password" not in str(a.value)


@pytest.mark.parametrize("value", ["/etc/passwd", "../users.csv", "../../etc/passwd",
                                   "data/../../x", "\x00", ""])
def test_outside_values_refused(cfg: AppConfig, value: str) -> None:
    with pytest.raises(InputError, match="not allowed"):
        guard_path(value, cfg.roots, what="weather")


def test_symlink_out_of_the_folder_refused(cfg: AppConfig, tmp_path: Path) -> None:
    outside = tmp_path / "secret.csv"
    outside.write_text("a,b\n")
    link = Path(cfg.data_dir) / "log.csv"
    link.symlink_to(outside)
    with pytest.raises(InputError, match="not allowed"):
        guard_path(str(link), cfg.roots)
    inside = Path(cfg.data_dir) / "ok.csv"
    inside.write_text("a\n")
    assert guard_path("ok.csv", cfg.roots) == inside.resolve()


def test_scenario_path_fields_all_checked(cfg: AppConfig, tmp_path: Path) -> None:
    sc = {"name": "x", "city": str(Path(cfg.data_dir) / "tiny.gpkg"),
          "emergency": {"incident_log": "/etc/passwd"},
          "energy": {"weather": str(tmp_path / "w.csv")}, "extends": ["../../a.toml"]}
    with pytest.raises(InputError) as exc:
        guard_scenario_paths(sc, cfg.roots)
    keys = " ".join(exc.value.problems)
    assert "emergency.incident_log" in keys and "energy.weather" in keys and "extends" in keys
    ok = guard_scenario_paths({"name": "x", "energy": {"weather": "typical"}}, cfg.roots)
    assert ok["energy"]["weather"] == "typical"


def test_worker_refuses_incident_log_outside(cfg: AppConfig, tmp_path: Path) -> None:
    secret = tmp_path / "incidents.csv"
    secret.write_text("time_s,type,building_id\n1,fire,1\n")
    request = {"scenario": {"name": "x", "duration_h": 1,
                            "emergency": {"incident_log": str(secret)}},
               "seed": 1, "city": str(Path(cfg.data_dir) / "tiny.gpkg"),
               "roots": [str(r) for r in cfg.roots]}
    with pytest.raises(InputError, match="emergency.incident_log.*not allowed"):
        run_request(request, Path(cfg.results_dir) / "run")
    assert not (Path(cfg.results_dir) / "run").exists()


def _worker_with(body: str, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    """``python -m citytwin.app.worker --check-city`` as the app starts it, with the city
    check replaced by ``body`` (in the forked work child, under the limits)."""
    code = ("import sys\nimport citytwin.app.worker as w\n"
            f"def check(p):\n    {body}\n"
            "w.check_city = check\nsys.argv = ['w', '--check-city', 'x.gpkg']\n"
            "sys.exit(w.main())\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **env}, cwd=tmp_path)


def test_worker_cpu_limit_stops_a_runaway_request(tmp_path: Path) -> None:
    proc = _worker_with("while True: pass", {"CITYTWIN_APP_CHECK_CPU_S": "1"}, tmp_path)
    assert proc.returncode == 3
    assert "CPU time limit of 1 s" in json.loads(proc.stdout.splitlines()[-1])["error"]


def test_worker_cpu_limit_stops_a_query_inside_c_code(tmp_path: Path) -> None:
    """A Python signal handler never runs while SQLite counts (the CPU-heavy SQL view of
    issue 13): the kernel ends the work child and the supervisor says why."""
    body = ("import sqlite3; sqlite3.connect(':memory:').execute('WITH RECURSIVE c(x) AS "
            "(SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000000) "
            "SELECT count(*) FROM c').fetchall()")
    proc = _worker_with(body, {"CITYTWIN_APP_CHECK_CPU_S": "2"}, tmp_path)
    assert proc.returncode == 3, proc.stderr[-500:]
    assert "CPU time limit of 2 s" in json.loads(proc.stdout.splitlines()[-1])["error"]
    assert "Traceback" not in proc.stdout + proc.stderr


def test_worker_wall_limit_and_parent_death(tmp_path: Path) -> None:
    proc = _worker_with("import time; time.sleep(60)", {"CITYTWIN_APP_CHECK_WALL_S": "2"},
                        tmp_path)
    assert proc.returncode == 3
    assert "wall-clock limit of 2 s" in json.loads(proc.stdout.splitlines()[-1])["error"]
    # killing the worker (a cancelled run) kills its work child too
    import time

    started, marker = tmp_path / "started", tmp_path / "alive"
    code = ("import sys, time\nimport citytwin.app.worker as w\n"
            f"def check(p):\n    open({str(started)!r}, 'w').write('x'); time.sleep(3); "
            f"open({str(marker)!r}, 'w').write('x')\n"
            "w.check_city = check\nsys.argv = ['w', '--check-city', 'x']\nsys.exit(w.main())\n")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert started.exists()
    child.kill()
    child.wait()
    time.sleep(4)
    assert not marker.exists()


def test_worker_memory_limit_is_a_message(tmp_path: Path) -> None:
    env = dict(os.environ, CITYTWIN_APP_MEM_MB="300")
    code = ("import sys\nfrom citytwin.app.worker import main\n"
            "sys.argv = ['w', '--check-city', sys.argv[1]]\n"
            "import citytwin.app.worker as w\n"
            "w.check_city = lambda p: bytearray(2_000_000_000)\n"
            "sys.exit(main())\n")
    proc = subprocess.run([sys.executable, "-c", code, str(TINY)], capture_output=True,
                          text=True, timeout=120, env=env)
    assert proc.returncode == 3, proc.stderr[-500:]
    assert "more memory" in proc.stdout
    assert "Traceback" not in proc.stdout


def _string_fields() -> set[str]:
    """Dotted keys of every free-text (or path) field of the scenario schema."""
    from citytwin.scenario import Scenario

    schema = Scenario.model_json_schema()
    defs = schema.get("$defs", {})

    def leaves(node: dict, path: str) -> set[str]:
        while "$ref" in node:
            node = defs[node["$ref"].split("/")[-1]]
        out: set[str] = set()
        for k in ("anyOf", "oneOf", "allOf"):
            for sub in node.get(k, []):
                out |= leaves(sub, path)
        if node.get("type") == "array" and "items" in node:
            out |= leaves(node["items"], path)
        if isinstance(node.get("additionalProperties"), dict):
            out |= leaves(node["additionalProperties"], path)
        for name, sub in node.get("properties", {}).items():
            out |= leaves(sub, f"{path}.{name}" if path else name)
        if (node.get("type") == "string" and "enum" not in node and "const" not in node
                and node.get("format") in (None, "path")):
            out.add(path)
        return out

    return leaves(schema, "")


def test_every_free_text_field_of_the_schema_is_classified() -> None:
    """A new path field in the schema (as traffic.od_factors was) cannot slip past the guard:
    each free-text field is either guarded (PATH_FIELDS) or declared a name (NOT_PATH_FIELDS)."""
    from citytwin.app.config import NOT_PATH_FIELDS, PATH_FIELDS

    fields = _string_fields()
    assert "traffic.od_factors" in fields and "emergency.incident_log" in fields
    assert fields - set(NOT_PATH_FIELDS) == set(PATH_FIELDS) - {"extends"}
    assert not set(NOT_PATH_FIELDS) - fields  # no stale entry


def test_od_factors_outside_is_refused(cfg: AppConfig, tmp_path: Path) -> None:
    secret = tmp_path / "od.parquet"
    secret.write_text("username,password_hash\n")
    with pytest.raises(InputError, match="traffic.od_factors .* not allowed") as exc:
        guard_scenario_paths({"traffic": {"od_factors": str(secret)}}, cfg.roots)
    assert "password" not in str(exc.value)


def test_another_workspace_is_private(cfg: AppConfig) -> None:
    """results/sessions/<other>/ is inside the results folder but never a path source;
    a shared results folder is."""
    other = Path(cfg.results_dir) / "sessions" / "w-other" / "run-1"
    other.mkdir(parents=True)
    (other / "incidents.parquet").write_bytes(b"PAR1")
    shared = Path(cfg.results_dir) / "shared-run"
    shared.mkdir()
    (shared / "incidents.parquet").write_bytes(b"PAR1")
    for value in (str(other / "incidents.parquet"), "../results/sessions/w-other/run-1/x"):
        with pytest.raises(InputError, match="not allowed"):
            guard_path(value, cfg.roots, denied=cfg.denied, what="emergency.incident_log")
    assert guard_path(str(shared / "incidents.parquet"), cfg.roots, denied=cfg.denied) == (
        shared / "incidents.parquet").resolve()
    # the worker derives the same private folder from its roots
    request = {"scenario": {"name": "x", "duration_h": 1, "emergency": {
        "incident_log": str(other / "incidents.parquet")}}, "seed": 1,
        "city": str(Path(cfg.data_dir) / "tiny.gpkg"), "roots": [str(r) for r in cfg.roots]}
    with pytest.raises(InputError, match="emergency.incident_log.*not allowed"):
        run_request(request, Path(cfg.results_dir) / "sessions" / "w-me" / "run")


def test_city_files_skip_links_out_and_choice_is_checked(cfg: AppConfig, tmp_path: Path) -> None:
    from citytwin.app.config import check_city_choice

    (tmp_path / "outside.gpkg").write_bytes(TINY.read_bytes())
    (Path(cfg.data_dir) / "link.gpkg").symlink_to(tmp_path / "outside.gpkg")
    (Path(cfg.data_dir) / "inner.gpkg").symlink_to(Path(cfg.data_dir) / "tiny.gpkg")
    assert cfg.city_files() == ["inner.gpkg", "tiny.gpkg"]
    assert check_city_choice(cfg, "inner.gpkg") == "inner.gpkg"
    msgs = set()
    for value in ("link.gpkg", "nope.gpkg", "../outside.gpkg", 5, None):
        with pytest.raises(InputError, match="expected one of the city files") as exc:
            check_city_choice(cfg, value)
        msgs.add(str(exc.value).split("is not allowed")[1])
    assert len(msgs) == 1  # the same refusal, whether the file exists or not


def test_upload_check_has_its_own_limits() -> None:
    from citytwin.app.worker import limits

    env = {"CITYTWIN_APP_CHECK_CPU_S": "7", "CITYTWIN_APP_CPU_S": "99"}
    assert limits(env, check=True)["cpu_s"] == 7 and limits(env)["cpu_s"] == 99
    assert limits({}, check=True)["cpu_s"] == 600
    with pytest.raises(InputError, match="CITYTWIN_APP_CPU_S='lots'"):
        limits({"CITYTWIN_APP_CPU_S": "lots"})


def test_city_choice_refuses_and_keeps_the_city(cfg: AppConfig, tmp_path: Path) -> None:
    """What the City page's select writes into: a refused value never becomes the city."""
    import solara

    from citytwin.app.state import CityChoice

    (Path(cfg.data_dir) / "broken.gpkg").write_bytes(b"not a geopackage")
    (Path(cfg.data_dir) / "out.gpkg").symlink_to(TINY)  # outside the data folder
    refused = solara.reactive("")
    city = CityChoice(solara.reactive("tiny.gpkg"), config=cfg, refused=refused)
    for value in ("out.gpkg", "../tiny.gpkg", "nope.gpkg", "/etc/passwd"):
        city.set(value)
        assert city.value == "tiny.gpkg"
        assert refused.value.startswith(f"city file {value!r} is not allowed: expected one of")
    city.value = "broken.gpkg"  # listed, but it does not open
    assert city.value == "tiny.gpkg" and "broken.gpkg" in refused.value
    assert "Traceback" not in refused.value
    (Path(cfg.data_dir) / "copy.gpkg").write_bytes(TINY.read_bytes())
    city.set("copy.gpkg")
    assert city.value == "copy.gpkg" and refused.value == ""
