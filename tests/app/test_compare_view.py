"""KPI comparison tables and figures of the Compare and Experiments pages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from citytwin.app.compare_view import (
    COMPARE_COLUMNS,
    kpi_table,
    link_congestion,
    response_points,
    transformer_loading,
)
from citytwin.app.data import load_results
from citytwin.app.pages.compare import comparison_figures, format_kpi_table
from citytwin.app.pages.experiments import outcome_figure
from citytwin.errors import InputError

from ._apphelpers import series_frame, write_results


@pytest.fixture()
def two_scenarios(tmp_path: Path) -> dict[str, dict]:
    base = [10.0, 12.0, 11.0]
    ev = [15.0, 18.0, 16.5]
    out = {}
    for seed, (b, e) in enumerate(zip(base, ev, strict=True)):
        for name, v in (("baseline", b), ("ev", e)):
            p = write_results(tmp_path, f"{name}-s{seed}", scenario=name, seed=seed,
                              kpis={"energy": {"peak_load_kw": v}, "traffic": {"delay_s": 2 * v}},
                              series=series_frame("energy", "load_kw", np.linspace(0, v, 5)))
            out[f"{name}-s{seed}"] = load_results(p)
    return out


def test_pooled_by_scenario_matches_t_interval(two_scenarios: dict) -> None:
    t = kpi_table(two_scenarios, group_by="scenario")
    assert list(t.columns) == COMPARE_COLUMNS
    row = t[(t.kpi == "peak_load_kw") & (t.scenario == "ev")].iloc[0]
    ev = np.array([15.0, 18.0, 16.5])
    base = np.array([10.0, 12.0, 11.0])
    half = stats.t.ppf(0.975, 2) * stats.sem(ev)
    assert row["n"] == 3 and row["mean"] == pytest.approx(ev.mean())
    assert row["ci_low"] == pytest.approx(ev.mean() - half)
    # same seeds in both scenarios: a paired difference
    d = ev - base
    assert row["method"] == "paired"
    assert row["diff"] == pytest.approx(d.mean())
    assert row["diff_ci_high"] == pytest.approx(d.mean() + stats.t.ppf(0.975, 2) * stats.sem(d))


def test_per_folder_grouping_and_display(two_scenarios: dict) -> None:
    pick = {k: two_scenarios[k] for k in ("baseline-s0", "ev-s0")}
    t = kpi_table(pick)
    assert set(t.scenario) == {"baseline-s0", "ev-s0"} and (t.n == 1).all()
    wide = format_kpi_table(t)
    assert list(wide.columns) == ["domain", "KPI", "unit", "better", "baseline-s0", "ev-s0",
                                  "Δ ev-s0"]
    row = wide[wide.KPI == "Peak load"].iloc[0]
    assert row["unit"] == "kW"
    assert row["baseline-s0"] == "10" and row["ev-s0"] == "15"
    assert row["Δ ev-s0"].startswith("+5") and "+50.0 %" in row["Δ ev-s0"]
    with pytest.raises(InputError):
        kpi_table({})


def test_series_overlaid_one_line_per_result(two_scenarios: dict) -> None:
    figs = comparison_figures({k: two_scenarios[k] for k in ("baseline-s1", "ev-s1")})
    assert len(figs) == 1
    assert [tr.name for tr in figs[0].data] == ["baseline-s1", "ev-s1"]
    assert figs[0].data[1].y[-1] == pytest.approx(18.0)


def test_outcome_figure_has_error_bars(two_scenarios: dict) -> None:
    fig = outcome_figure(two_scenarios, "peak_load_kw")
    means = fig.data[1]
    assert list(means.x) == ["baseline", "ev"]
    assert means.error_y.array[0] > 0 and len(fig.data[0].x) == 6


def test_result_map_values() -> None:
    links = pd.DataFrame({"edge_id": [0, 0, 1, 2], "time_s": [0, 900, 0, 0],
                          "volume": [1, 2, 3, 4], "speed_kph": [50, 25, 30, 60], "queue": 0})
    ff = pd.Series([50.0, 60.0, 50.0], index=[0, 1, 2])
    r = link_congestion(links, ff)
    assert r.to_dict() == {0: 0.5, 1: 0.5, 2: 1.0}
    assets = pd.DataFrame({"asset_id": ["t1", "t1", "l1"], "kind": ["trafo", "trafo", "line"],
                           "time_s": [0, 1, 0], "loading_pct": [40.0, 95.0, 300.0],
                           "vm_pu": 1.0})
    assert transformer_loading(assets).to_dict() == {"t1": 95.0}
    inc = pd.DataFrame({"building_id": [1, 5, 99], "response_s": [600.0, 300.0, 60.0]})
    b = pd.DataFrame({"building_id": [1, 5], "x": [0.0, 10.0], "y": [1.0, 2.0]})
    pts = response_points(inc, b)
    assert pts["value"].tolist() == [10.0, 5.0] and pts["x"].tolist() == [0.0, 10.0]


def test_experiment_outputs_lever_plot(tmp_path: Path) -> None:
    from citytwin.app.pages.experiments import (
        find_experiments,
        lever_figure,
        load_experiment_output,
    )

    out = tmp_path / "exp1"
    out.mkdir()
    rows = [{"experiment": "e", "point": p, "replication": r, "seed": r, "scenario": f"e{p}",
             "ev_share": share, "peak_kw": 100 + 50 * share + r}
            for p, share in enumerate((0.1, 0.4)) for r in range(3)]
    pd.DataFrame(rows).to_parquet(out / "outcomes.parquet")
    pd.DataFrame({"outcome": ["peak_kw"], "factor": ["ev_share"], "kind": ["lever"],
                  "src": [0.9], "r2": [0.9], "main_effect": [15.0], "n": [6]}).to_parquet(
        out / "sensitivity.parquet")
    (tmp_path / "sessions" / "x" / "exp2").mkdir(parents=True)
    (tmp_path / "sessions" / "x" / "exp2" / "outcomes.parquet").write_bytes(b"")
    assert list(find_experiments(tmp_path)) == ["exp1"]
    outcomes, sens, factors, names = load_experiment_output(out)
    assert factors == ["ev_share"] and names == ["peak_kw"]
    fig = lever_figure(outcomes, "ev_share", "peak_kw")
    means = fig.data[1]
    assert list(means.x) == [0.1, 0.4]
    assert list(means.y) == pytest.approx([106.0, 121.0])
    half = stats.t.ppf(0.975, 2) * stats.sem([0.0, 1.0, 2.0])
    assert means.error_y.array[0] == pytest.approx(half)
    with pytest.raises(InputError):
        lever_figure(outcomes, "lanes", "peak_kw")


def test_glossary_names_units_direction_and_flags() -> None:
    from citytwin.app.glossary import caveats, delta_colour, kpi_info

    assert kpi_info("calls_unreachable_n").unit == "calls"  # not "1"
    fallback = kpi_info("units_stranded_n", "1")
    assert fallback.name == "Units stranded" and fallback.unit == "count"
    assert delta_colour("mean_trip_time_s", +30.0) == "#c62828"  # longer trips: worse
    assert delta_colour("trips_completed", +30.0) == "#2e7d32"
    assert delta_colour("mean_trip_time_s", +30.0, -5.0, 60.0) == "#757575"  # CI spans 0
    fac = pd.DataFrame({"kind": ["fire_station"]})
    res = {"a": {"manifest": {"spec": {"traffic": {"sample": 0.1}},
                              "kpi_notes": {"emergency": {"nfpa_met": "no calls"}}}}}
    notes = caveats(res, facilities=fac, n_by_group={"a": 3, "b": 8})
    assert any("no ambulance station" in n for n in notes["emergency"])
    assert any("no hospital" in n for n in notes["emergency"])
    assert any("NFPA 1710" in n and "no calls" in n for n in notes["emergency"])
    assert any("10% sample" in n for n in notes["traffic"])
    assert [n for n in notes["all"] if "a: 3 replication" in n] and \
        not [n for n in notes["all"] if "b:" in n]


def test_small_n_intervals_are_flagged(two_scenarios: dict) -> None:
    wide = format_kpi_table(kpi_table(two_scenarios, group_by="scenario"))
    assert wide.iloc[0]["ev"].endswith("⚠ n=3")


def test_single_run_groups_match_citytwin_compare(tmp_path: Path) -> None:
    """The per-folder table's fast path gives compare()'s numbers: a KPI missing from the
    first result ("no baseline"), a zero baseline (no %), NaN values and three results."""
    from citytwin.app.compare_view import _compare_single_runs
    from citytwin.comparison import compare

    kp = [{"energy": {"peak_load_kw": 10.0, "zero_kw": 0.0}, "traffic": {"delay_s": 4.0}},
          {"energy": {"peak_load_kw": 12.5, "zero_kw": 3.0, "new_kw": 1.0},
           "traffic": {"delay_s": float("nan")}},
          {"energy": {"peak_load_kw": 9.0, "zero_kw": 0.0}, "traffic": {"delay_s": 5.0}}]
    res = {f"r{i}": load_results(write_results(tmp_path, f"r{i}", scenario="s", seed=i,
                                               kpis=k)) for i, k in enumerate(kp)}
    t = kpi_table(res)
    assert t is not None and (t.n == 1).all()
    df = pd.concat([r["kpis"].assign(scenario=label) for label, r in res.items()],
                   ignore_index=True)
    assert _compare_single_runs(df) is not None  # the fast path was taken
    ref = compare(df)
    pd.testing.assert_frame_equal(t.reset_index(drop=True), ref.reset_index(drop=True),
                                  check_dtype=False)
    new = t[t.kpi == "new_kw"].iloc[0]
    assert new["method"] == "no baseline" and np.isnan(new["diff"])
    # several seeds in a group: the intervals of compare() (no fast path)
    two = {**res, "again": load_results(write_results(tmp_path, "again", scenario="s", seed=7,
                                                      kpis=kp[0]))}
    pooled = kpi_table(two, group_by="scenario")
    assert (pooled.n == 4).any() and pooled["ci_low"].notna().any()


def test_comparison_tables_are_shared_per_results_objects(two_scenarios: dict) -> None:
    """A comparison seen before (same labels, same cached results objects) is a lookup; other
    results objects under the same labels are computed afresh."""
    from citytwin.app.pages.compare import _shared

    calls: list[int] = []

    def build() -> list[int]:
        calls.append(1)
        return [len(calls)]

    pick = {k: two_scenarios[k] for k in ("baseline-s0", "ev-s0")}
    first = _shared(("test",), pick, build)
    assert _shared(("test",), dict(pick), build) is first and len(calls) == 1
    copies = {k: dict(v) for k, v in pick.items()}  # equal content, other objects
    assert _shared(("test",), copies, build) == [2] and len(calls) == 2
    assert _shared(("other",), pick, build) == [3]
