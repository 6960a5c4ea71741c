"""Synthetic sites of any size, laid out like the pilot.

Machines stand in a row behind their zones, 5 m apart, with one receiver at each machine and
the aisle in front of the zones; with more than four machines a second row faces the first
across the aisle (machines rotated by 180 degrees).
"""

from __future__ import annotations

import math
from typing import Any

from twin_contract import vocabulary as vocab
from twin_server.site import Site, parse_site

__all__ = ["synthetic_site", "synthetic_site_dict"]

PITCH_M = 5.0
ZONE_W_M = 2.8
ZONE_D_M = 2.0
AISLE_HALF_M = 1.6  # half-width of the aisle between the zone edges of the two rows


def synthetic_site_dict(n_machines: int, n_workers: int, site_id: str = "synthetic") -> dict[str, Any]:
    """A site mapping with ``n_machines`` machines and ``n_workers`` workers.

    Parameters
    ----------
    n_machines, n_workers : int
        At least 1 machine; 0 or more workers.
    site_id : str
        The ``site`` id.

    Returns
    -------
    dict
        Valid input for :func:`twin_server.site.parse_site`.
    """
    if n_machines < 1:
        raise ValueError("a site needs at least one machine")
    if n_workers < 0:
        raise ValueError("the number of workers cannot be negative")
    two_rows = n_machines > 4
    n_top = math.ceil(n_machines / 2) if two_rows else n_machines
    aisle_y = 3.0 if not two_rows else 6.5
    machines = []
    receivers = []
    for i in range(n_machines):
        top = i < n_top
        col = i if top else i - n_top
        x = 3.0 + PITCH_M * col
        sign = 1.0 if top else -1.0
        z_near = aisle_y + sign * AISLE_HALF_M
        z_far = z_near + sign * ZONE_D_M
        y_machine = z_far + sign * 0.9
        mid = f"M{i + 1}"
        ys = sorted((z_near, z_far))
        machines.append(
            {
                "id": mid,
                "name": f"NC lathe No. {i + 1}",
                "position": [x, round(y_machine, 3)],
                "rotation_deg": 0.0 if top else 180.0,
                "footprint": [2.4, 1.6],
                "zone": [
                    [x - ZONE_W_M / 2, ys[0]],
                    [x + ZONE_W_M / 2, ys[0]],
                    [x + ZONE_W_M / 2, ys[1]],
                    [x - ZONE_W_M / 2, ys[1]],
                ],
                "device": vocab.default_machine_device(mid),
                "sensors": [
                    {"id": "light", "kind": "light", "adc": "mcp3008", "adc_channel": 0},
                    {"id": "pressure", "kind": "pressure", "adc": "mcp3008", "adc_channel": 1},
                    {"id": "sw-tool", "kind": "switch", "channel": "tool_change", "gpio": 17},
                    {"id": "sw-program", "kind": "switch", "channel": "program_input", "gpio": 27},
                    {"id": "sw-material", "kind": "switch", "channel": "material_setting", "gpio": 22},
                ],
            }
        )
        receivers.append(
            {"id": f"R{i + 1}", "position": [x, round(z_far - sign * 0.2, 3), 1.2], "machine": mid}
        )
    width = 3.0 + PITCH_M * (n_top - 1) + 3.0
    depth = aisle_y + AISLE_HALF_M + ZONE_D_M + 2.5
    workers = [
        {"id": f"W{j + 1}", "name": f"Operator {j + 1}", "beacon": f"b-{j + 1:02d}"} for j in range(n_workers)
    ]
    return {
        "site": site_id,
        "name": f"Synthetic shop ({n_machines} machines, {n_workers} workers)",
        "timezone": "Asia/Tokyo",
        "floor": [round(width, 3), round(depth, 3)],
        "machines": machines,
        "workers": workers,
        "receivers": receivers,
        "locators": ["tagsys"],
        "shift": {
            "start": "08:30",
            "end": "17:30",
            "breaks": [
                {"start": "10:00", "end": "10:10", "name": "morning break"},
                {"start": "12:00", "end": "13:00", "name": "lunch"},
                {"start": "15:00", "end": "15:10", "name": "afternoon break"},
            ],
        },
        "floor_markings": [
            {
                "kind": "line",
                "points": [[0.5, aisle_y - AISLE_HALF_M + 0.2], [width - 0.5, aisle_y - AISLE_HALF_M + 0.2]],
                "label": "aisle edge",
            },
            {
                "kind": "line",
                "points": [[0.5, aisle_y + AISLE_HALF_M - 0.2], [width - 0.5, aisle_y + AISLE_HALF_M - 0.2]],
                "label": "aisle edge",
            },
        ],
    }


def synthetic_site(n_machines: int, n_workers: int, site_id: str = "synthetic") -> Site:
    """The validated :class:`Site` of :func:`synthetic_site_dict`."""
    return parse_site(synthetic_site_dict(n_machines, n_workers, site_id), "synthetic site")
