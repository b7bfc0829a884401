"""The citytwin web app (Solara). Start it with ``citytwin app``.

Submodules without Solara imports (usable from scripts and tests): :mod:`.config`,
:mod:`.session`, :mod:`.maps`, :mod:`.compare_view`, :mod:`.scenario_form`, :mod:`.data`.
"""
