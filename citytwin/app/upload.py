"""Uploaded city files: size-limited, name-checked and validated like any other city input.

An upload is written to a hidden temporary file inside the data folder, opened with
:meth:`citytwin.city.City.from_path` (so a broken file raises the same ``GeodataError`` the
CLI shows), and only then renamed to its final name. Nothing is written outside the data folder
and an existing file is never overwritten.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

from citytwin.app.config import CITY_SUFFIXES, AppConfig, safe_join, safe_name
from citytwin.errors import InputError

__all__ = ["save_upload"]

log = logging.getLogger(__name__)


def save_upload(config: AppConfig, name: str, data: bytes) -> Path:
    """Validate and store an uploaded city file ``name`` in the data folder; return its path."""
    problems = []
    try:
        safe_name(name, what="uploaded file name")
    except InputError as exc:
        problems.extend(exc.problems)
    if not name.lower().endswith(CITY_SUFFIXES) or name.lower().endswith(".zip"):
        problems.append(f"uploaded file {name!r}: expected one of "
                        f"{', '.join(s for s in CITY_SUFFIXES if s != '.zip')}")
    if len(data) > config.max_upload_bytes:
        problems.append(f"uploaded file {name!r} is {len(data):,} bytes; the limit is "
                        f"{config.max_upload_bytes:,} bytes")
    if len(data) == 0:
        problems.append(f"uploaded file {name!r} is empty")
    if problems:
        raise InputError(problems, source="upload")
    target = safe_join(config.data_dir, name, what="uploaded file name")
    if target.exists():
        raise InputError(f"a city file named {name!r} already exists in the data folder",
                         source="upload")
    suffix = "".join(Path(name).suffixes[-2:]) if name.endswith(".osm.pbf") else Path(name).suffix
    tmp = Path(config.data_dir).resolve() / f".upload-{uuid.uuid4().hex}{suffix}"
    try:
        tmp.write_bytes(data)
        from citytwin.city import City

        City.from_path(tmp, use_cache=False)  # GeodataError (a ValueError) names every problem
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("stored uploaded city %s (%d bytes)", target, len(data))
    return target
