"""Uploaded city files: size-limited, name-checked and validated like any other city input.

An upload is written under its own name into a hidden temporary folder inside the data
folder, opened with :meth:`citytwin.city.City.from_path` in a worker process under CPU, memory
and wall-clock limits (so a broken file raises the same ``GeodataError`` the CLI shows, and a
file that would hold the CPU is stopped), and only then moved to its final name. The worker
keeps the built city in the city cache under the same name and bytes, so the server reads
that cache and never parses the uploaded file itself. Nothing is written outside the data
folder and an existing file is never overwritten.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

from citytwin.app.config import CITY_SUFFIXES, AppConfig, safe_join, safe_name
from citytwin.errors import GeodataError, InputError

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
    folder = Path(config.data_dir).resolve() / f".upload-{uuid.uuid4().hex}"
    tmp = folder / name  # the final name: the worker's cached build is found under it
    try:
        folder.mkdir()
        tmp.write_bytes(data)
        _check_in_worker(tmp, name)  # under CPU/memory/wall limits, in a child process
        tmp.replace(target)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    log.info("stored uploaded city %s (%d bytes)", target, len(data))
    return target


def _check_in_worker(path: Path, name: str) -> None:
    """Open ``path`` with ``City.from_path`` in a limited worker; its error as ours."""
    from citytwin.app.worker import limits

    wall = limits(check=True)["wall_s"]
    try:  # the worker stops itself at its wall limit; this is the backstop
        proc = subprocess.run([sys.executable, "-m", "citytwin.app.worker", "--check-city",
                               str(path)], capture_output=True, text=True,
                              timeout=wall + 30 if wall else None)
    except subprocess.TimeoutExpired:
        raise InputError(f"uploaded file {name!r}: opening it took longer than the app's "
                         f"wall-clock limit of {wall} s", source="upload") from None
    msgs = []
    for line in proc.stdout.splitlines():
        try:
            msgs.append(json.loads(line))
        except ValueError:
            continue
    if proc.returncode == 0 and any(m.get("ok") for m in msgs):
        return
    err = next((m["error"] for m in msgs if "error" in m), None)
    # the worker's message names the temp file; the user knows the file by its name
    text = (err or f"could not be opened (worker exit {proc.returncode})").replace(
        str(path), name).replace(str(path.parent), "the data folder")
    raise GeodataError(text, source=f"upload {name!r}")
