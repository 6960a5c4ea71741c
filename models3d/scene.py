"""The factory scene: floor, painted markings, zones and every machine, as one GLB.

Coordinates: glTF's Y-up metres. A site floor point (x, y) becomes the scene point
(x, 0, -y): site x -> scene +X, site y -> scene -Z, up -> +Y. This is a proper rotation, so a
counter-clockwise ``rotation_deg`` on the site plan is a counter-clockwise (right-handed)
rotation about +Y in the scene.

Node names are stable, for the viewer to look up (see ``docs/models3d.md``):
``floor``, ``marking:<i>`` (index in ``site.floor_markings``), ``zone:<machine id>``,
``machine:<machine id>``. Every node carries extras (``kind``, ids, labels).
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import trimesh

from models3d.errors import ScanError

__all__ = [
    "FLOOR_THICKNESS_M",
    "SceneSummary",
    "build_scene",
    "machine_transform",
    "polyline_strip",
    "site_to_scene",
    "triangulate_polygon",
    "write_scene",
]

FLOOR_THICKNESS_M = 0.05
MARKING_LIFT_M = 0.003  # painted lines sit just above the floor (no z-fighting)
ZONE_LIFT_M = 0.006  # zones are an overlay above the paint
FLOOR_RGBA = (0.55, 0.57, 0.6, 1.0)
PLACEHOLDER_RGBA = (0.35, 0.45, 0.6, 1.0)
ZONE_RGBA = (0.2, 0.6, 1.0, 0.35)


@dataclass
class SceneSummary:
    """What :func:`build_scene` put in the scene."""

    nodes: list[str] = field(default_factory=list)
    models: dict[str, str] = field(default_factory=dict)  # machine id -> model file used
    placeholders: list[str] = field(default_factory=list)  # machine ids drawn as boxes
    warnings: list[str] = field(default_factory=list)
    output: str = ""
    output_bytes: int = 0

    def text(self) -> str:
        """Human-readable summary."""
        lines = [
            f"scene -> {self.output or '(not written)'} ({self.output_bytes / 1e6:.2f} MB), "
            f"{len(self.nodes)} nodes: {', '.join(self.nodes)}",
            f"  machine models: {', '.join(f'{k}={v}' for k, v in self.models.items()) or 'none'}; "
            f"placeholder boxes: {', '.join(self.placeholders) or 'none'}",
        ]
        return "\n".join(lines + [f"  warning: {w}" for w in self.warnings])


def site_to_scene(x: float, y: float, height_m: float = 0.0) -> np.ndarray:
    """A site floor point (metres) in scene coordinates."""
    return np.array([x, height_m, -y], dtype=np.float64)


def machine_transform(centre: tuple[float, float], rotation_deg: float) -> np.ndarray:
    """4x4 placing a prepared model (front +Z, origin at its footprint centre on the floor).

    ``rotation_deg = 0`` means the machine's front faces site +y, i.e. scene -Z, so the model
    is first turned 180 degrees about +Y, then by ``rotation_deg`` counter-clockwise.
    """
    angle = math.radians(rotation_deg + 180.0)
    out = trimesh.transformations.rotation_matrix(angle, [0.0, 1.0, 0.0])
    out[:3, 3] = site_to_scene(*centre)
    return out


def _material(rgba: tuple[float, float, float, float]) -> trimesh.visual.TextureVisuals:
    mat = trimesh.visual.material.PBRMaterial(
        baseColorFactor=[float(c) for c in rgba],
        metallicFactor=0.0,
        roughnessFactor=0.9,
        doubleSided=True,
        alphaMode="BLEND" if rgba[3] < 1.0 else "OPAQUE",
    )
    return trimesh.visual.TextureVisuals(material=mat)


def _hex_rgba(colour: str) -> tuple[float, float, float, float]:
    text = colour.lstrip("#")
    if len(text) not in (6, 8):
        raise ScanError(f"marking colour {colour!r} is not #rrggbb")
    try:
        values = [int(text[i : i + 2], 16) / 255 for i in range(0, len(text), 2)]
    except ValueError:
        raise ScanError(f"marking colour {colour!r} is not #rrggbb") from None
    return (values[0], values[1], values[2], values[3] if len(values) == 4 else 1.0)


def triangulate_polygon(points: list[tuple[float, float]]) -> np.ndarray:
    """Ear-clipping triangulation of a simple polygon; returns (n-2, 3) indices, CCW.

    Zones and painted areas have a handful of corners, so O(n^2) is fine.
    """
    pts = np.asarray(points, dtype=np.float64)
    n = len(pts)
    area = 0.5 * float(np.sum(pts[:, 0] * np.roll(pts[:, 1], -1) - np.roll(pts[:, 0], -1) * pts[:, 1]))
    order = list(range(n)) if area > 0 else list(range(n))[::-1]
    tris: list[tuple[int, int, int]] = []

    def cross(o: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
        return float((a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]))

    guard = 0
    while len(order) > 3 and guard < n * n:
        guard += 1
        for k in range(len(order)):
            i, j, m = order[k - 1], order[k], order[(k + 1) % len(order)]
            a, b, c = pts[i], pts[j], pts[m]
            if cross(a, b, c) <= 1e-12:
                continue  # reflex or flat corner: not an ear
            others = [pts[o] for o in order if o not in (i, j, m)]
            if any(cross(a, b, p) >= 0 and cross(b, c, p) >= 0 and cross(c, a, p) >= 0 for p in others):
                continue
            tris.append((i, j, m))
            order.pop(k)
            break
        else:  # no ear found (self-intersecting input): fan the rest
            break
    for k in range(1, len(order) - 1):
        tris.append((order[0], order[k], order[k + 1]))
    return np.asarray(tris, dtype=np.int64)


def _flat_polygon(points: list[tuple[float, float]], lift_m: float) -> trimesh.Trimesh:
    faces = triangulate_polygon(points)
    vertices = np.array([site_to_scene(x, y, lift_m) for x, y in points])
    # CCW on the site plan is CCW seen from above in the scene too (proper rotation): normals +Y
    return trimesh.Trimesh(vertices, faces, process=False)


def polyline_strip(points: list[tuple[float, float]], width_m: float, lift_m: float) -> trimesh.Trimesh:
    """A painted line: one flat rectangle per segment, each lengthened by half the width at
    both ends so corners are covered."""
    vertices: list[np.ndarray] = []
    faces: list[list[int]] = []
    half = width_m / 2
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        d = np.array([x1 - x0, y1 - y0], dtype=np.float64)
        length = float(np.linalg.norm(d))
        if length < 1e-9:
            continue
        d /= length
        side = np.array([-d[1], d[0]]) * half
        a = np.array([x0, y0]) - d * half
        b = np.array([x1, y1]) + d * half
        corners = [a - side, b - side, b + side, a + side]  # CCW on the plan
        base = len(vertices)
        vertices += [site_to_scene(c[0], c[1], lift_m) for c in corners]
        faces += [[base, base + 1, base + 2], [base, base + 2, base + 3]]
    if not faces:
        raise ScanError("a floor marking line has no segment of non-zero length")
    return trimesh.Trimesh(np.array(vertices), np.array(faces), process=False)


def _placeholder(footprint: tuple[float, float], height_m: float) -> trimesh.Trimesh:
    box = trimesh.creation.box(extents=[footprint[0], height_m, footprint[1]])
    box.apply_translation([0.0, height_m / 2, 0.0])
    box.visual = _material(PLACEHOLDER_RGBA)
    return box


def _load_model(path: Path) -> trimesh.Trimesh:
    logging.getLogger("trimesh").setLevel(logging.ERROR)
    geom = trimesh.load(path, force="mesh")
    if not isinstance(geom, trimesh.Trimesh) or len(geom.faces) == 0:
        raise ScanError(f"{path.name}: holds no triangles")
    return geom


def _size_mismatch(
    machine_id: str, extents: np.ndarray, footprint: tuple[float, float], height_m: float
) -> list[str]:
    """A warning when a model is far from the configured size (a unit slip, the wrong file)."""
    model = np.array([extents[0], extents[1], extents[2]])
    config = np.array([footprint[0], height_m, footprint[1]])
    ratio = model / config
    if np.all((ratio > 0.5) & (ratio < 2.0)):
        return []
    sizes = " x ".join(f"{v:.2f}" for v in model)
    want = " x ".join(f"{v:.2f}" for v in config)
    return [f"{machine_id}: model is {sizes} m (w x h x d) but the site says {want} m; placed as modelled"]


def build_scene(site: object, site_dir: Path) -> tuple[trimesh.Scene, SceneSummary]:
    """Build the factory scene of a validated :class:`twin_server.site.Site`.

    Model paths are relative to ``site_dir``. A missing or unreadable model is a warning and
    the machine is drawn as a box of its footprint and height.
    """
    summary = SceneSummary()
    scene = trimesh.Scene()
    xmin, ymin, xmax, ymax = site.floor_size()
    floor = trimesh.creation.box(extents=[xmax - xmin, FLOOR_THICKNESS_M, ymax - ymin])
    floor.apply_translation(site_to_scene((xmin + xmax) / 2, (ymin + ymax) / 2, -FLOOR_THICKNESS_M / 2))
    floor.visual = _material(FLOOR_RGBA)
    extras = {"kind": "floor", "site_bounds_m": [xmin, ymin, xmax, ymax]}
    scene.add_geometry(floor, node_name="floor", geom_name="floor", metadata=extras)
    summary.nodes.append("floor")

    for i, mk in enumerate(site.floor_markings):
        name = f"marking:{i}"
        if mk.kind == "line":
            geom = polyline_strip(list(mk.points), mk.width_m, MARKING_LIFT_M)
        else:
            geom = _flat_polygon(list(mk.points), MARKING_LIFT_M)
        geom.visual = _material(_hex_rgba(mk.color))
        extras = {
            "kind": "marking",
            "index": i,
            "marking_kind": mk.kind,
            "label": mk.label,
            "color": mk.color,
        }
        scene.add_geometry(geom, node_name=name, geom_name=name, metadata=extras)
        summary.nodes.append(name)

    for m in site.machines:
        name = f"zone:{m.id}"
        geom = _flat_polygon(list(m.zone), ZONE_LIFT_M)
        geom.visual = _material(ZONE_RGBA)
        extras = {"kind": "zone", "machine_id": m.id, "label": m.label}
        scene.add_geometry(geom, node_name=name, geom_name=name, metadata=extras)
        summary.nodes.append(name)

    for m in site.machines:
        name = f"machine:{m.id}"
        geom: trimesh.Trimesh | None = None
        if m.model:
            path = (site_dir / m.model).resolve()
            try:
                geom = _load_model(path)
                summary.models[m.id] = m.model
                summary.warnings += _size_mismatch(m.id, geom.extents, m.footprint, m.height_m)
            except ScanError as exc:
                summary.warnings.append(f"{m.id}: model {m.model}: {exc}; drawn as a box")
            except Exception as exc:  # an unreadable model must not sink the whole scene
                reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
                summary.warnings.append(f"{m.id}: model {m.model} unreadable ({reason}); drawn as a box")
        if geom is None:
            geom = _placeholder(m.footprint, m.height_m)
            summary.placeholders.append(m.id)
        extras = {
            "kind": "machine",
            "machine_id": m.id,
            "label": m.label,
            "name_ja": m.name_ja,
            "placeholder": m.id in summary.placeholders,
            "model": m.model if m.id in summary.models else None,
            "footprint_m": list(m.footprint),
            "height_m": m.height_m,
            "rotation_deg": m.rotation_deg,
            "site_position_m": list(m.centre),
        }
        scene.add_geometry(
            geom,
            node_name=name,
            geom_name=name,
            transform=machine_transform(m.centre, m.rotation_deg),
            metadata=extras,
        )
        summary.nodes.append(name)
    scene.metadata.update(
        {
            "site": site.site,
            "units": "m",
            "up": "+y",
            "mapping": "site (x, y) -> scene (x, 0, -y)",
            "generator": "models3d scene",
        }
    )
    return scene, summary


def write_scene(site_path: str | Path, out: str | Path) -> SceneSummary:
    """Load the site file, build the scene and write it as GLB."""
    from twin_server.site import SiteError, load_site

    path = Path(site_path)
    try:
        site = load_site(path)
    except SiteError as exc:
        raise ScanError(str(exc)) from None
    scene, summary = build_scene(site, path.parent)
    data = scene.export(file_type="glb")
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(data)
    summary.output = str(out_path)
    summary.output_bytes = len(data)
    return summary
