"""Results of one run: tidy tables, a manifest, an atomic Parquet directory.

A results directory holds one Parquet file per table (see ``TABLES``) and ``manifest.json``
(scenario, scenario hash, seed, versions, wall time, creation time). It is written into a
temporary directory beside the target and renamed into place, so a reader (or a resumed
batch) never sees half a run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from citytwin.errors import InputError

__all__ = ["Results", "TABLES", "empty_table", "versions", "atomic_write_dir", "unit_of"]

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"

#: Contract columns and dtypes of every table (docs/contracts.md, "Results").
TABLES: dict[str, dict[str, str]] = {
    "kpis": {"scenario": "string", "seed": "int64", "domain": "string", "kpi": "string",
             "value": "float64", "unit": "string"},
    "timeseries": {"scenario": "string", "seed": "int64", "domain": "string",
                   "series": "string", "time_s": "float64", "value": "float64"},
    "trips": {"trip_id": "int64", "vehicle_id": "int64", "origin_node": "int64",
              "dest_node": "int64", "depart_s": "float64", "arrive_s": "float64",
              "route_length_m": "float64", "freeflow_s": "float64", "delay_s": "float64",
              "vehicle_type": "string", "status": "string"},
    "links": {"edge_id": "int64", "time_s": "float64", "volume": "float64",
              "speed_kph": "float64", "queue": "float64"},
    "assets": {"asset_id": "string", "kind": "string", "time_s": "float64",
               "loading_pct": "float64", "vm_pu": "float64"},
    "incidents": {"incident_id": "int64", "time_s": "float64", "type": "string",
                  "priority": "int64", "building_id": "int64", "unit_id": "string",
                  "turnout_s": "float64", "travel_s": "float64", "response_s": "float64",
                  "queued_s": "float64"},
}

_UNIT_SUFFIXES = (
    ("_pct", "%"), ("_kwh", "kWh"), ("_mwh", "MWh"), ("_kw", "kW"), ("_mw", "MW"),
    ("_kvar", "kvar"), ("_kva", "kVA"), ("_veh_h", "veh·h"), ("_veh_km", "veh·km"),
    ("_km", "km"), ("_m", "m"), ("_min", "min"), ("_s", "s"), ("_h", "h"),
    ("_kph", "km/h"), ("_pu", "p.u."), ("_c", "°C"), ("_count", "1"), ("_n", "1"),
    ("_share", "1"), ("_ratio", "1"), ("_eur", "EUR"), ("_t", "t"), ("_kg", "kg"),
)


def unit_of(kpi: str) -> str:
    """The unit encoded in a KPI name's suffix (``mean_delay_s`` -> ``s``), "" if none."""
    name = kpi.lower()
    for suffix, unit in _UNIT_SUFFIXES:
        if name.endswith(suffix):
            return unit
    return ""


def empty_table(name: str) -> pd.DataFrame:
    """A zero-row table with the contract columns and dtypes."""
    cols = TABLES[name]
    return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in cols.items()})


def _conform(name: str, df: pd.DataFrame) -> pd.DataFrame:
    """Order contract columns first with their dtypes; keep extra columns after them."""
    cols = TABLES.get(name)
    if cols is None:
        return df.reset_index(drop=True)
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise InputError(f"table {name!r} lacks contract columns {missing} "
                         f"(expected {list(cols)})")
    extra = [c for c in df.columns if c not in cols]
    out = df[list(cols) + extra].reset_index(drop=True).copy()
    for c, t in cols.items():
        if t == "string":
            out[c] = out[c].astype("string")
        elif t == "int64":
            out[c] = pd.to_numeric(out[c]).astype("int64")
        else:
            out[c] = pd.to_numeric(out[c]).astype("float64")
    return out


def versions() -> dict[str, str]:
    """Versions of Python and of the packages that shape results."""
    out = {"python": platform.python_version()}
    for pkg in ("citytwin", "numpy", "pandas", "scipy", "networkx", "mesa", "pandapower",
                "pyarrow", "pydantic"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:  # pragma: no cover - optional packages
            continue
    return out


def atomic_write_dir(target: Path, write: Any) -> Path:
    """Call ``write(tmpdir)`` then rename the filled temp dir to ``target`` (replacing it)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        write(tmp)
        for f in tmp.iterdir():  # flush file contents before the rename makes them visible
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        if target.exists():
            trash = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(target, trash)
            os.rename(tmp, target)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


@dataclass
class Results:
    """The tables and manifest of one run (scenario × seed)."""

    tables: dict[str, pd.DataFrame]
    manifest: dict[str, Any]
    path: Path | None = field(default=None)

    @classmethod
    def build(
        cls,
        *,
        scenario: str,
        seed: int,
        kpis: Mapping[str, Mapping[str, float]],
        tables: Mapping[str, pd.DataFrame],
        timeseries: Mapping[str, pd.DataFrame] | None = None,
        manifest: Mapping[str, Any],
    ) -> Results:
        """Assemble tables from per-domain KPI dicts and engine tables."""
        rows = [
            (scenario, int(seed), domain, str(k), float(v), unit_of(str(k)))
            for domain, values in kpis.items()
            for k, v in values.items()
        ]
        kpi_df = pd.DataFrame(rows, columns=list(TABLES["kpis"]))
        ts_parts = []
        for domain, ts in (timeseries or {}).items():
            if ts is None or ts.empty:
                continue
            ts = ts.copy()
            ts.insert(0, "domain", domain)
            ts.insert(0, "seed", int(seed))
            ts.insert(0, "scenario", scenario)
            ts_parts.append(ts)
        ts_df = pd.concat(ts_parts, ignore_index=True) if ts_parts else empty_table("timeseries")
        out: dict[str, pd.DataFrame] = {}
        for name in TABLES:
            if name == "kpis":
                df = kpi_df
            elif name == "timeseries":
                df = ts_df
            else:
                df = tables.get(name)
            out[name] = empty_table(name) if df is None or len(df.columns) == 0 else df
        for name, df in tables.items():
            if name not in out:
                out[name] = df
        return cls({n: _conform(n, df) for n, df in out.items()}, dict(manifest))

    # ---- convenience accessors
    @property
    def kpis(self) -> pd.DataFrame:
        return self.tables["kpis"]

    def kpi(self, name: str) -> float:
        """The value of one KPI (``InputError`` naming the known KPIs if unknown)."""
        hit = self.kpis.loc[self.kpis["kpi"] == name, "value"]
        if hit.empty:
            raise InputError(f"unknown KPI {name!r} (known: {sorted(self.kpis['kpi'])})")
        return float(hit.iloc[0])

    def __getitem__(self, name: str) -> pd.DataFrame:
        return self.tables[name]

    # ---- identity
    def digest(self) -> str:
        """SHA-256 over every table's columns, dtypes and values (not the manifest)."""
        h = hashlib.sha256()
        for name in sorted(self.tables):
            df = self.tables[name]
            h.update(name.encode())
            h.update(json.dumps([[c, str(t)] for c, t in df.dtypes.items()]).encode())
            if len(df):
                h.update(np.ascontiguousarray(
                    pd.util.hash_pandas_object(df, index=False).to_numpy()).tobytes())
        return h.hexdigest()

    # ---- disk
    def write(self, out: str | Path) -> Path:
        """Write the results directory atomically; returns its path."""
        out = Path(out)

        def _write(tmp: Path) -> None:
            for name, df in self.tables.items():
                df.to_parquet(tmp / f"{name}.parquet", index=False)
            manifest = dict(self.manifest)
            manifest["digest"] = self.digest()
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True,
                                                   default=str))

        atomic_write_dir(out, _write)
        self.path = out
        log.info("wrote results %s", out)
        return out

    @classmethod
    def read(cls, path: str | Path) -> Results:
        """Read a results directory written by :meth:`write`."""
        path = Path(path)
        man = path / MANIFEST
        if not man.is_file():
            raise InputError(f"{path}: not a results directory (no {MANIFEST})")
        try:
            manifest = json.loads(man.read_text())
        except json.JSONDecodeError as exc:
            raise InputError(f"{man}: invalid JSON ({exc})") from None
        tables = {p.stem: pd.read_parquet(p) for p in sorted(path.glob("*.parquet"))}
        missing = [t for t in TABLES if t not in tables]
        if missing:
            raise InputError(f"{path}: missing tables {missing}")
        return cls(tables, manifest, path)

    @staticmethod
    def is_complete(path: str | Path) -> bool:
        """True when ``path`` is a finished results directory."""
        return (Path(path) / MANIFEST).is_file()
