"""Issue 13: ``citytwin.osm`` reads exactly the ``power=*`` values the power layer check
keeps (one list, ``citytwin.layers.POWER_VALUES``): a value the check keeps was never
dropped unsaid by the extract reader, and no value read is then dropped by the check."""

from __future__ import annotations

from pathlib import Path

import pytest

from citytwin import layers, osm

KOTKA = Path(__file__).resolve().parents[2] / "tests" / "data" / "kotka.osm.pbf"


def test_one_list_of_power_values() -> None:
    assert osm._POWER_VALUES == list(layers.POWER_VALUES)
    # the values the reader's own, shorter list used to miss
    for value in ("sub_station", "portal", "busbar", "bay", "switchgear", "converter"):
        assert value in osm._POWER_VALUES


def test_the_reader_asks_pyrosm_for_that_list(monkeypatch: pytest.MonkeyPatch) -> None:
    import pyrosm

    asked: list[dict] = []
    original = pyrosm.OSM.get_data_by_custom_criteria

    def spy(self, custom_filter, *args, **kwargs):
        asked.append(custom_filter)
        return original(self, custom_filter, *args, **kwargs)

    monkeypatch.setattr(pyrosm.OSM, "get_data_by_custom_criteria", spy)
    out = osm.osm_layers(KOTKA)
    power_filters = [f["power"] for f in asked if "power" in f]
    assert power_filters == [list(layers.POWER_VALUES)]
    kinds = set(out["power"]["power"]) if "power" in out else set()
    assert kinds and kinds <= set(layers.POWER_VALUES)
