"""Issue 13: hostile uploads, selects and scenario path fields through the real app in
headless Chromium (probes in tests/hostile/app_corpus.py, also scored by
``benchmarks/bad_input.py --app``). Each ends in a message on the page naming what was refused
and what is expected; no traceback in the page or the server log, no secret shown, nothing
created or changed outside the app's folders, no run started."""

from __future__ import annotations

import pytest

from tests.hostile.app_corpus import APP_PROBES, app_session, chromium_available, run_probe

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not chromium_available(), reason="chromium not installed"),
]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("playwright.sync_api")
    with app_session(tmp_path_factory.mktemp("app-probes")) as e:
        yield e


def test_probe_set() -> None:
    names = [p.name for p in APP_PROBES]
    assert len(names) == len(set(names)) and len(names) >= 30
    kinds = {n.split(":")[0].split()[0] for n in names}
    assert kinds == {"upload", "city", "scenario", "path"}


@pytest.mark.parametrize("probe", APP_PROBES, ids=[p.name for p in APP_PROBES])
def test_app_probe(env, probe) -> None:
    outcome, msg = run_probe(env, probe)
    assert outcome == "clear", f"{probe.name}: {outcome}: {msg}"


def test_refused_uploads_leave_no_temp_and_the_server_never_parsed_them(env) -> None:
    """After every probe: no hidden upload folder left in the data folder, and the uploads
    were opened in the limited worker; no traceback in the whole server log."""
    leftovers = [p.name for p in env.data.iterdir() if p.name.startswith(".upload-")]
    assert leftovers == []
    log = env.server.log_path.read_text(errors="replace")
    assert "Traceback" not in log
