"""Start ``citytwin app`` in a subprocess on a free port and drive it with Playwright."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class AppServer:
    """``citytwin app`` as a child process; ``url`` once it answers HTTP."""

    def __init__(self, *, results: Path, data: Path | None = None, log: Path,
                 timeout: float = 120.0, code: Path | None = None,
                 city: str | None = None) -> None:
        """``code``: a folder holding another ``citytwin`` package to serve (benchmarks
        compare an older app this way); default this checkout. ``city``: the default city
        file inside ``data``."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.data = Path(data) if data is not None else ROOT / "geodata"
        cmd = [sys.executable, "-m", "citytwin.cli", "app", "--port", str(self.port),
               "--host", "127.0.0.1", "--results", str(results)]
        if data is not None:
            cmd += ["--data", str(data)]
        if city is not None:
            cmd += ["--city", city]
        self.log_path = Path(log)
        self._log = open(log, "w")  # noqa: SIM115 - closed in stop()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if code is not None:
            env["PYTHONPATH"] = str(code)
            if data is None:
                cmd += ["--data", str(ROOT / "geodata")]
        self.proc = subprocess.Popen(cmd, cwd=code or ROOT, stdout=self._log,
                                     stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"citytwin app exited with {self.proc.returncode}: "
                                   f"{Path(log).read_text()[-2000:]}")
            try:
                urllib.request.urlopen(self.url, timeout=2).read(1)
                return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"citytwin app did not answer on {self.url} within {timeout} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
