"""The Live page: its readers on a real live results folder, and in a real Chromium the page
updates while the twin keeps ingesting (a new forecast and the fault's alert appear without a
reload)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from citytwin import examples
from citytwin.app.pages.live import (
    live_folders,
    load_live,
    multiplier_figure,
    sensor_figure,
    state_map,
)
from citytwin.energy.engine import EnergyParams
from citytwin.twin.forecast import EnergySetup, simulate
from citytwin.twin.live import LiveTwin
from citytwin.twin.sensorthings import encode, topic
from citytwin.twin.truth import Hidden, truth_feed
from tests.app._appharness import CHROMIUM, CHROMIUM_ARGS, AppServer


@pytest.fixture(scope="module")
def feed():  # type: ignore[no-untyped-def]
    return _feed()


def _feed():  # type: ignore[no-untyped-def]
    setup = EnergySetup(examples.grid(), EnergyParams(power_flow=False), seed=1)
    nominal = simulate(setup)
    fault = nominal.trafo_ids[int(nominal.loading_pct.mean(axis=0).argmax())]
    recs, streams, _ = truth_feed(setup, Hidden(1.15, fault, 0.3))
    return setup, fault, recs, streams


def _ingest(setup, streams, out: Path, recs, until_s: float) -> LiveTwin:  # type: ignore[no-untyped-def]
    twin = LiveTwin(streams, out, start=setup.start, setup=setup, replications=2,
                    window_s=7200.0)
    for r in recs:
        if r["time_s"] <= until_s:
            twin.ingest(topic(r["datastream"]), encode(setup.start, r["time_s"], r["result"]))
    twin.commit()
    return twin


def test_live_page_readers(tmp_path: Path, feed) -> None:  # type: ignore[no-untyped-def]
    setup, fault, recs, streams = feed
    out = tmp_path / "live" / "day1"
    _ingest(setup, streams, out, recs, 6 * 3600.0)
    assert live_folders(tmp_path) == ["day1"]
    view = load_live(out)
    s = view.summary()
    assert s["forecasts"] == 2 and s["observations applied"] == sum(
        r["time_s"] <= 6 * 3600.0 for r in recs)
    assert view.assets()[0] == fault  # the ranking's first
    fig = sensor_figure(view, fault, "top_oil")
    assert [t.name for t in fig.data][0] == "observed" and len(fig.data) == 5
    assert len(multiplier_figure(view).data) == 3
    m = state_map(view)
    assert m is not None
    colour = list(m.data[0].marker.color)
    assert len(colour) == len(setup.transformers())
    assert view.ranking["asset_id"].iloc[colour.index(max(colour))] == fault  # the hottest


@pytest.mark.browser
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} not installed")
def test_live_page_updates_in_the_browser(tmp_path: Path, feed) -> None:  # type: ignore[no-untyped-def]
    sync_api = pytest.importorskip("playwright.sync_api")
    setup, fault, recs, streams = feed
    results = tmp_path / "results"
    out = results / "live" / "day1"
    _ingest(setup, streams, out, recs, 3 * 3600.0)  # one forecast, no alert yet
    srv = AppServer(results=results, log=tmp_path / "server.log")
    try:
        with sync_api.sync_playwright() as pw:
            b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = b.new_page()
            page.goto(srv.url + "live")
            summary = page.locator(".citytwin-live-summary")
            summary.wait_for(timeout=90_000)
            page.wait_for_function("document.querySelector('.citytwin-live-summary')"
                                   ".innerText.includes('forecasts\\t1')", timeout=60_000)
            assert page.locator(".citytwin-live-alerts").count() == 0
            _ingest(setup, streams, out, recs, 12 * 3600.0)  # the twin resumes and goes on
            page.wait_for_function("document.querySelector('.citytwin-live-summary')"
                                   ".innerText.includes('forecasts\\t5')", timeout=60_000)
            alerts = page.locator(".citytwin-live-alerts")
            alerts.wait_for(timeout=30_000)
            assert f"overload of {fault}" in alerts.inner_text()
            assert page.locator(".citytwin-live-ranking").inner_text().count(fault) >= 1
            assert page.locator(".citytwin-live-map .js-plotly-plot").count() == 1
            b.close()
    finally:
        srv.stop()
