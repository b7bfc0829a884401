"""Small HTML building blocks (no Markdown: its KaTeX assets would need a CDN)."""

from __future__ import annotations

from html import escape
from typing import Any

import solara

__all__ = ["Heading", "Para", "KeyValueTable"]


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
