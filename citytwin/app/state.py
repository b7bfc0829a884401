"""Per-session app state, created by the layout (never at module level).

``AppState`` is provided through a Solara context from :func:`Layout`, which Solara mounts
once per browser page (virtual kernel): each page gets its own :class:`Session` (its runs),
its own draft of road closures and its own selections.

The city choice is a :class:`CityChoice`: whatever a client sends as the city (a value the
server never offered, a path, a link pointing out of the data folder, a file that does not
open) is refused there, the page keeps its city and shows the refusal at the top
(``citytwin-refused``), so no page renders a traceback for a hostile select.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from typing import Any, cast

import solara

from citytwin.app.config import AppConfig, check_city_choice, safe_join, safe_name
from citytwin.app.session import Session
from citytwin.errors import CitytwinError, InputError

__all__ = ["AppState", "AppContext", "CityChoice", "Layout", "use_app", "workspace_from_query",
           "new_workspace", "with_workspace"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AppState:
    config: AppConfig
    session: Session
    workspace: str  # kept in the page address as ?workspace=
    runs_version: solara.Reactive[int]  # bumped whenever a run changes
    city: solara.Reactive[str]  # city file name inside the data folder (a CityChoice)
    closed_edges: solara.Reactive[list[int]]  # road closures picked on the City page
    compare: solara.Reactive[list[str]]  # results chosen on the Compare page
    refused: solara.Reactive[str]  # the last refused choice, shown at the top ("" = none)


class CityChoice(solara.Reactive[str]):
    """The page's city file: setting it to anything but a listed city file of the data
    folder that opens is refused — the value stays, ``refused`` says why (and what is
    expected) and the server log gets one warning line, no traceback."""

    def __init__(self, store: solara.Reactive[str], *, config: AppConfig,
                 refused: solara.Reactive[str]) -> None:
        super().__init__(store)
        self._config = config
        self._refused = refused

    def set(self, value: str) -> None:
        from citytwin.app.data import load_city

        try:
            name = check_city_choice(self._config, value)
            load_city(safe_join(self._config.data_dir, name, what="city file"))
        except CitytwinError as exc:
            log.warning("app: refused city choice: %s", str(exc).encode("unicode_escape")
                        .decode("ascii")[:300])
            self._refused.set(str(exc))
            return
        except (OSError, ValueError) as exc:  # unreadable on this machine: a message, too
            log.warning("app: city file %r could not be opened: %s", value, exc)
            self._refused.set(f"city file {value!r} could not be opened ({type(exc).__name__})"
                              "; expected a readable city file in the app's data folder")
            return
        self._refused.set("")
        super().set(name)


AppContext = solara.create_context(cast("AppState | None", None))


def use_app() -> AppState:
    state = solara.use_context(AppContext)
    if state is None:  # a page rendered outside the layout (component tests)
        raise RuntimeError("citytwin app pages must be rendered inside citytwin.app.state.Layout")
    return state


def _current_kernel_context() -> Any:
    try:
        from solara.server import kernel_context

        return kernel_context.get_current_context() if kernel_context.has_current_context() else None
    except Exception:  # pragma: no cover - outside a server
        return None


def workspace_from_query(search: str | None) -> str | None:
    """The workspace named by ``?workspace=NAME`` in the page address (None when absent).

    A name that is not a plain folder name is refused by :func:`safe_name`.
    """
    from urllib.parse import parse_qs

    values = parse_qs((search or "").lstrip("?")).get("workspace", [])
    name = values[0].strip() if values else ""
    return safe_name(name, what="workspace") if name else None


def _pick_workspace(search: str | None) -> tuple[str, str | None]:
    """(workspace, why the address's one was refused or None): the address's workspace if it
    is a plain name, else a fresh private one — a refused name is a message, not a crash."""
    try:
        return workspace_from_query(search) or new_workspace(), None
    except InputError as exc:
        log.warning("app: %s", exc)
        return new_workspace(), str(exc)


def _query_workspace(search: str | None) -> str | None:
    """The address's workspace, None when absent or not allowed."""
    try:
        return workspace_from_query(search)
    except InputError:
        return None


def new_workspace() -> str:
    """A fresh private workspace id (``w-`` and 12 random hex digits, 48 bits)."""
    import secrets

    return "w-" + secrets.token_hex(6)


def with_workspace(path: str, search: str | None, workspace: str) -> str:
    """``path`` with ``?workspace=`` set in its query (other query keys kept)."""
    from urllib.parse import parse_qsl, urlencode

    query = [(k, v) for k, v in parse_qsl((search or "").lstrip("?")) if k != "workspace"]
    return f"{path}?{urlencode([*query, ('workspace', workspace)])}"


@solara.component
def StateProvider(children: list[Any] = [], config: AppConfig | None = None):  # noqa: B006
    """Creates this page's AppState and provides it to ``children``."""
    cfg = solara.use_memo(lambda: config or AppConfig.from_env(), [])
    router = solara.use_router()
    # runs are private to a workspace: a page opened without ?workspace= gets a fresh id,
    # written into the address so a reload (or a bookmark) finds the same runs again
    workspace, refused = solara.use_memo(lambda: _pick_workspace(router.search), [])
    session = solara.use_memo(lambda: Session(cfg, session_id=workspace), [])

    def keep_in_url() -> None:
        if router.set_path is not None and _query_workspace(router.search) != workspace:
            router.push(with_workspace(router.path, router.search, workspace))

    solara.use_effect(keep_in_url, [router.path, router.search])
    refused_choice = solara.use_reactive("")
    city_store = solara.use_reactive(cfg.city)
    city = solara.use_memo(lambda: CityChoice(city_store, config=cfg, refused=refused_choice),
                           [])
    state = AppState(
        config=cfg, session=session, workspace=workspace, runs_version=solara.use_reactive(0),
        city=city, closed_edges=solara.use_reactive([]), compare=solara.use_reactive([]),
        refused=refused_choice,
    )
    ctx = _current_kernel_context()

    def subscribe():
        counter = itertools.count(1)

        def bump() -> None:
            n = next(counter)
            if ctx is not None:
                with ctx:
                    state.runs_version.value = n
            else:
                state.runs_version.value = n

        unsubscribe = session.subscribe(bump)

        def cleanup() -> None:
            unsubscribe()
            session.close()

        return cleanup

    solara.use_effect(subscribe, [])
    AppContext.provide(state)
    notice = ([solara.Warning(f"{refused}; this page opened a new private workspace instead.",
                              classes=["citytwin-workspace-refused"])] if refused else [])
    if refused_choice.value:
        notice.append(solara.Error(f"Refused: {refused_choice.value}. The page keeps the city "
                                   f"file {city.value!r}.", classes=["citytwin-refused"]))
    with solara.Column(children=[*notice, *children], style={"width": "100%"}):
        pass


@solara.component
def NavTabs():
    """Page tabs labelled with the routes' labels (City, Scenarios, Compare, Experiments)."""
    route_current, routes = solara.use_route()
    router = solara.use_router()
    app = use_app()
    index = routes.index(route_current) if route_current in routes else 0
    paths = [solara.resolve_path(r) for r in routes]  # (needs the render context)

    def go(i: int) -> None:  # the workspace travels with every page change
        if 0 <= i < len(routes) and i != index and router.set_path is not None:
            router.push(with_workspace(paths[i], None, app.workspace))

    with solara.lab.Tabs(value=index, on_value=go, align="center"):
        for r in routes:
            solara.lab.Tab(r.label or r.path, classes=["citytwin-tab"])


@solara.component
def WorkspaceBadge():
    app = use_app()
    solara.HTML(tag="span", unsafe_innerHTML=f"workspace {app.workspace}",
                classes=["citytwin-workspace"],
                attributes={"title": "Your runs are private to this workspace; the id is in "
                                     "the page address, so a reload or a bookmark finds them "
                                     "again."},
                style="color: #e3f2fd; margin-left: auto; font-size: 12px")


@solara.component
def Layout(children: list[Any] = []):  # noqa: B006
    with StateProvider():
        with solara.Column(gap="0px", style={"width": "100%"}):
            with solara.Row(style={"background": "#1976d2", "padding": "10px 16px",
                                   "align-items": "center"}):
                solara.HTML(tag="span", unsafe_innerHTML="citytwin",
                            style="font-size: 20px; color: white; font-weight: 500")
                solara.HTML(tag="span", unsafe_innerHTML="smart-city digital twin",
                            style="color: #e3f2fd")
                WorkspaceBadge()
            NavTabs()
            with solara.Column(children=children, style={"width": "100%", "padding": "12px"}):
                pass
