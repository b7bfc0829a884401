"""Run one app request in its own process: ``python -m citytwin.app.worker REQUEST.json OUT``.

The request (written by :class:`citytwin.app.session.Session`) holds a scenario as a plain
dict, the seed and the city file; the scenario is validated with the same
:func:`citytwin.scenario.scenario_from_dict` the CLI uses. Progress and errors go to stdout as
one JSON object per line, so the app can show them and cancel by killing the process.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from citytwin.errors import CitytwinError

__all__ = ["main", "run_request"]


def _emit(**msg: Any) -> None:
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


def run_request(request: dict[str, Any], out: Path) -> Path:
    """Validate and run one request; write the results directory ``out``."""
    from citytwin.model import run_scenario
    from citytwin.scenario import scenario_from_dict

    scenario = dict(request["scenario"])
    scenario["city"] = str(request["city"])
    spec = scenario_from_dict(scenario, source=f"app scenario {scenario.get('name', '?')!r}")
    last = [0.0]

    def progress(t: float, duration: float) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.2 or t >= duration:
            last[0] = now
            _emit(progress=min(1.0, t / duration if duration else 1.0),
                  message=f"simulated {t / 3600:.2f} of {duration / 3600:.2f} h")

    _emit(progress=0.0, message="loading city and building the model")
    run_scenario(spec, seed=int(request["seed"]), out=out, progress=progress)
    _emit(progress=1.0, message="written")
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        _emit(error="usage: python -m citytwin.app.worker REQUEST.json OUT_DIR")
        return 2
    try:
        request = json.loads(Path(args[0]).read_text())
        run_request(request, Path(args[1]))
    except CitytwinError as exc:
        _emit(error=str(exc))
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
