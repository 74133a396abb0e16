"""The share-over-time plot of a persona as inline SVG, drawn on the server: no script, no CDN, prints anywhere."""

from collections.abc import Sequence
from datetime import date

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 14, 34
HEADROOM = 1.15  # the highest point sits below the top edge


def _percent(value: float) -> str:
    return f"{value * 100:.1f}%"


def share_plot(points: Sequence[tuple[date, float]], breach_days: Sequence[date], served_through: date) -> str:
    """One circle per model date (`class="point"`, `data-day`), a line through them, a dashed red marker on each
    day whose drift check breached (`class="drift-marker"`) and a grey band over days after `served_through`
    (fitted, but held back from the champion).

    points: (model date, share of people) in any order; at least one.
    """
    if not points:
        raise ValueError("share_plot needs at least one (model date, share) point")
    points = sorted(points)
    first, last = points[0][0], points[-1][0]
    span_days = max((last - first).days, 1)
    top_share = max(max(share for _, share in points), 0.01)
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    right_edge, bottom_edge = LEFT + plot_width, TOP + plot_height

    def x(day: date) -> float:
        return LEFT + plot_width * ((day - first).days / span_days if last != first else 0.5)

    def y(share: float) -> float:
        return TOP + plot_height * (1 - share / (top_share * HEADROOM))

    parts = [f'<svg class="share-plot" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
             'role="img" aria-label="share of people per model date">']
    if served_through < last:
        band_start = x(served_through) + plot_width / span_days / 2 if served_through >= first else LEFT
        parts.append(f'<rect class="held-band" x="{band_start:.1f}" y="{TOP}" width="{right_edge - band_start:.1f}" '
                     f'height="{plot_height}"><title>fitted after the champion\'s day {served_through}: '
                     'not served yet</title></rect>')
    for level in (0, top_share / 2, top_share):
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{right_edge}" y1="{y(level):.1f}" y2="{y(level):.1f}"/>'
                     f'<text class="tick" x="{LEFT - 6}" y="{y(level) + 4:.1f}" text-anchor="end">'
                     f'{_percent(level)}</text>')
    breached = sorted({day for day in breach_days if first <= day <= last})
    for day in sorted({first, last, *breached}):
        parts.append(f'<text class="tick" x="{x(day):.1f}" y="{HEIGHT - 12}" text-anchor="middle">{day:%m-%d}</text>')
    for day in breached:
        parts.append(f'<line class="drift-marker" data-day="{day}" x1="{x(day):.1f}" x2="{x(day):.1f}" y1="{TOP}" '
                     f'y2="{bottom_edge}"><title>{day}: drift check breached</title></line>')
    line = " ".join(f"{x(day):.1f},{y(share):.1f}" for day, share in points)
    parts.append(f'<polyline class="share-line" points="{line}"/>')
    for day, share in points:
        parts.append(f'<circle class="point" data-day="{day}" data-share="{share:.6f}" cx="{x(day):.1f}" '
                     f'cy="{y(share):.1f}" r="3.5"><title>{day}: {_percent(share)}</title></circle>')
    parts.append("</svg>")
    return "".join(parts)
