"""``citytwin app``: start the Solara app on a city (default ``geodata/helsinki.gpkg``).

Runs are private per workspace: a page opened without ``?workspace=NAME`` gets a fresh
random id (``w-`` + 12 hex digits) written into its address, so a reload or a bookmark finds
its runs again (``RESULTS/sessions/<id>/``) and nobody else lists them. Share the address to
share the runs; results folders directly under ``--results`` are shared with every page.
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
from pathlib import Path

from citytwin.errors import InputError

__all__ = ["register", "serve"]

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "app", help="start the Solara app (City, Scenarios, Compare pages)",
        description="Start the Solara app. Each browser page gets a private workspace (its id "
                    "is kept in the address as ?workspace=..., so a reload keeps its runs; share "
                    "the address to share them). Results folders directly under --results are "
                    "shared with everyone.")
    p.add_argument("--port", type=int, default=8765, help="port (0 = any free port); default 8765")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on; default 127.0.0.1")
    p.add_argument("--data", type=Path, default=Path("geodata"),
                   help="folder with city files the app may read (default: geodata)")
    p.add_argument("--results", type=Path, default=Path("results"),
                   help="folder the app writes runs to and reads results from (default: results)")
    p.add_argument("--city", default="helsinki.gpkg",
                   help="default city file inside --data (default: helsinki.gpkg)")
    p.add_argument("--scenarios", type=Path, default=None,
                   help="folder of shipped scenario TOML files (default: ./scenarios)")
    p.set_defaults(func=_run)


def serve(*, port: int, host: str, data: Path, results: Path, city: str = "helsinki.gpkg",
          scenarios: Path | None = None) -> int:
    """Validate the folders, export them to the environment and run the Solara server."""
    from citytwin.app.config import AppConfig

    if scenarios is None and Path("scenarios").is_dir():
        scenarios = Path("scenarios")
    results.mkdir(parents=True, exist_ok=True)
    config = AppConfig(data_dir=data, results_dir=results, city=city, scenarios_dir=scenarios)
    if not config.city_path.is_file():
        raise InputError(f"city file {config.city_path} not found (expected a file inside {data})")
    os.environ.update(config.to_env())
    # offline by design: no usage reporting from Solara's server
    os.environ.setdefault("SOLARA_TELEMETRY_MIXPANEL_ENABLE", "False")
    threading.Thread(target=_warm, args=(config.city_path,), daemon=True,
                     name="citytwin-warm").start()
    from solara.__main__ import cli as solara_cli

    argv = ["run", "citytwin.app.main", "--host", host, "--port", str(port),
            "--production", "--no-open", "--log-level", "warning"]
    log.info("starting citytwin app on http://%s:%s", host, port)
    try:
        solara_cli.main(args=argv, standalone_mode=False)
    except SystemExit as exc:  # click exits when the server stops
        return int(exc.code or 0)
    return 0


def _warm(path: Path) -> None:
    """Load the default city and its map arrays while the server starts (first map fast)."""
    try:
        from citytwin.app.data import city_layers_cached
        from citytwin.app.maps import LAYERS

        city_layers_cached(path, layers=LAYERS)  # the City and Scenarios pages' first map
    except Exception:  # the page shows the real error when it loads the city itself
        log.warning("could not preload %s", path, exc_info=True)


def _run(args: argparse.Namespace) -> int:
    return serve(port=args.port, host=args.host, data=args.data, results=args.results,
                 city=args.city, scenarios=args.scenarios)
