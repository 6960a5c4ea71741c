"""The editor's live check of a site document: the validator's problems, and warnings.

*Problems* come from the site validator (:func:`twin_server.site.parse_site`) and block a
save. Each carries the key path it is about (``machines[2].zone``), so the page shows the
message next to that shape. *Warnings* are things the validator accepts but that are
probably a mistake on a floor: zones of two machines overlapping (a worker standing there
counts at the first machine only), machine bodies overlapping, a receiver or machine outside
the floor. A save with warnings must be confirmed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from twin_server.geometry import polygon_mask
from twin_server.site import Site, SiteError, parse_site

__all__ = ["Finding", "check_document", "footprint_corners", "overlap_area_m2"]

# ``machines[2].zone: message`` (a validator's own path inside the message counts too).
_PATH = re.compile(r"^((?:[A-Za-z_]+(?:\[\d+\])*)(?:\.[A-Za-z_]+(?:\[\d+\])*)*): (.*)$", re.S)
MIN_OVERLAP_M2 = 0.01  # touching zones (a shared edge) are fine
_GRID_M = 0.02
_MAX_CELLS = 250_000


@dataclass(frozen=True)
class Finding:
    """A problem or warning, with the key path of the shape it is about ('' for the site)."""

    path: str
    message: str
    code: str = "invalid"

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message, "code": self.code}


def _split(problem: str) -> Finding:
    m = _PATH.match(problem)
    if m is None:
        return Finding("", problem)
    path, msg = m.group(1), m.group(2)
    inner = _PATH.match(msg)  # "machines: ..." wrapping a validator message that names its own path
    if inner is not None and inner.group(1).startswith(path.split("[")[0]):
        path, msg = inner.group(1), inner.group(2)
    return Finding(path, msg)


def footprint_corners(
    centre: tuple[float, float], footprint: tuple[float, float], rotation_deg: float
) -> list[tuple[float, float]]:
    """The four floor corners of a machine's body (counter-clockwise)."""
    w, d = footprint[0] / 2, footprint[1] / 2
    c, s = math.cos(math.radians(rotation_deg)), math.sin(math.radians(rotation_deg))
    return [
        (centre[0] + x * c - y * s, centre[1] + x * s + y * c)
        for x, y in ((-w, -d), (w, -d), (w, d), (-w, d))
    ]


def overlap_area_m2(
    a: list[tuple[float, float]], b: list[tuple[float, float]], cell_m: float = _GRID_M
) -> float:
    """Area shared by two simple polygons, counted on a ``cell_m`` grid (cell centres)."""
    ax, ay = np.asarray(a, dtype=float).T
    bx, by = np.asarray(b, dtype=float).T
    lo_x, hi_x = max(ax.min(), bx.min()), min(ax.max(), bx.max())
    lo_y, hi_y = max(ay.min(), by.min()), min(ay.max(), by.max())
    if not (
        np.isfinite(ax).all() and np.isfinite(ay).all() and np.isfinite(bx).all() and np.isfinite(by).all()
    ):
        return 0.0
    if hi_x - lo_x <= cell_m / 2 or hi_y - lo_y <= cell_m / 2:
        return 0.0
    cell_m = max(cell_m, math.sqrt((hi_x - lo_x) * (hi_y - lo_y) / _MAX_CELLS))  # bounded work
    xs = np.arange(lo_x + cell_m / 2, hi_x, cell_m)
    ys = np.arange(lo_y + cell_m / 2, hi_y, cell_m)
    gx, gy = np.meshgrid(xs, ys)
    both = polygon_mask(gx, gy, a) & polygon_mask(gx, gy, b)
    return float(both.sum()) * cell_m * cell_m


def _warnings(site: Site) -> list[Finding]:
    out: list[Finding] = []
    ms = site.machines
    for i, a in enumerate(ms):
        for j in range(i + 1, len(ms)):
            b = ms[j]
            area = overlap_area_m2(a.zone, b.zone)
            if area >= MIN_OVERLAP_M2:
                msg = (
                    f"zone overlaps the zone of {a.id} by {area:.2f} m²: a worker standing there "
                    f"counts at {a.id} only"
                )
                out.append(Finding(f"machines[{j}].zone", msg, "zones_overlap"))
    bodies = [
        footprint_corners(m.centre, m.footprint, m.rotation_deg if math.isfinite(m.rotation_deg) else 0.0)
        for m in ms
    ]
    for i in range(len(ms)):
        for j in range(i + 1, len(ms)):
            area = overlap_area_m2(bodies[i], bodies[j])
            if area >= MIN_OVERLAP_M2:
                out.append(
                    Finding(
                        f"machines[{j}]",
                        f"body overlaps machine {ms[i].id} by {area:.2f} m²",
                        "bodies_overlap",
                    )
                )
    if site.floor is not None:
        fw, fd = site.floor

        def outside(x: float, y: float) -> bool:
            return not (-0.01 <= x <= fw + 0.01 and -0.01 <= y <= fd + 0.01)

        for i, m in enumerate(ms):
            if any(outside(x, y) for x, y in bodies[i]):
                out.append(
                    Finding(
                        f"machines[{i}]",
                        f"machine {m.id} reaches outside the floor ({fw:g} × {fd:g} m)",
                        "outside_floor",
                    )
                )
        for i, r in enumerate(site.receivers):
            if outside(r.position[0], r.position[1]):
                out.append(
                    Finding(
                        f"receivers[{i}]",
                        f"receiver {r.id} is outside the floor ({fw:g} × {fd:g} m)",
                        "outside_floor",
                    )
                )
    return out


def check_document(doc: Any, site_id: str | None = None) -> tuple[list[Finding], list[Finding], Site | None]:
    """Validate an edited site document.

    Parameters
    ----------
    doc : dict
        The plain document (as the YAML file would read).
    site_id : str, optional
        The id the document must keep (the running server's site).

    Returns
    -------
    problems, warnings : list of Finding
        Problems block a save; warnings must be confirmed.
    site : Site or None
        The validated site (None when there are problems).
    """
    problems: list[Finding] = []
    if site_id is not None and isinstance(doc, dict) and doc.get("site") != site_id:
        problems.append(
            Finding(
                "site",
                f"this server serves site {site_id!r}; the id cannot change "
                f"while it runs (got {doc.get('site')!r})",
                "site_id",
            )
        )
    try:
        site = parse_site(doc, "site")
    except SiteError as exc:
        return problems + [_split(p) for p in exc.problems], [], None
    if problems:
        return problems, [], None
    return [], _warnings(site), site
