"""The ``citytwin`` command. A thin shell: every subcommand calls public library functions.

Subcommands live in ``citytwin/_cli/<area>.py``; each such module defines
``register(subparsers) -> None`` which adds its parsers and sets ``func`` on them.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import pkgutil
import sys
import tempfile
import traceback
import uuid
from pathlib import Path

from citytwin import _cli
from citytwin.errors import CitytwinError

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="citytwin", description="Agent-based city digital twin.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(_cli.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"citytwin._cli.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        rc = args.func(args)
    except CitytwinError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("error: out of memory; lower traffic.demand_scale / traffic.sample or use a "
              "smaller city", file=sys.stderr)
        return 2
    except OSError as exc:  # a missing file, a full disk, no permission: the OS said it
        what = exc.strerror or str(exc)
        where = f": {exc.filename}" if exc.filename else ""
        hint = " (free some space and run again; nothing half-written is kept)" \
            if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT) else ""
        print(f"error: {what}{where}{hint}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: no traceback for the user, a short id to quote
        return _internal_error(exc)
    return int(rc or 0)


def error_log_path() -> Path:
    """Where unexpected errors are logged (``$CITYTWIN_ERROR_LOG`` or the temp folder)."""
    return Path(os.environ.get("CITYTWIN_ERROR_LOG")
                or Path(tempfile.gettempdir()) / "citytwin-errors.log")


def _internal_error(exc: BaseException) -> int:
    err_id = uuid.uuid4().hex[:8]
    path = error_log_path()
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"--- citytwin error {err_id}: {' '.join(sys.argv)}\n")
            fh.write("".join(traceback.format_exception(exc)))
        where = f"details in {path}"
    except OSError:
        where = "details could not be logged"
    print(f"error: internal error {err_id} ({type(exc).__name__}: {str(exc)[:200]}); "
          f"{where} - please quote {err_id} when reporting it", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
