"""Start-up boundaries (#11): what a cheap entry point must not import, checked in fresh processes."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("mesa", "pandapower", "matplotlib", "scipy.stats", "geopandas", "solara", "pyogrio")


def _imported_after(code: str) -> list[str]:
    probe = code + f"\nimport sys\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return eval(out.stdout.strip().splitlines()[-1])  # a printed list of str


@pytest.mark.parametrize(("code", "allowed"), [
    ("import citytwin; citytwin.__version__; citytwin.ScenarioError", set()),
    ("from citytwin.energy import design_peak_kw, typical_year", {"geopandas"}),
    ("from citytwin.traffic import static_ue, read_tntp_net", set()),
    # the scenario model (what `citytwin run` imports): the power-flow library and plotting stay
    # out until a run needs them (pandapower: a step off the normal grid topology)
    ("import citytwin.model", {"mesa", "geopandas"}),
])
def test_cheap_entry_points_stay_cheap(code, allowed):
    assert set(_imported_after(code)) <= allowed


def test_lazy_names_resolve_and_unknown_names_fail():
    import citytwin
    import citytwin.energy
    import citytwin.traffic

    assert citytwin.run_scenario.__module__ == "citytwin.model"
    assert citytwin.energy.EnergyEngine.__module__ == "citytwin.energy.engine"
    assert citytwin.traffic.TrafficParams.__module__ == "citytwin.traffic.params"
    assert {"run_scenario", "compare"} <= set(dir(citytwin))
    for mod in (citytwin, citytwin.energy, citytwin.traffic):
        with pytest.raises(AttributeError, match="no attribute 'nope'"):
            mod.nope  # noqa: B018
