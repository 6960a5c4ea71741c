"""Plane geometry shared by the site file, the simulator, the analysis and the editor.

Neutral ground: imports nothing of the server, so the analysis need not import the
simulator (nor the simulator the analysis) to ask whether a point is in a zone.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Point2", "point_in_polygon", "polygon_area", "polygon_centroid", "polygon_mask"]

#: ``(x, y)`` in metres, site coordinates.
Point2 = tuple[float, float]


def polygon_area(points: list[Point2]) -> float:
    """Signed area by the shoelace formula (positive when counter-clockwise)."""
    n = len(points)
    return 0.5 * sum(
        points[i][0] * points[(i + 1) % n][1] - points[(i + 1) % n][0] * points[i][1] for i in range(n)
    )


def polygon_centroid(points: list[Point2]) -> Point2:
    """Area centroid of a simple polygon."""
    a = polygon_area(points)
    n = len(points)
    cx = cy = 0.0
    for i in range(n):
        x0, y0 = points[i]
        x1, y1 = points[(i + 1) % n]
        cross = x0 * y1 - x1 * y0
        cx += (x0 + x1) * cross
        cy += (y0 + y1) * cross
    return cx / (6 * a), cy / (6 * a)


def point_in_polygon(x: float, y: float, polygon: list[Point2]) -> bool:
    """Even-odd ray test; points on an edge may fall either way."""
    inside = False
    n = len(polygon)
    for i in range(n):
        x0, y0 = polygon[i]
        x1, y1 = polygon[(i + 1) % n]
        if (y0 > y) != (y1 > y) and x < x0 + (y - y0) * (x1 - x0) / (y1 - y0):
            inside = not inside
    return inside


def polygon_mask(x: np.ndarray, y: np.ndarray, polygon: list[tuple[float, float]]) -> np.ndarray:
    """Vectorised even-odd point-in-polygon test (same rule as :func:`point_in_polygon`)."""
    inside = np.zeros(x.shape, dtype=bool)
    n = len(polygon)
    for i in range(n):
        x0, y0 = polygon[i]
        x1, y1 = polygon[(i + 1) % n]
        if y1 == y0:
            continue
        crosses = (y0 > y) != (y1 > y)
        xc = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (x < xc)
    return inside
