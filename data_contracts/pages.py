"""The house style of crisk's HTML pages: one stylesheet, tables, pictures as data URIs.

Every page an auditor or analyst opens (decision page, model card, indicators, validation report)
is a single self-contained file: styles inline, pictures embedded as ``data:image/png`` URIs, no
script and no reference to the network, so it renders the same offline, attached to an e-mail
or archived with a case file. Pictures are drawn with matplotlib (imported when one is drawn).
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "STYLE",
    "Markup",
    "definition_list",
    "escape",
    "figure",
    "figure_uri",
    "format_number",
    "format_share",
    "new_figure",
    "note",
    "page",
    "section",
    "table",
]

STYLE = """
:root{--ink:#1d2733;--muted:#5b6776;--line:#d5dbe3;--head:#eef2f6;--accent:#1f5fa8}
*{box-sizing:border-box}
body{font-family:"DejaVu Sans","Liberation Sans",Arial,sans-serif;color:var(--ink);margin:0;
 background:#fafbfc;line-height:1.45;font-size:15px}
main{max-width:1120px;margin:0 auto;padding:1.5em 2em 3em;background:#fff;min-height:100vh;
 box-shadow:0 0 0 1px var(--line)}
h1{font-size:1.6em;margin:0.2em 0 0.1em}
h2{font-size:1.25em;margin:1.8em 0 0.5em;padding-bottom:0.2em;border-bottom:2px solid var(--line)}
h3{font-size:1.05em;margin:1.2em 0 0.4em}
p.subtitle{color:var(--muted);margin:0 0 1em}
table{border-collapse:collapse;margin:0.4em 0 0.8em;font-size:0.92em}
th,td{border:1px solid var(--line);padding:3px 9px;vertical-align:top;overflow-wrap:anywhere}
th{background:var(--head);text-align:left;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:0.4em 0 0.8em}
dt{color:var(--muted)}dd{margin:0}
.note{background:#fff8e6;border-left:4px solid #e0a800;padding:0.5em 0.9em;margin:0.6em 0}
.ok{background:#ecf7ee;border-left:4px solid #2e8540;padding:0.5em 0.9em;margin:0.6em 0}
figure{margin:0.6em 0 1em;display:inline-block;vertical-align:top}
figure img{max-width:100%;border:1px solid var(--line)}
figcaption{color:var(--muted);font-size:0.88em;max-width:560px}
.badge{display:inline-block;padding:1px 9px;border-radius:10px;font-weight:600;color:#fff}
.badge.green{background:#2e8540}.badge.yellow{background:#c99700}.badge.red{background:#c0392b}
.badge.blue{background:#1f5fa8}.badge.grey{background:#7b8794}
nav.toc a{margin-right:1em;color:var(--accent)}
code,pre{font-family:"DejaVu Sans Mono",monospace;font-size:0.9em}
pre{background:var(--head);padding:0.6em;overflow-x:auto}
.muted{color:var(--muted)}
"""


class Markup(str):
    """Text that is already HTML (a badge, a link): placed in a table as it is."""


def escape(value: Any) -> str:
    """Text of ``value`` safe to place in HTML (None as an en dash)."""
    if value is None:
        return "–"
    return html.escape(str(value))


def format_number(value: Any, digits: int = 3) -> str:
    """A number for a person: thousands separated, floats to ``digits`` significant places."""
    if value is None or isinstance(value, bool):
        return "–" if value is None else ("yes" if value else "no")
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return "–"
        if value.is_integer() and abs(value) >= 1000:
            return f"{int(value):,}"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}g}"
    return str(value)


def format_share(value: float | None) -> str:
    """A probability or rate as a percentage a person reads at once (4.1%, 12%, <0.1%)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    percent = 100.0 * float(value)
    if percent == 0:
        return "0%"
    if percent < 0.1:
        return "<0.1%"
    if percent < 10:
        return f"{percent:.1f}%"
    if percent > 99.9 and percent < 100:
        return ">99.9%"
    return f"{percent:.0f}%"


def _cell(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"<td>{value if isinstance(value, Markup) else escape(value)}</td>"
    return f'<td class="num">{escape(format_number(value))}</td>'


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], caption: str | None = None) -> str:
    """An HTML table; numbers are right-aligned and formatted, ``Markup`` cells kept as HTML."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    top = f"<caption>{escape(caption)}</caption>" if caption else ""
    return f"<table>{top}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def definition_list(items: Iterable[tuple[str, Any]]) -> str:
    """Term / value pairs (values escaped unless ``Markup``)."""
    parts = [
        f"<dt>{escape(term)}</dt><dd>{value if isinstance(value, Markup) else escape(value)}</dd>"
        for term, value in items
    ]
    return f"<dl>{''.join(parts)}</dl>"


def note(text: str, kind: str = "note") -> str:
    """A highlighted remark (``kind`` note: a caveat; ok: a reassurance)."""
    return f'<div class="{kind}">{escape(text)}</div>'


def section(title: str, body: str, anchor: str | None = None) -> str:
    ident = f' id="{escape(anchor)}"' if anchor else ""
    return f"<section{ident}><h2>{escape(title)}</h2>{body}</section>"


def new_figure(width: float = 6.0, height: float = 3.6) -> tuple[Any, Any]:
    """A matplotlib figure and axis drawn off-screen (Agg), in the pages' palette."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(width, height))
    axis.spines[["top", "right"]].set_visible(False)
    axis.grid(True, color="#e3e7ec", linewidth=0.8)
    axis.set_axisbelow(True)
    return figure, axis


def figure_uri(fig: Any, dpi: int = 96) -> str:
    """The figure as a PNG data URI (and closed: pages draw many)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def figure(fig: Any, alt: str, caption: str | None = None) -> str:
    """An embedded picture with its alternative text and caption."""
    text = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img alt="{escape(alt)}" src="{figure_uri(fig)}">{text}</figure>'


def page(title: str, body: str, subtitle: str | None = None) -> str:
    """A whole self-contained HTML document."""
    sub = f'<p class="subtitle">{escape(subtitle)}</p>' if subtitle else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><main><h1>{escape(title)}</h1>{sub}{body}</main></body></html>"
    )
