"""Where the app may read and write: its data folder (city files) and results folder (runs).

Every path that comes from the browser (a city file name, a results folder, an upload) goes
through :func:`safe_join`, :func:`guard_path` or :func:`check_city_choice`, so nothing the
browser sends reaches outside those two folders. The workspaces under ``RESULTS/sessions/``
are private: no scenario path field may name a file in them (:attr:`AppConfig.denied`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from citytwin.errors import InputError

__all__ = [
    "AppConfig",
    "CITY_SUFFIXES",
    "ENV_CITY",
    "ENV_DATA",
    "ENV_RESULTS",
    "ENV_SCENARIOS",
    "MAX_UPLOAD_BYTES",
    "ENV_MAX_UPLOAD_MB",
    "NOT_PATH_FIELDS",
    "PATH_FIELDS",
    "SESSIONS_DIR",
    "check_city_choice",
    "guard_path",
    "guard_scenario_paths",
    "safe_join",
    "safe_name",
]

ENV_DATA = "CITYTWIN_APP_DATA"
ENV_RESULTS = "CITYTWIN_APP_RESULTS"
ENV_CITY = "CITYTWIN_APP_CITY"
ENV_SCENARIOS = "CITYTWIN_APP_SCENARIOS"
ENV_MAX_UPLOAD_MB = "CITYTWIN_APP_MAX_UPLOAD_MB"
#: The results folder's private part: one folder per workspace (``sessions/<workspace>/``).
SESSIONS_DIR = "sessions"

#: City file types the app accepts (the same formats ``City.from_path`` reads).
CITY_SUFFIXES = (".gpkg", ".geojson", ".json", ".parquet", ".geoparquet", ".shp", ".zip", ".pbf")
#: Largest city file the app accepts as an upload.
MAX_UPLOAD_BYTES = 200 * 1024 * 1024

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}$")


def safe_name(name: str, *, what: str = "name") -> str:
    """Return ``name`` if it is a plain file/folder name (no separators, no ``..``), else raise."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or ".." in name:
        raise InputError(
            f"{what} {name!r} is not allowed: expected letters, digits, '.', '_' or '-' "
            "(no path separators, no '..', at most 121 characters)"
        )
    return name


def safe_join(root: Path, *parts: str, what: str = "path") -> Path:
    """Join ``parts`` under ``root`` and refuse anything that would leave ``root``.

    Each part must be a plain name (see :func:`safe_name`); the resolved result (symlinks
    followed) must still lie inside the resolved ``root``.
    """
    root_resolved = Path(root).resolve()
    path = root_resolved
    for part in parts:
        path = path / safe_name(part, what=what)
    resolved = path.resolve()
    if resolved != root_resolved and root_resolved not in resolved.parents:
        raise InputError(f"{what} {'/'.join(parts)!r} is not allowed: it resolves outside "
                         f"{root_resolved} (expected a file inside that folder; links "
                         "pointing out of it are refused)")
    return resolved


#: Scenario keys (dotted) that name a file: everything the app lets a browser edit that the
#: engines open. ``energy.weather`` is a path unless it is the word ``typical``. Every
#: free-text field of the scenario schema is either here or in ``NOT_PATH_FIELDS``
#: (tests/hostile/test_app_paths.py checks the schema against both).
PATH_FIELDS = ("city", "extends", "emergency.incident_log", "energy.weather",
               "traffic.od_factors")
#: Free-text scenario fields that are names or codes, never opened as files.
NOT_PATH_FIELDS = ("name", "description", "energy.timezone", "build.crs",
                   "interventions.name", "interventions.street", "interventions.asset",
                   "emergency.extra_stations.name", "energy.failures.asset")
_NOT_PATHS = {"energy.weather": {"typical"}}


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def guard_path(value: object, roots: tuple[Path, ...], *, what: str = "path",
               denied: tuple[Path, ...] = ()) -> Path:
    """The resolved ``value`` (symlinks followed) if it lies inside one of ``roots`` and not
    inside one of ``denied`` (unless a root lies deeper inside that denied folder: the
    deepest folder containing the path decides).

    A relative value is taken relative to the first root. The refusal is the same whether or
    not the file exists, so the message tells nothing about the rest of the machine.
    """
    resolved_roots = tuple(Path(r).resolve() for r in roots)
    resolved_denied = tuple(Path(r).resolve() for r in denied)
    refusal = InputError(
        f"{what} {str(value)[:200]!r} is not allowed: expected a file inside the app's data "
        "folder or a shared results folder (a workspace's private runs, other folders of "
        "the machine and links pointing out of these folders are refused)")
    if not isinstance(value, str | os.PathLike) or not str(value) or "\x00" in str(value):
        raise refusal
    try:
        p = Path(value)
        resolved = (p if p.is_absolute() else resolved_roots[0] / p).resolve()
    except (OSError, ValueError, RuntimeError):  # a symlink loop, an unusable name
        raise refusal from None
    holders = [(len(r.parts), True) for r in resolved_roots if _within(resolved, r)]
    holders += [(len(r.parts), False) for r in resolved_denied if _within(resolved, r)]
    if not holders or not max(holders)[1]:
        raise refusal
    return resolved


def guard_scenario_paths(scenario: dict, roots: tuple[Path, ...], *,
                         denied: tuple[Path, ...] = ()) -> dict:
    """A copy of a scenario dict from the app with every path field checked and resolved by
    :func:`guard_path` (all problems at once, naming the key)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in scenario.items()}
    problems: list[str] = []
    for key in PATH_FIELDS:
        head, _, leaf = key.rpartition(".")
        holder = out.get(head) if head else out
        if not isinstance(holder, dict) or holder.get(leaf) is None:
            continue
        values = holder[leaf] if isinstance(holder[leaf], list) else [holder[leaf]]
        if any(v in _NOT_PATHS.get(key, set()) for v in values):
            continue
        try:
            checked = [str(guard_path(v, roots, what=key, denied=denied)) for v in values]
        except InputError as exc:
            problems.extend(exc.problems)
            continue
        holder[leaf] = checked if isinstance(holder[leaf], list) else checked[0]
    if problems:
        raise InputError(problems, source="app scenario")
    return out


@dataclass(frozen=True)
class AppConfig:
    """The app's folders: city files are read from ``data_dir``; runs go to ``results_dir``."""

    data_dir: Path
    results_dir: Path
    city: str = "helsinki.gpkg"
    scenarios_dir: Path | None = None
    max_upload_bytes: int = MAX_UPLOAD_BYTES

    def __post_init__(self) -> None:
        problems = []
        if not Path(self.data_dir).is_dir():
            problems.append(f"data folder {self.data_dir} does not exist")
        try:
            safe_name(self.city, what="city file")
        except InputError as exc:
            problems.append(str(exc))
        if self.max_upload_bytes <= 0:
            problems.append(f"max_upload_bytes must be > 0, got {self.max_upload_bytes}")
        if problems:
            raise InputError(problems, source="citytwin app")

    @property
    def city_path(self) -> Path:
        """The default city file, inside the data folder."""
        return safe_join(self.data_dir, self.city, what="city file")

    @property
    def roots(self) -> tuple[Path, Path]:
        """The folders anything from the browser may name: data, then results."""
        return (Path(self.data_dir).resolve(), Path(self.results_dir).resolve())

    @property
    def denied(self) -> tuple[Path]:
        """Inside :attr:`roots` but private: the workspaces (``RESULTS/sessions``)."""
        return (Path(self.results_dir).resolve() / SESSIONS_DIR,)

    def city_files(self) -> list[str]:
        """City files in the data folder (plain names, sorted); a link that points out of
        the folder is not listed."""
        root = Path(self.data_dir).resolve()
        out = []
        for p in Path(self.data_dir).iterdir():
            if not (p.name.lower().endswith(CITY_SUFFIXES) and _NAME_RE.match(p.name)):
                continue
            try:
                if p.is_file() and _within(p.resolve(), root):
                    out.append(p.name)
            except (OSError, RuntimeError):  # a symlink loop
                continue
        return sorted(out)

    def to_env(self) -> dict[str, str]:
        """Environment variables that :meth:`from_env` reads back (for the server process)."""
        env = {
            ENV_DATA: str(Path(self.data_dir).resolve()),
            ENV_RESULTS: str(Path(self.results_dir).resolve()),
            ENV_CITY: self.city,
        }
        if self.scenarios_dir is not None:
            env[ENV_SCENARIOS] = str(Path(self.scenarios_dir).resolve())
        return env

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> AppConfig:
        """Read the folders from the environment (defaults: ``geodata/``, ``results/``)."""
        env = os.environ if environ is None else environ
        scen = env.get(ENV_SCENARIOS)
        try:
            upload_mb = float(env.get(ENV_MAX_UPLOAD_MB, MAX_UPLOAD_BYTES / 2**20))
        except ValueError:
            raise InputError(f"{ENV_MAX_UPLOAD_MB}={env[ENV_MAX_UPLOAD_MB]!r}: expected a number "
                             "of megabytes", source="citytwin app") from None
        return cls(
            data_dir=Path(env.get(ENV_DATA, "geodata")).resolve(),
            results_dir=Path(env.get(ENV_RESULTS, "results")).resolve(),
            city=env.get(ENV_CITY, "helsinki.gpkg"),
            scenarios_dir=Path(scen).resolve() if scen else None,
            max_upload_bytes=int(upload_mb * 2**20),
        )


def check_city_choice(config: AppConfig, value: object) -> str:
    """``value`` if it is one of the city files :meth:`AppConfig.city_files` lists, else an
    ``InputError`` naming the value and the files one may choose (the same refusal for a
    name that does not exist, a path, and a link pointing out of the data folder)."""
    listed = config.city_files()
    if isinstance(value, str) and value in listed:
        safe_join(config.data_dir, value, what="city file")  # (listed: resolves inside)
        return value
    shown = ", ".join(listed[:20]) + (f" and {len(listed) - 20} more" if len(listed) > 20 else "")
    raise InputError(f"city file {str(value)[:200]!r} is not allowed: expected one of the city "
                     f"files in the app's data folder ({shown or 'none'})")
