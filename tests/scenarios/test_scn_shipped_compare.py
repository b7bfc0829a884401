"""Shipped scenarios are valid against the shipped city; compare's intervals are right."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from citytwin import interventions
from citytwin.comparison import compare, mean_ci, to_wide
from citytwin.errors import InputError
from citytwin.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "scenarios").glob("*.toml"))


def test_shipped_scenarios_exist() -> None:
    names = {p.stem for p in SHIPPED}
    assert {"baseline", "ev_40", "new_fire_station", "heat_wave", "substation_outage",
            "close_mannerheimintie",
            "combined"} <= names


@pytest.fixture(scope="module")
def helsinki():
    from citytwin.model import load_city

    return load_city(ROOT / "geodata" / "helsinki.gpkg")  # the default on-disk city cache


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_scenario_is_valid_for_helsinki(path: Path, helsinki) -> None:
    sc = load_scenario(path)
    assert sc.name == path.stem
    assert sc.city == (ROOT / "geodata" / "helsinki.gpkg").resolve()
    assert interventions.check(sc, helsinki) == []
    if path.stem != "baseline":
        base = load_scenario(ROOT / "scenarios" / "baseline.toml")
        assert sc.content_hash() != base.content_hash()


def _kpis(rows: list[tuple[str, int, float]]) -> pd.DataFrame:
    return pd.DataFrame([
        {"scenario": s, "seed": seed, "domain": "traffic", "kpi": "mean_delay_s", "value": v,
         "unit": "s"} for s, seed, v in rows
    ])


def test_mean_ci_is_the_student_t_interval() -> None:
    x = np.array([10.0, 12.0, 11.0, 15.0])
    mean, half = mean_ci(x)
    assert mean == pytest.approx(12.0)
    assert half == pytest.approx(stats.t.ppf(0.975, 3) * x.std(ddof=1) / 2)
    assert np.isnan(mean_ci([3.0])[1])


def test_compare_pairs_replications_by_seed() -> None:
    base = [10.0, 12.0, 11.0, 15.0]
    alt = [b + d for b, d in zip(base, [1.0, 1.2, 0.8, 1.0], strict=True)]
    kpis = _kpis([("base", s, v) for s, v in enumerate(base)]
                 + [("alt", s, v) for s, v in enumerate(alt)])
    table = compare(kpis)
    b, a = table.iloc[0], table.iloc[1]
    assert (b["scenario"], a["scenario"]) == ("base", "alt")
    assert b["diff"] == 0 and b["method"] == "baseline"
    assert a["method"] == "paired" and a["diff"] == pytest.approx(1.0)
    d = np.array([1.0, 1.2, 0.8, 1.0])
    half = stats.t.ppf(0.975, 3) * d.std(ddof=1) / 2
    assert a["diff_ci_low"] == pytest.approx(1.0 - half)
    assert a["diff_ci_high"] == pytest.approx(1.0 + half)
    assert a["diff_pct"] == pytest.approx(100 / 12)
    # the paired interval is much narrower than the spread of either scenario
    assert a["diff_ci_high"] - a["diff_ci_low"] < (a["ci_high"] - a["ci_low"]) / 5
    wide = to_wide(table)
    assert list(wide.columns) == ["domain", "kpi", "unit", "base", "alt", "Δ alt"]


def test_compare_uses_welch_for_different_seeds_and_named_baseline() -> None:
    kpis = _kpis([("a", 0, 1.0), ("a", 1, 2.0), ("a", 2, 3.0),
                  ("b", 10, 2.0), ("b", 11, 4.0), ("b", 12, 6.0), ("b", 13, 8.0)])
    table = compare(kpis, baseline="b")
    row = table[table["scenario"] == "a"].iloc[0]
    assert row["method"] == "welch" and row["diff"] == pytest.approx(2.0 - 5.0)
    va, vb = np.var([1, 2, 3], ddof=1) / 3, np.var([2, 4, 6, 8], ddof=1) / 4
    dof = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 3)
    half = stats.t.ppf(0.975, dof) * np.sqrt(va + vb)
    assert row["diff_ci_high"] - row["diff"] == pytest.approx(half)
    with pytest.raises(InputError, match="baseline"):
        compare(kpis, baseline="zzz")


def test_compare_reads_result_dirs_and_rejects_non_results(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        compare([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no results"):
        compare([tmp_path / "empty"])


def test_shipped_experiment_designs_valid_scenarios() -> None:
    from citytwin.experiments import design_points, load_experiment, point_scenarios

    exp = load_experiment(ROOT / "scenarios" / "experiments" / "ev_policy.toml")
    design = design_points(exp)
    scs = point_scenarios(exp, design)
    assert len(scs) == exp.samples == len(design)
    assert {iv.charging for s in scs for iv in s.interventions} == set(design["charging"])


def test_package_exposes_the_python_api() -> None:
    import citytwin
    import citytwin.comparison  # importing the module does not hide the function

    kpis = _kpis([("a", 0, 1.0), ("b", 0, 3.0)])
    assert list(citytwin.compare(kpis)["diff"]) == [0.0, 2.0]
    assert citytwin.run_scenario.__module__ == "citytwin.model"
    assert citytwin.load_scenario is load_scenario
