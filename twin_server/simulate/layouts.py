"""Random shop floors: machines in rows, in U-shaped cells or scattered, with receivers anywhere.

``draw_layout(rng)`` returns a :class:`Layout`: a site mapping (valid input for
:func:`twin_server.site.parse_site`) and, for U-shaped cells, the waypoints from each machine's
zone out to the main aisle (``via``, passed on to :func:`twin_server.simulate.simulate`).
Every range is written up in ``docs/simulator.md`` ("The scenario family").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from twin_contract import vocabulary as vocab
from twin_server.site import Site, parse_site

__all__ = ["LAYOUT_KINDS", "RECEIVER_MOUNTS", "Layout", "draw_layout", "place_receivers"]

LAYOUT_KINDS = ("rows", "u_cells", "scattered")
RECEIVER_MOUNTS = ("machine", "wall", "pillar", "ceiling")
_SENSORS = [
    {"id": "light", "kind": "light", "adc": "mcp3008", "adc_channel": 0},
    {"id": "pressure", "kind": "pressure", "adc": "mcp3008", "adc_channel": 1},
    {"id": "sw-tool", "kind": "switch", "channel": "tool_change", "gpio": 17},
    {"id": "sw-program", "kind": "switch", "channel": "program_input", "gpio": 27},
    {"id": "sw-material", "kind": "switch", "channel": "material_setting", "gpio": 22},
]


@dataclass
class Layout:
    """A drawn shop floor: the site mapping, routes out of U-cells, and what was drawn."""

    site_dict: dict[str, Any]
    via: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)

    def site(self) -> Site:
        """The validated :class:`Site`."""
        return parse_site(self.site_dict, "drawn site")


@dataclass
class _Spot:
    """One machine before it becomes a site entry: zone centre, facing, sizes."""

    cx: float
    cy: float
    ux: float  # unit vector from the machine towards its zone
    uy: float
    zone_w: float  # across the facing direction
    zone_d: float  # along it
    gap_m: float  # between the zone's far edge and the machine's front
    foot_w: float
    foot_d: float

    def zone(self) -> list[list[float]]:
        vx, vy = -self.uy, self.ux
        pts = []
        for a, b in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
            x = self.cx + a * self.ux * self.zone_d / 2 + b * vx * self.zone_w / 2
            y = self.cy + a * self.uy * self.zone_d / 2 + b * vy * self.zone_w / 2
            pts.append([round(x, 3), round(y, 3)])
        return pts

    def machine_xy(self) -> tuple[float, float]:
        back = self.zone_d / 2 + self.gap_m + self.foot_d / 2
        return self.cx - self.ux * back, self.cy - self.uy * back

    def rotation_deg(self) -> float:
        # 0 deg: the zone lies at -y of the machine (the synthetic sites' first row).
        return round(math.degrees(math.atan2(self.ux, -self.uy)) % 360.0, 1)

    def radius(self) -> float:
        """Half-diagonal of the machine + zone block, from its middle."""
        length = self.zone_d + self.gap_m + self.foot_d
        width = max(self.zone_w, self.foot_w)
        return 0.5 * math.hypot(length, width)

    def middle(self) -> tuple[float, float]:
        mx, my = self.machine_xy()
        return (mx + self.cx) / 2, (my + self.cy) / 2


def _sizes(rng: np.random.Generator) -> dict[str, float]:
    """Zone and machine sizes of one shop (machines of one shop are alike)."""
    return {
        "zone_w": float(rng.uniform(1.5, 3.0)),
        "zone_d": float(rng.uniform(1.5, 3.0)),
        "gap_m": float(rng.uniform(0.0, 0.6)),
        "foot_w": float(rng.uniform(1.5, 3.2)),
        "foot_d": float(rng.uniform(1.2, 2.2)),
    }


def _jitter(rng: np.random.Generator, size: dict[str, float]) -> dict[str, float]:
    """Per-machine sizes: the shop's, +-10 %, zones kept within 1.5 .. 3 m."""
    out = {k: v * float(rng.uniform(0.9, 1.1)) for k, v in size.items()}
    out["zone_w"] = float(np.clip(out["zone_w"], 1.5, 3.0))
    out["zone_d"] = float(np.clip(out["zone_d"], 1.5, 3.0))
    return out


def _rows(rng: np.random.Generator, n: int) -> tuple[list[_Spot], dict, dict]:
    """One row along an aisle, or two rows facing each other across it."""
    size = _sizes(rng)
    two = n >= 4 and rng.random() < 0.75
    n_top = math.ceil(n / 2) if two else n
    half_aisle = float(rng.uniform(1.0, 2.5))
    spots = []
    for i in range(n):
        s = _jitter(rng, size)
        top = i < n_top
        col = i if top else i - n_top
        pitch = max(s["zone_w"], s["foot_w"]) + float(rng.uniform(0.4, 2.5))
        x = 2.0 + col * pitch + float(rng.uniform(-0.2, 0.2))
        sign = 1.0 if top else -1.0
        cy = sign * (half_aisle + s["zone_d"] / 2)
        spots.append(_Spot(x, cy, 0.0, -sign, s["zone_w"], s["zone_d"], s["gap_m"], s["foot_w"], s["foot_d"]))
    # Columns of one row may have drawn different pitches: re-space each row without overlap.
    for row in (spots[:n_top], spots[n_top:]):
        x = 2.0
        for sp in row:
            w = max(sp.zone_w, sp.foot_w)
            sp.cx = x + w / 2
            x += w + float(rng.uniform(0.4, 2.5))
    return spots, {}, {"rows": 2 if two else 1, "aisle_m": round(2 * half_aisle, 2)}


def _u_cells(rng: np.random.Generator, n: int) -> tuple[list[_Spot], dict, dict]:
    """U-shaped cells of 3 .. 8 machines facing inwards, side by side, open to a front aisle."""
    size = _sizes(rng)
    sizes: list[int] = []
    left = n
    while left > 0:
        k = int(rng.integers(3, 9))
        if left - k in (1, 2):
            k = left if left <= 8 else left - 3
        k = min(k, left)
        sizes.append(k)
        left -= k
    spots: list[_Spot] = []
    via: dict[int, list[tuple[float, float]]] = {}
    x0 = 1.0
    corridor_y = 0.0
    zd, zw = size["zone_d"], size["zone_w"]
    block = max(zw, size["foot_w"]) + 0.5  # room per machine along a wall
    depth = zd + size["gap_m"] + size["foot_d"]  # machine + zone, from a wall inwards
    for k in sizes:
        if k < 3:  # a leftover pair: a short row on the aisle's far side
            n_back, n_side = k, (0, 0)
        else:
            n_back = max(1, k - 2 * int(rng.integers(1, (k - 1) // 2 + 1)))
            rest = k - n_back
            n_side = (rest // 2 + rest % 2, rest // 2)
        inner_w = max(2 * zd + 3.0, n_back * block + 2 * zd + 0.6)
        inner_d = max(n_side) * block + zd + 1.5 if max(n_side) else zd + 2.5
        x_left = x0 + depth - zd  # inner edge of the left wall's zones starts here
        y_front = corridor_y + 1.5
        y_back = y_front + inner_d
        mouth = (x_left + inner_w / 2, corridor_y)
        first = len(spots)
        for j in range(n_side[0]):
            s = _jitter(rng, size)
            y = y_front + 1.0 + block * (j + 0.5)
            spots.append(_Spot(x_left + s["zone_d"] / 2, y, 1.0, 0.0, s["zone_w"], s["zone_d"], s["gap_m"],
                               s["foot_w"], s["foot_d"]))
        for j in range(n_back):
            s = _jitter(rng, size)
            x = x_left + zd + 0.3 + block * (j + 0.5) + (inner_w - 2 * zd - 0.6 - n_back * block) / 2
            spots.append(_Spot(x, y_back - s["zone_d"] / 2, 0.0, -1.0, s["zone_w"], s["zone_d"], s["gap_m"],
                               s["foot_w"], s["foot_d"]))
        for j in range(n_side[1]):
            s = _jitter(rng, size)
            y = y_front + 1.0 + block * (j + 0.5)
            spots.append(_Spot(x_left + inner_w - s["zone_d"] / 2, y, -1.0, 0.0, s["zone_w"], s["zone_d"],
                               s["gap_m"], s["foot_w"], s["foot_d"]))
        for i in range(first, len(spots)):
            via[i] = [(round(mouth[0], 3), round(y_front, 3)), (round(mouth[0], 3), round(mouth[1], 3))]
        x0 = x_left + inner_w + depth - zd + float(rng.uniform(1.0, 3.0))
    return spots, via, {"cells": sizes}


def _scattered(rng: np.random.Generator, n: int) -> tuple[list[_Spot], dict, dict]:
    """Machines at random places and headings, at least a 1 m walkway apart."""
    size = _sizes(rng)
    area = n * float(rng.uniform(30.0, 70.0))
    aspect = float(rng.uniform(1.0, 2.5))
    width = math.sqrt(area * aspect)
    depth = area / width
    spots: list[_Spot] = []
    tries = 0
    while len(spots) < n:
        tries += 1
        if tries % 400 == 0:  # crowded: give the shop more floor
            width *= 1.1
            depth *= 1.1
        s = _jitter(rng, size)
        free_angle = rng.random() < 0.3
        ang = float(rng.uniform(0, 2 * math.pi)) if free_angle else float(rng.integers(4)) * math.pi / 2
        sp = _Spot(float(rng.uniform(0, width)), float(rng.uniform(0, depth)), math.cos(ang), math.sin(ang),
                   s["zone_w"], s["zone_d"], s["gap_m"], s["foot_w"], s["foot_d"])
        mx, my = sp.middle()
        # The aisle point in front of the zone must be free too: keep 2.5 m in front clear.
        ok = all(_apart(sp, o, mx, my) for o in spots)
        if ok:
            spots.append(sp)
    return spots, {}, {"floor_area_m2": round(width * depth, 1)}


def _apart(sp: _Spot, o: _Spot, mx: float, my: float) -> bool:
    """Blocks 1 m apart, and each zone's aisle point (2 m in front) clear of the other zone."""
    return (math.hypot(mx - o.middle()[0], my - o.middle()[1]) >= sp.radius() + o.radius() + 1.0
            and math.hypot(sp.cx + 2.0 * sp.ux - o.cx, sp.cy + 2.0 * sp.uy - o.cy) >= 0.5 * o.zone_w + 1.5
            and math.hypot(o.cx + 2.0 * o.ux - sp.cx, o.cy + 2.0 * o.uy - sp.cy) >= 0.5 * sp.zone_w + 1.5)


def _segment_distance(px: float, py: float, poly: list[list[float]]) -> float:
    """Distance from a point to a convex polygon (0 inside)."""
    from twin_server.site import point_in_polygon

    if point_in_polygon(px, py, [tuple(p) for p in poly]):
        return 0.0
    best = math.inf
    for i in range(len(poly)):
        (x0, y0), (x1, y1) = poly[i], poly[(i + 1) % len(poly)]
        dx, dy = x1 - x0, y1 - y0
        t = max(0.0, min(1.0, ((px - x0) * dx + (py - y0) * dy) / (dx * dx + dy * dy)))
        best = min(best, math.hypot(px - (x0 + t * dx), py - (y0 + t * dy)))
    return best


def place_receivers(
    rng: np.random.Generator, spots: list[_Spot], mount: str, n_receivers: int
) -> tuple[list[dict[str, Any]], list[str]]:
    """Receivers near the zones: each 0.5 .. 4 m from a zone's edge, 1 .. 3 m high.

    ``mount`` is the shop's usual mounting; each receiver keeps it with probability 0.7 and
    takes another otherwise. ``machine``: on the machine behind the zone (the machine's Pi
    stamps it); ``wall``: on a wall or partition behind or beside the zone, 1.8 .. 3 m high;
    ``pillar``: beside the zone, 1 .. 2.5 m; ``ceiling``: 2.6 .. 3 m high, anywhere around
    the zone. Zones are taken in a random order, each at most once while any is left, so
    with fewer receivers than machines some machines have none.

    Returns the receivers and the mount of each.
    """
    order = list(rng.permutation(len(spots)))
    out, mounts = [], []
    for i in range(n_receivers):
        j = int(order[i % len(order)])
        sp = spots[j]
        kind = mount if rng.random() < 0.7 else str(rng.choice(RECEIVER_MOUNTS))
        vx, vy = -sp.uy, sp.ux
        zone = sp.zone()
        if kind == "machine":
            back = sp.zone_d / 2 + float(rng.uniform(0.5, max(0.6, sp.gap_m + 0.8 * sp.foot_d)))
            x, y = sp.cx - sp.ux * back, sp.cy - sp.uy * back
            side = float(rng.uniform(-0.4, 0.4)) * sp.foot_w
            x, y = x + vx * side, y + vy * side
            z = float(rng.uniform(1.0, 2.2))
        else:
            if kind == "wall":
                ang = float(rng.uniform(-0.9 * math.pi / 2, 0.9 * math.pi / 2)) + math.pi  # behind / beside
                z = float(rng.uniform(1.8, 3.0))
            elif kind == "pillar":
                ang = float(rng.choice([-1.0, 1.0])) * math.pi / 2 + float(rng.uniform(-0.5, 0.5))
                z = float(rng.uniform(1.0, 2.5))
            else:
                ang = float(rng.uniform(0, 2 * math.pi))
                z = float(rng.uniform(2.6, 3.0))
            # Direction in the zone's frame (0 = towards the aisle, pi = towards the machine).
            dx = math.cos(ang) * sp.ux + math.sin(ang) * vx
            dy = math.cos(ang) * sp.uy + math.sin(ang) * vy
            want = float(rng.uniform(0.5, 4.0))
            # Walk out from the zone centre until the edge distance is the drawn one.
            r = 0.0
            while _segment_distance(sp.cx + r * dx, sp.cy + r * dy, zone) < want and r < 20:
                r += 0.05
            x, y = sp.cx + r * dx, sp.cy + r * dy
        out.append({"id": f"R{i + 1}", "position": [round(x, 3), round(y, 3), round(z, 2)]})
        if kind == "machine":
            out[-1]["machine"] = f"M{j + 1}"
        mounts.append(kind)
    return out, mounts


def draw_layout(
    rng: np.random.Generator,
    *,
    n_machines: int | None = None,
    n_workers: int | None = None,
    kind: str | None = None,
    site_id: str = "family",
) -> Layout:
    """Draw a shop floor.

    Parameters
    ----------
    rng : numpy.random.Generator
        The only source of randomness.
    n_machines, n_workers : int, optional
        Fixed counts; by default 2 .. 30 machines (log-uniform) and 0.2 .. 0.8 workers per
        machine (1 .. 8 workers).
    kind : str, optional
        One of :data:`LAYOUT_KINDS`; by default drawn (equal odds).
    site_id : str
        The ``site`` id.

    Returns
    -------
    Layout
        The site mapping, waypoints out of U-cells, and the drawn facts.
    """
    n = n_machines if n_machines is not None else round(math.exp(rng.uniform(math.log(2), math.log(30.5))))
    n = max(2, n) if n_machines is None else n
    if n < 1:
        raise ValueError("a site needs at least one machine")
    kind = kind or str(rng.choice(LAYOUT_KINDS))
    if kind not in LAYOUT_KINDS:
        raise ValueError(f"layout kind must be one of {list(LAYOUT_KINDS)} (got {kind!r})")
    build = {"rows": _rows, "u_cells": _u_cells, "scattered": _scattered}[kind]
    spots, via_idx, facts = build(rng, n)
    n_w = n_workers if n_workers is not None else int(np.clip(round(n * rng.uniform(0.2, 0.8)), 1, 8))
    mount = str(rng.choice(RECEIVER_MOUNTS))
    n_rx = max(1, round(n * rng.uniform(0.5, 1.5)))
    receivers, mounts = place_receivers(rng, spots, mount, n_rx)
    # Shift the floor so every coordinate is >= 1 m.
    xs = [p for sp in spots for p in (*[q[0] for q in sp.zone()], sp.machine_xy()[0])]
    ys = [p for sp in spots for p in (*[q[1] for q in sp.zone()], sp.machine_xy()[1])]
    xs += [r["position"][0] for r in receivers]
    ys += [r["position"][1] for r in receivers]
    for pts in via_idx.values():
        xs += [p[0] for p in pts]
        ys += [p[1] for p in pts]
    dx, dy = 1.5 - min(xs), 1.5 - min(ys)
    machines = []
    for i, sp in enumerate(spots):
        sp.cx += dx
        sp.cy += dy
        mx, my = sp.machine_xy()
        mid = f"M{i + 1}"
        machines.append({
            "id": mid, "name": f"Machine {i + 1}", "position": [round(mx, 3), round(my, 3)],
            "rotation_deg": sp.rotation_deg(), "footprint": [round(sp.foot_w, 2), round(sp.foot_d, 2)],
            "zone": sp.zone(), "device": vocab.default_machine_device(mid),
            "sensors": [dict(s) for s in _SENSORS],
        })
    for r in receivers:
        r["position"][0] = round(r["position"][0] + dx, 3)
        r["position"][1] = round(r["position"][1] + dy, 3)
    via = {f"M{i + 1}": [(round(x + dx, 3), round(y + dy, 3)) for x, y in pts] for i, pts in via_idx.items()}
    outline = bool(rng.random() < 0.5)
    site: dict[str, Any] = {
        "site": site_id,
        "name": f"Drawn shop ({kind}, {n} machines, {n_w} workers)",
        "timezone": "Asia/Tokyo",
        "machines": machines,
        "workers": [{"id": f"W{j + 1}", "name": f"Operator {j + 1}", "beacon": f"b-{j + 1:02d}"}
                    for j in range(n_w)],
        "receivers": receivers,
        "locators": ["tagsys"],
    }
    if outline:
        site["floor"] = [round(max(xs) + dx + 1.5, 2), round(max(ys) + dy + 1.5, 2)]
    near = _receiver_distances(spots, receivers)
    facts.update(layout=kind, machines=n, workers=n_w, receivers=n_rx, receiver_mount=mount,
                 receiver_mounts={m: mounts.count(m) for m in RECEIVER_MOUNTS if m in mounts},
                 zones_without_receiver_within_2m=sum(d > 2.0 for d in near),
                 nearest_receiver_m=[round(d, 2) for d in near], floor_outline=outline)
    return Layout(site, via, facts)


def _receiver_distances(spots: list[_Spot], receivers: list[dict[str, Any]]) -> list[float]:
    """Per zone, the floor distance from its edge to the nearest receiver, metres."""
    return [min((_segment_distance(r["position"][0], r["position"][1], sp.zone()) for r in receivers),
                default=math.inf) for sp in spots]
