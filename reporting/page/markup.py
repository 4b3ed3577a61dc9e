"""What every section of the report is made of: escaped text, numbers as the page shows and
stores them, tables, and the page's plots (each figure placed by id, its spec kept for the
drawing script)."""
from __future__ import annotations

import html
import math
from typing import Any, Iterable


def esc(value: Any) -> str:
    """Text (or anything printed as text) made safe for HTML, quotes included."""
    return html.escape(str(value), quote=True)


def rounded(value: float | None, digits: int = 4) -> float | None:
    """A number as the page stores it (`digits` significant ones), None when not finite."""
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.{digits}g}")


def fmt(value: float | None, digits: int = 4) -> str:
    """A number as the page shows it (`digits` decimals), "n/a" when missing or not finite."""
    return f"{value:.{digits}f}" if value is not None and math.isfinite(value) else "n/a"


def span_ranges(listed: str | None) -> str:
    """Span numbers as ranges: "1,2,3,5" (as the steps record them) -> "1-3, 5"."""
    numbers = sorted({int(n) for n in (listed or "").split(",") if n.strip()})
    ranges: list[list[int]] = []
    for number in numbers:
        if ranges and number == ranges[-1][1] + 1:
            ranges[-1][1] = number
        else:
            ranges.append([number, number])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)


def html_table(headers: Iterable[str], rows: Iterable[Iterable[str]],
               numeric: Iterable[int] = (), css_class: str = "") -> str:
    """A table of already escaped cells; columns in `numeric` are right-aligned."""
    numeric = set(numeric)
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(
        f'<td class="num">{cell}</td>' if i in numeric else f"<td>{cell}</td>"
        for i, cell in enumerate(row)) + "</tr>" for row in rows)
    opening = f'<table class="{css_class}">' if css_class else "<table>"
    return f"{opening}<tr>{head}</tr>{body}</table>"


class Page:
    """The page being written: HTML fragments, and the spec of every plot they place."""

    def __init__(self) -> None:
        self.specs: dict[str, dict[str, Any]] = {}

    def plot(self, spec: dict[str, Any], caption: str = "") -> str:
        plot_id = f"plot-{len(self.specs) + 1}"
        self.specs[plot_id] = spec
        note = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
        return f'<figure class="plot" id="{plot_id}">{note}</figure>'
