"""Small HTML building blocks (no Markdown: its KaTeX assets would need a CDN)."""

from __future__ import annotations

from html import escape
from typing import Any

import solara

__all__ = ["Heading", "Para", "KeyValueTable", "use_click_handler"]


@solara.component
def Heading(text: str, level: int = 3):
    solara.HTML(tag=f"h{level}", unsafe_innerHTML=escape(text), style="margin: 8px 0")


@solara.component
def Para(text: str, bold_prefix: str = "", classes: list[str] = []):  # noqa: B006
    html = (f"<b>{escape(bold_prefix)}</b>" if bold_prefix else "") + escape(text)
    solara.HTML(tag="p", unsafe_innerHTML=html, classes=classes, style="margin: 6px 0")


@solara.component
def KeyValueTable(values: dict[str, Any]):
    rows = "".join(
        f"<tr><td style='padding:2px 8px;color:#555'>{escape(str(k))}</td>"
        f"<td style='padding:2px 8px'>{escape(str(v))}</td></tr>" for k, v in values.items()
    )
    solara.HTML(tag="table", unsafe_innerHTML=rows, style="font-size: 13px")


def use_click_handler(el: Any, widget_cls: type[Any], on_click: Any) -> None:
    """Route the map clicks ``(x, y, metres per pixel)`` of the widget behind ``el`` (an instance
    of ``widget_cls``) to the latest ``on_click`` (a hook: call it in the same place each render)."""
    handler = solara.use_ref(on_click)
    handler.current = on_click

    def attach() -> None:
        w = solara.get_widget(el)
        assert isinstance(w, widget_cls)
        w.click_handler = lambda x, y, m: handler.current and handler.current(x, y, m)

    solara.use_effect(attach, [])
