"""A small bar chart drawn on the server as inline SVG: no JavaScript, no CDN, and
readable on a phone (it scales to its container's width). Each bar has a tooltip
title, and the figure has a text summary for screen readers."""
from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from support.selectors import HourBar

WIDTH, HEIGHT = 480, 170
TOP, BOTTOM, LEFT = 14, 132, 28  # plot area, in SVG units
SLOT = (WIDTH - LEFT - 4) / 24


def signups_chart(hours: list[HourBar]) -> SafeString:
    """Signups per hour over the last 24 hours, the partial ones (not fully set up)
    stacked in red on the healthy ones."""
    peak = max([bar.total for bar in hours] + [1])
    scale = (BOTTOM - TOP) / peak
    total = sum(bar.total for bar in hours)
    partial = sum(bar.partial for bar in hours)
    summary = _("Signups per hour over the last 24 hours: %(total)d in all, %(partial)d still partial.") % {
        "total": total, "partial": partial}
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="chart-title chart-desc" '
        f'xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMidYMid meet">',
        f'<title id="chart-title">{escape(_("Partial signups per hour"))}</title>',
        f'<desc id="chart-desc">{escape(summary)}</desc>',
        f'<line x1="{LEFT}" y1="{BOTTOM}" x2="{WIDTH - 2}" y2="{BOTTOM}" class="axis"/>',
        f'<text x="{LEFT - 4}" y="{TOP + 4}" class="tick" text-anchor="end">{peak}</text>',
        f'<text x="{LEFT - 4}" y="{BOTTOM}" class="tick" text-anchor="end">0</text>',
    ]
    for n, bar in enumerate(hours):
        x = LEFT + 2 + n * SLOT
        width = SLOT * 0.75
        healthy = (bar.total - bar.partial) * scale
        broken = bar.partial * scale
        label = _("%(hour)s: %(total)d signups, %(partial)d partial") % {
            "hour": bar.start.strftime("%H:00"), "total": bar.total, "partial": bar.partial}
        parts.append(f'<g><title>{escape(label)}</title>')
        if healthy:
            parts.append(f'<rect x="{x:.1f}" y="{BOTTOM - healthy - broken:.1f}" width="{width:.1f}" '
                         f'height="{healthy:.1f}" class="bar-ok"/>')
        if broken:
            parts.append(f'<rect x="{x:.1f}" y="{BOTTOM - broken:.1f}" width="{width:.1f}" '
                         f'height="{broken:.1f}" class="bar-partial"/>')
        if not bar.total:
            parts.append(f'<rect x="{x:.1f}" y="{BOTTOM - 1}" width="{width:.1f}" height="1" class="bar-none"/>')
        parts.append("</g>")
        if n % 6 == 0 or n == 23:
            anchor = "end" if n == 23 else "middle"
            parts.append(f'<text x="{x + width if n == 23 else x + width / 2:.1f}" y="{BOTTOM + 16}" class="tick" '
                         f'text-anchor="{anchor}">{bar.start.strftime("%H:00")}</text>')
    legend_partial, legend_ok = escape(_("partial")), escape(_("set up or waiting for a click"))
    parts.append(f'<rect x="{LEFT}" y="{HEIGHT - 14}" width="10" height="10" class="bar-partial"/>'
                 f'<text x="{LEFT + 14}" y="{HEIGHT - 5}" class="tick">{legend_partial}</text>'
                 f'<rect x="{LEFT + 80}" y="{HEIGHT - 14}" width="10" height="10" class="bar-ok"/>'
                 f'<text x="{LEFT + 94}" y="{HEIGHT - 5}" class="tick">{legend_ok}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every interpolated string above is escaped; the rest are numbers
