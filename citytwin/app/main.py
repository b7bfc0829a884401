"""The citytwin Solara app: ``solara run citytwin.app.main`` (or ``citytwin app``).

Pages: City (map, layers, inspect), Scenarios (edit, validate, run, cancel), Compare (KPIs
with CIs, overlaid series, maps side by side, downloads), Experiments (outcome vs lever).
All per-user state lives in :mod:`citytwin.app.state`, created per browser page.

Privacy: runs belong to a workspace. A page opened without ``?workspace=NAME`` gets a fresh
random one (``w-`` + 12 hex digits), put into the page address, so a reload or a bookmark
finds its runs again and no other page lists them; sharing the address shares the runs.
"""

from __future__ import annotations

import solara

from citytwin.app.pages import city, compare, experiments, scenarios
from citytwin.app.pages import live as live_page
from citytwin.app.plotview import register_assets
from citytwin.app.state import Layout

register_assets()  # plotly.min.js as a cached static asset (see citytwin.app.plotview)

__all__ = ["routes", "Layout"]

routes = [
    solara.Route(path="/", component=city.Page, label="City", layout=Layout),
    solara.Route(path="scenarios", component=scenarios.Page, label="Scenarios"),
    solara.Route(path="compare", component=compare.Page, label="Compare"),
    solara.Route(path="experiments", component=experiments.Page, label="Experiments"),
    solara.Route(path="live", component=live_page.Page, label="Live"),
]
