"""The report as one self-contained HTML file: inline CSS and SVG charts, nothing remote.

Charts are SVG drawn here in Python; every label is escaped with `markupsafe.escape`
before it enters the markup (docs/hazards.md E-04: AS names and country codes come from RDAP and
GeoIP data). The page has no scripts, fonts, images or links to anything outside itself,
and the same report dict always gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

COLOURS = {
    "candidates": "#7a7a7a",
    "confirmed": "#b3261e",
    "removed": "#1b6e3a",
    "notices": "#1f4e9c",
}
BAR_WIDTH = 420
ROW_HEIGHT = 22
LABEL_WIDTH = 220


def _num(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _svg(title: str, width: int, height: int, body: list[Markup]) -> Markup:
    head = Markup(
        "<svg role='img' width='{w}' height='{h}' viewBox='0 0 {w} {h}'><title>{t}</title>"
    )
    return head.format(w=width, h=height, t=title) + Markup("").join(body) + Markup("</svg>")


_EMPTY = Markup("<p class='empty'>No data in this window.</p>")
_BAR = Markup(
    "<text x='{lx}' y='{ty}' text-anchor='end'>{label}</text>"
    "<rect x='{bx}' y='{ry}' width='{length}' height='{bh}' fill='#1f4e9c'/>"
    "<text x='{vx}' y='{ty}'>{value} {unit}</text>"
)


def hbar_chart(title: str, rows: Sequence[tuple[str, float]], unit: str) -> Markup:
    """Horizontal bars, one per (label, value), scaled to the largest value."""
    if not rows:
        return _EMPTY
    top = max(value for _, value in rows) or 1.0
    bars = []
    for i, (label, value) in enumerate(rows):
        y, length = 5 + i * ROW_HEIGHT, BAR_WIDTH * value / top
        bars.append(
            _BAR.format(
                lx=LABEL_WIDTH - 6,
                ty=y + 15,
                label=label[:40],
                bx=LABEL_WIDTH,
                ry=y + 3,
                length=f"{length:.1f}",
                bh=ROW_HEIGHT - 6,
                vx=f"{LABEL_WIDTH + length + 6:.1f}",
                value=_num(value),
                unit=unit,
            )
        )
    return _svg(title, LABEL_WIDTH + BAR_WIDTH + 90, ROW_HEIGHT * len(rows) + 10, bars)


def _polyline(values: Sequence[int], top: int, x0: int, step: float, height: int) -> str:
    return " ".join(
        f"{x0 + i * step:.1f},{10 + height - height * v / top:.1f}" for i, v in enumerate(values)
    )


_AXES = Markup(
    "<line x1='{x0}' y1='{base}' x2='{right}' y2='{base}' stroke='#444'/>"
    "<text x='{lx}' y='16' text-anchor='end'>{top}</text>"
    "<text x='{lx}' y='{zero}' text-anchor='end'>0</text>"
    "<text x='{x0}' y='{under}'>{first}</text>"
    "<text x='{right}' y='{under}' text-anchor='end'>{last}</text>"
)
_LINE = Markup(
    "<polyline fill='none' stroke='{colour}' stroke-width='2' points='{points}'/>"
    "<rect x='{kx}' y='{ky}' width='12' height='12' fill='{colour}'/>"
    "<text x='{tx}' y='{ty}'>{name}</text>"
)


def line_chart(title: str, labels: Sequence[str], series: dict[str, list[int]]) -> Markup:
    """One line per series over the trend buckets, with a legend and first/last labels."""
    if not labels:
        return _EMPTY
    width, height, x0 = 700, 200, 40
    top = max([1] + [v for values in series.values() for v in values])
    step = (width - x0 - 20) / max(len(labels) - 1, 1)
    body = [
        _AXES.format(
            x0=x0,
            base=height + 10,
            right=width - 20,
            lx=x0 - 6,
            top=top,
            zero=height + 14,
            under=height + 28,
            first=labels[0],
            last=labels[-1],
        )
    ]
    for k, (name, values) in enumerate(series.items()):
        body.append(
            _LINE.format(
                colour=COLOURS.get(name, "#000"),
                points=_polyline(values, top, x0, step, height),
                kx=x0 + k * 130,
                ky=height + 40,
                tx=x0 + k * 130 + 18,
                ty=height + 51,
                name=name,
            )
        )
    return _svg(title, width, height + 60, body)


def provider_label(row: dict[str, Any]) -> str:
    asn = f"AS{row['asn']}" if row["asn"] is not None else "unknown AS"
    return f"{asn} {row['as_org']}" if row["as_org"] else asn


def charts(report: dict[str, Any]) -> dict[str, Markup]:
    points = report["trend"]["points"]
    names = ("candidates", "confirmed", "removed", "notices")
    league = [(provider_label(r), r["hours_to_removal"]["median"]) for r in report["league"][:15]]
    countries = [(r["country"] or "unknown", r["confirmed"]) for r in report["by_country"][:15]]
    return {
        "trend": line_chart(
            f"Per {report['trend']['bucket']}",
            [p["start"] for p in points],
            {n: [p[n] for p in points] for n in names},
        ),
        "league": hbar_chart("Median hours from first seen to removal", league, "h"),
        "countries": hbar_chart("Confirmed URLs by country", countries, ""),
    }


def render_html(report: dict[str, Any]) -> str:
    env = Environment(
        loader=PackageLoader("crawler", "templates"), autoescape=True, undefined=StrictUndefined
    )
    template = env.get_template("report.html.j2")
    return template.render(report=report, charts=charts(report), label=provider_label)


def render_transparency_html(report: dict[str, Any]) -> str:
    """The yearly transparency report (crawler.reporting.transparency) as one self-contained page."""
    outcome = report["outcome"]
    charts = {
        "outcome": hbar_chart(
            "URLs by outcome",
            [(k.replace("_", " "), outcome[k]) for k in ("removed", "withdrawn", "still_up")],
            "",
        ),
        "routes": hbar_chart(
            "URLs by route", [(r["route"], r["urls"]) for r in report["by_route"]], ""
        ),
        "categories": hbar_chart(
            "URLs by category",
            [(r["category"] or "unspecified", r["urls"]) for r in report["by_category"][:15]],
            "",
        ),
        "providers": hbar_chart(
            "URLs by hosting provider",
            [(provider_label(r), r["urls"]) for r in report["by_provider"][:15]],
            "",
        ),
        "countries": hbar_chart(
            "URLs by hosting country",
            [(r["country"] or "unknown", r["urls"]) for r in report["by_country"][:15]],
            "",
        ),
    }
    env = Environment(
        loader=PackageLoader("crawler", "templates"), autoescape=True, undefined=StrictUndefined
    )
    template = env.get_template("transparency.html.j2")
    return template.render(report=report, charts=charts, label=provider_label)
