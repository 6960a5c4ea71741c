"""Orientation and scale: Y up, front along +Z, origin at the footprint centre on the floor.

The output convention is glTF's: metres, +Y up, the model's front facing +Z. The origin is the
centre of the footprint (x/z bounding box) at floor height (the scanned floor plane when one
was found, else the lowest point), which is what the scene builder places at ``Machine.centre``.
"""

from __future__ import annotations

import numpy as np

from models3d.errors import ScanError

__all__ = [
    "AXES",
    "DIMENSIONS",
    "UNITS_M",
    "level_and_face",
    "parse_axis",
    "parse_dimension",
    "place_on_floor",
    "plausible_size_warning",
]

AXES = {
    "+x": (1.0, 0.0, 0.0),
    "-x": (-1.0, 0.0, 0.0),
    "+y": (0.0, 1.0, 0.0),
    "-y": (0.0, -1.0, 0.0),
    "+z": (0.0, 0.0, 1.0),
    "-z": (0.0, 0.0, -1.0),
}
# a measured dimension names an extent of the oriented model
DIMENSIONS = {"width": 0, "height": 1, "depth": 2}
UNITS_M = {"m": 1.0, "cm": 0.01, "mm": 0.001, "in": 0.0254, "ft": 0.3048}
PLAUSIBLE_M = (0.05, 30.0)  # largest extent of a shop-floor machine, metres


def parse_axis(text: str) -> np.ndarray:
    """``"+z"`` -> unit vector; also accepts ``x``/``Z`` without a sign (meaning +)."""
    key = text.strip().lower()
    if key in ("x", "y", "z"):
        key = "+" + key
    if key not in AXES:
        raise ScanError(f"unknown axis {text!r}: use one of {', '.join(AXES)}")
    return np.array(AXES[key])


def parse_dimension(text: str) -> tuple[str, float]:
    """``"height=1.8"`` -> ``("height", 1.8)``; metres, > 0."""
    name, sep, value = text.partition("=")
    name = name.strip().lower()
    if not sep or name not in DIMENSIONS:
        raise ScanError(f"bad --dimension {text!r}: use AXIS=METRES with AXIS one of {', '.join(DIMENSIONS)}")
    try:
        metres = float(value)
    except ValueError:
        raise ScanError(f"bad --dimension {text!r}: {value!r} is not a number of metres") from None
    if not np.isfinite(metres) or metres <= 0:
        raise ScanError(f"bad --dimension {text!r}: the length must be > 0 m")
    return name, metres


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotation (3x3) turning unit vector ``a`` onto unit vector ``b``."""
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    v = np.cross(a, b)
    c = float(a @ b)
    if c < -1 + 1e-9:  # opposite: turn 180 degrees about any axis perpendicular to a
        axis = np.cross(a, [1.0, 0.0, 0.0])
        if np.linalg.norm(axis) < 1e-6:
            axis = np.cross(a, [0.0, 1.0, 0.0])
        axis /= np.linalg.norm(axis)
        return 2 * np.outer(axis, axis) - np.eye(3)
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1 + c)


def level_and_face(up: np.ndarray, front: np.ndarray) -> np.ndarray:
    """4x4 rotation taking the scan's ``up`` to +Y and its ``front`` (levelled) to +Z.

    Raises
    ------
    ScanError
        When the front is (nearly) parallel to up, so it names no horizontal direction.
    """
    level = _rotation_between(np.asarray(up, float), np.array([0.0, 1.0, 0.0]))
    f = level @ np.asarray(front, float)
    f[1] = 0.0
    if np.linalg.norm(f) < 0.2:
        raise ScanError("--front is (nearly) the up direction: choose a horizontal axis of the scan")
    yaw = np.arctan2(f[0], f[2])  # angle of the front from +Z towards +X
    c, s = np.cos(-yaw), np.sin(-yaw)
    turn = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    out = np.eye(4)
    out[:3, :3] = turn @ level
    return out


def place_on_floor(bounds: np.ndarray, keep_height: bool = False) -> np.ndarray:
    """4x4 translation putting the footprint centre at the origin and the lowest point at y = 0.

    With ``keep_height`` (the floor plane already is y = 0) only x and z move.
    """
    lo, hi = np.asarray(bounds, float)
    out = np.eye(4)
    out[:3, 3] = [-(lo[0] + hi[0]) / 2, 0.0 if keep_height else -lo[1], -(lo[2] + hi[2]) / 2]
    return out


def plausible_size_warning(extents_m: np.ndarray) -> str | None:
    """A warning when the largest extent is implausible for a machine measured in metres."""
    largest = float(np.max(extents_m))
    lo, hi = PLAUSIBLE_M
    if largest < lo or largest > hi:
        return (
            f"largest extent is {largest:.3g} m, implausible for a machine: the scan is probably not in "
            "metres; pass --unit or --dimension (e.g. height=1.8)"
        )
    return None
