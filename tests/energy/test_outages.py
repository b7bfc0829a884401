"""Outages: topology cut, tie restoration with capacity, schedule, SAIDI-style KPIs."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from citytwin.energy.outages import (
    Failure,
    OutageSchedule,
    outage_kpis,
    restoration,
    simulate_outages,
    unsupplied_buildings,
)
from citytwin.errors import InputError


def _below(G, element):
    """Buildings in the subtree below ``element`` of the radial grid rooted at the substations."""
    radial = nx.Graph([(u, v, d) for u, v, d in G.edges(data=True) if d["kind"] != "tie"])
    subs = [n for n, d in G.nodes(data=True) if d["kind"] == "substation"]
    T = nx.DiGraph()
    for s in subs:
        T.add_edges_from(nx.bfs_edges(radial, s))
    if element in G.nodes:
        top = element
    else:
        u, v = next((u, v) for u, v, d in G.edges(data=True) if d["element_id"] == element)
        top = v if T.has_edge(u, v) else u
    sub = nx.descendants(T, top) | {top}
    return {G.nodes[n]["building_id"] for n in sub if G.nodes[n]["kind"] == "building"}


def test_unsupplied_equals_graph_cut_below_element(small_city):
    G = small_city.power
    ids = sorted(small_city.buildings.index)
    lines = sorted(d["element_id"] for *_, d in G.edges(data=True) if d["kind"] == "mv_line")
    trafos = sorted(n for n, d in G.nodes(data=True) if d["kind"] == "transformer")
    subs = [n for n, d in G.nodes(data=True) if d["kind"] == "substation"]
    checked = 0
    for el in lines[::3] + trafos[::5] + subs:
        dark = unsupplied_buildings(G, [el], building_ids=ids)
        assert {ids[i] for i in np.flatnonzero(dark)} == _below(G, el), el
        checked += 1
    assert checked > 20
    assert unsupplied_buildings(G, subs).all()
    assert not unsupplied_buildings(G).any()


def test_matches_power_flow_islands(small_city, small_solver):
    solver = small_solver
    G = small_city.power
    el = sorted(d["element_id"] for *_, d in G.edges(data=True) if d["kind"] == "mv_line")[4]
    p = np.array([G.nodes[f"b{b}"]["design_kw"] for b in solver.building_ids])
    f = solver.solve(p * 0.5, out_of_service={el})
    dark = unsupplied_buildings(G, [el], building_ids=solver.building_ids)
    np.testing.assert_array_equal(f.unsupplied, dark)


def _biggest_restorable(G, *, respect_capacity=False):
    best = None
    for *_, d in G.edges(data=True):
        if d["kind"] != "mv_line":
            continue
        ties = restoration(G, [d["element_id"]], respect_capacity=respect_capacity)
        if ties:
            n = unsupplied_buildings(G, [d["element_id"]]).sum()
            if best is None or n > best[0]:
                best = (n, d["element_id"], ties)
    return best


def test_ties_restore_and_respect_capacity(small_city):
    G = small_city.power
    n, el, ties = _biggest_restorable(G)
    before = unsupplied_buildings(G, [el])
    after = unsupplied_buildings(G, [el], closed_ties=ties)
    assert after.sum() < before.sum() == n
    assert not (after & ~before).any()  # closing ties never darkens anyone
    # with the demand 100x the design load no cable can take the dark part
    huge = {t: 100 * d["design_kva"] for t, d in G.nodes(data=True) if d["kind"] == "transformer"}
    assert restoration(G, [el], load_kw=huge) == frozenset()
    assert restoration(G, [el], load_kw=huge, respect_capacity=False) == ties


def test_schedule_switching_and_repair(small_city):
    G = small_city.power
    _, el, ties = _biggest_restorable(G, respect_capacity=True)
    sched = OutageSchedule(small_city, [Failure(el, 3600.0, 7200.0)], switching_time_s=1800.0)
    assert not sched.state(0.0).unsupplied.any()
    s1 = sched.state(3600.0)
    assert s1.out_of_service == {el} and s1.closed_ties == frozenset()
    s2 = sched.state(3600.0 + 1800.0)
    assert s2.closed_ties and s2.unsupplied.sum() < s1.unsupplied.sum()
    assert not sched.state(3600.0 + 7200.0).unsupplied.any()


def test_kpis_analytic():
    u = np.zeros((8, 3), dtype=bool)
    u[2:6, 1] = True  # building 1 dark for 4 steps of 15 min
    u[0, 2] = u[7, 2] = True  # building 2: two separate interruptions of one step
    d = np.full((8, 3), 10.0)
    c = np.array([1.0, 2.0, 1.0])
    k = outage_kpis(u, d, c, step_s=900.0)
    assert k["energy_not_served_kwh"] == pytest.approx(10 * 1.0 + 10 * 0.5)
    assert k["customer_minutes"] == pytest.approx(2 * 60 + 1 * 30)
    assert k["saidi_min"] == pytest.approx(150 / 4)
    assert k["saifi"] == pytest.approx((2 * 1 + 1 * 2) / 4)
    assert k["customers_interrupted"] == 3.0


def test_simulate_outages_energy_not_served(small_city):
    G = small_city.power
    tr = sorted(n for n, d in G.nodes(data=True) if d["kind"] == "transformer")[3]
    ids = sorted(small_city.buildings.index)
    d = np.full((12, len(ids)), 2.0)
    u, k = simulate_outages(small_city, [Failure(tr, 900.0, 1800.0)], d, step_s=900.0,
                            building_ids=ids)
    n_dark = sum(1 for b in ids if G.nodes[f"b{b}"]["transformer"] == tr)
    assert u.sum() == 2 * n_dark  # steps at 900 s and 1800 s; repaired at 2700 s
    assert k["energy_not_served_kwh"] == pytest.approx(2 * n_dark * 2.0 * 0.25)


def test_unknown_asset_and_bad_failure(small_city):
    with pytest.raises(InputError) as e:
        OutageSchedule(small_city, [Failure("t9999", 0, 60), Failure("line0", 10, -5)])
    msg = str(e.value)
    assert "'t9999'" in msg and "duration_s=-5" in msg and len(e.value.problems) == 2
    with pytest.raises(InputError, match="'nope'"):
        unsupplied_buildings(small_city.power, ["nope"])


def _chain_grid():
    """sub0 ─ a ─ b ─ c   (feeder 1: transformers ta 5 MVA, tb 4 MVA, tc 4 MVA)
       sub0 ─ d          (feeder 2: td 5.5 MVA);  tie c ┄ d (normally open)."""
    G = nx.Graph(mv_kv=20.0)
    G.add_node("sub0", kind="substation", x=0, y=0, rated_mva=63.0)
    for i, n in enumerate("abcd"):
        G.add_node(f"m{n}", kind="mv_node", x=i, y=0)
        G.add_node(f"t{n}", kind="transformer", x=i, y=1, rated_kva=800, parallel=8,
                   design_kva={"a": 5000.0, "b": 4000.0, "c": 4000.0, "d": 5500.0}[n])
        G.add_node(f"b{i}", kind="building", x=i, y=2, building_id=i, transformer=f"t{n}", customers=1)
        G.add_edge(f"m{n}", f"t{n}", kind="mv_line", element_id=f"stub_{n}", length_m=10.0)
        G.add_edge(f"t{n}", f"b{i}", kind="service", element_id=f"svc{i}", length_m=10.0)
    for eid, (u, v) in {"l_a": ("sub0", "ma"), "l_ab": ("ma", "mb"), "l_bc": ("mb", "mc"),
                        "l_d": ("sub0", "md")}.items():
        G.add_edge(u, v, kind="mv_line", element_id=eid, length_m=300.0, n_cables=1)
    G.add_edge("mc", "md", kind="tie", element_id="tie0", length_m=200.0, n_cables=1)
    return G


def test_sectionalizing_picks_up_what_fits():
    from citytwin.energy.outages import restoration_plan

    G = _chain_grid()
    # the cable from sub0 to d carries 5.5 MVA of its 0.95 x 14.6 MVA: 8.4 MVA headroom < 13 MVA dark
    assert unsupplied_buildings(G, ["l_a"]).tolist() == [True, True, True, False]
    assert restoration(G, ["l_a"]) == frozenset()  # whole area does not fit
    plan = restoration_plan(G, ["l_a"])
    assert plan.closed_ties == {"tie0"} and plan.opened_lines == {"stub_a"}
    dark = unsupplied_buildings(G, ["l_a", *plan.opened_lines], closed_ties=plan.closed_ties)
    assert dark.tolist() == [True, False, False, False]  # tb + tc (8 MVA) back, ta stays dark
    # no capacity limit: everything back through the tie
    assert restoration(G, ["l_a"], respect_capacity=False) == {"tie0"}
    sched = OutageSchedule(G, [Failure("l_a", 0.0, 3600.0)], switching_time_s=600.0)
    st = sched.state(900.0)
    assert st.out_of_service == {"l_a", "stub_a"} and st.unsupplied.tolist() == [True, False, False, False]
