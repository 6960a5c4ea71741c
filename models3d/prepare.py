"""The ``prepare`` pipeline: one scan in, one light, levelled, metric GLB out, plus a report.

Steps (each timed in the report): load -> reconstruct (point clouds only) -> clean (bad faces,
debris, floating noise) -> floor (find and cut) -> orient (Y up, front +Z) -> scale (metres,
origin at the footprint centre on the floor) -> decimate (triangle budget) -> export (GLB).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import trimesh

from models3d.clean import closed_surface, normalise_visual, remove_bad_faces, remove_debris
from models3d.decimate import decimate
from models3d.errors import ScanError
from models3d.floor import Floor, find_floor, remove_floor
from models3d.loading import load_scan
from models3d.orient import (
    DIMENSIONS,
    UNITS_M,
    level_and_face,
    parse_axis,
    place_on_floor,
    plausible_size_warning,
)
from models3d.reconstruct import poisson_mesh

__all__ = ["PrepareOptions", "Report", "prepare", "prepare_file"]

# the up axis a file format conventionally uses when no floor tells us better
_DEFAULT_UP = {"stl": "+z"}


@dataclass
class PrepareOptions:
    """Knobs of :func:`prepare`; the defaults suit a phone scan of one machine."""

    front: str | None = None  # scan axis pointing out of the machine's front; None = +z (-y if Z is up)
    up: str = "auto"  # scan axis pointing up; auto = the floor's normal, else the format's convention
    dimension: tuple[str, float] | None = None  # measured extent, e.g. ("height", 1.8)
    unit: str | None = None  # unit of the scan ("mm", "cm", "m", "in", "ft") when no dimension
    triangles: int = 50_000
    min_component_share: float = 0.005
    floor: bool = True
    outliers: bool = True


@dataclass
class Report:
    """What happened to one scan; printed by the CLI and written as JSON on request."""

    input: str
    output: str = ""
    kind: str = "mesh"  # mesh / point_cloud
    points_in: int = 0
    noise_points_removed: int = 0  # point clouds: statistical outliers dropped before Poisson
    triangles_before: int = 0
    triangles_after: int = 0
    degenerate_faces: int = 0
    duplicate_faces: int = 0
    components_before: int = 0
    components_removed: int = 0  # debris + floating noise, of components_before
    noise_components_removed: int = 0
    floor_found: bool = False
    floor_faces_removed: int = 0
    floor_loose_pieces_removed: int = 0  # small pieces left standing alone once the floor was cut
    floor_normal: list[float] | None = None
    up: list[float] = field(default_factory=list)
    front: str = ""
    scale: float = 1.0
    bbox_min_m: list[float] = field(default_factory=list)
    bbox_max_m: list[float] = field(default_factory=list)
    size_m: list[float] = field(default_factory=list)  # width (x), height (y), depth (z)
    watertight_before: bool = False  # closed once cleaned, before the floor cut and decimation
    watertight_after: bool = False
    visual: str = "none"  # texture / vertex_colors / none
    decimation: str = "none"
    decimation_note: str = ""  # why a fallback was taken
    output_bytes: int = 0
    timings_s: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return asdict(self)

    def text(self) -> str:
        """Human-readable summary, a few lines."""
        size = " x ".join(f"{v:.3f}" for v in self.size_m)
        times = ", ".join(f"{k} {v:.2f}" for k, v in self.timings_s.items())
        lines = [
            f"{self.input} -> {self.output or '(not written)'}",
            f"  {self.kind}: triangles {self.triangles_before} -> {self.triangles_after}"
            + (
                f" (Poisson from {self.points_in} points, {self.noise_points_removed} noise points dropped)"
                if self.kind == "point_cloud"
                else ""
            ),
            f"  removed: {self.degenerate_faces} degenerate + {self.duplicate_faces} duplicate faces, "
            f"{self.components_removed} of {self.components_before} components "
            f"({self.noise_components_removed} floating noise), floor "
            + (
                f"{self.floor_faces_removed} faces (+{self.floor_loose_pieces_removed} loose pieces)"
                if self.floor_found
                else "not found"
            ),
            f"  size (w x h x d): {size} m, scale x{self.scale:.4g}, front {self.front}, "
            f"colour {self.visual}, decimation {self.decimation}, watertight {self.watertight_after}",
            f"  GLB {self.output_bytes / 1e6:.2f} MB; seconds: {times}",
        ]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


@contextmanager
def _timed(report: Report, step: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        report.timings_s[step] = round(time.perf_counter() - start, 3)


def _nearest_axis(direction: np.ndarray) -> str:
    """``"+z"`` etc.: the signed axis closest to a direction."""
    i = int(np.argmax(np.abs(direction)))
    return ("+" if direction[i] > 0 else "-") + "xyz"[i]


def _default_front(up: np.ndarray) -> str:
    # Z-up files (STL from CAD) conventionally face -Y; everything else faces +Z like glTF
    return "-y" if abs(float(up[2])) > 0.7 else "+z"


def prepare(path: str | Path, options: PrepareOptions | None = None) -> tuple[trimesh.Trimesh, Report]:
    """Run the pipeline on one scan and return the finished mesh and its report.

    Raises
    ------
    ScanError
        A bad file, bad options, or nothing left after clean-up.
    """
    opt = options or PrepareOptions()
    if opt.triangles < 4:
        raise ScanError(f"--triangles must be >= 4, got {opt.triangles}")
    if not 0.0 <= opt.min_component_share < 1.0:
        raise ScanError(f"--min-component-share must be in [0, 1), got {opt.min_component_share}")
    if opt.unit is not None and opt.unit not in UNITS_M:
        raise ScanError(f"unknown unit {opt.unit!r}: use one of {', '.join(UNITS_M)}")
    report = Report(input=str(path))
    with _timed(report, "load"):
        scan = load_scan(path)
    report.warnings += scan.warnings
    if scan.points is not None:
        report.kind = "point_cloud"
        report.points_in = len(scan.points.vertices)
        with _timed(report, "reconstruct"):
            mesh, rec = poisson_mesh(scan.points)
        report.noise_points_removed = rec.noise_points
        if len(mesh.faces) == 0:
            raise ScanError(f"{Path(path).name}: Poisson reconstruction produced no surface")
    else:
        assert scan.mesh is not None
        mesh = scan.mesh
    report.triangles_before = len(mesh.faces)
    mesh, report.visual = normalise_visual(mesh)

    with _timed(report, "clean"):
        mesh, bad = remove_bad_faces(mesh)
        report.degenerate_faces, report.duplicate_faces = bad["degenerate_faces"], bad["duplicate_faces"]
        mesh, debris = remove_debris(mesh, opt.min_component_share, outliers=opt.outliers)
        # closed once debris is gone (a closed part with loose crumbs around it counts as closed)
        closed = closed_surface(mesh)
        report.watertight_before = closed
        report.components_before = debris.components_before
        report.components_removed = debris.debris_components + debris.noise_components
        report.noise_components_removed = debris.noise_components
    if len(mesh.faces) == 0:
        raise ScanError(f"{Path(path).name}: no surface left after removing bad faces")

    default_up = scan.up_hint or _DEFAULT_UP.get(scan.file_type, "+y")
    hint = parse_axis(default_up if opt.up == "auto" else opt.up)
    up = hint
    with _timed(report, "floor"):
        tilted: list[Floor] = []
        floor = find_floor(mesh, hint, closed=closed, rejected=tilted) if opt.floor else None
        if floor is None and tilted:
            biggest = max(tilted, key=lambda f: f.share)
            axis = _nearest_axis(np.asarray(biggest.normal))
            report.warnings.append(
                f"no floor along the expected up axis, but a large plane with the model on one side faces "
                f"{axis} ({biggest.share:.0%} of the surface): if that is the floor, pass --up {axis}"
            )
        if floor is not None:
            mesh, report.floor_faces_removed = remove_floor(mesh, floor)
            report.floor_found = True
            report.floor_normal = [round(v, 4) for v in floor.normal]
            up = np.asarray(floor.normal)
            # cutting the floor leaves loose scraps (chair legs, floor patches beyond tolerance)
            mesh, loose = remove_debris(mesh, opt.min_component_share, outliers=False)
            report.floor_loose_pieces_removed = loose.debris_components
    if len(mesh.faces) == 0:
        raise ScanError(f"{Path(path).name}: nothing left after removing the floor (try --no-floor)")
    report.up = [round(float(v), 4) for v in up]

    with _timed(report, "orient"):
        report.front = opt.front or _default_front(up)
        mesh.apply_transform(level_and_face(up, parse_axis(report.front)))
        if floor is not None:
            # the floor plane n.x + offset = 0 is now y = -offset: make it y = 0 exactly
            mesh.apply_translation([0.0, floor.offset, 0.0])

    with _timed(report, "scale"):
        if opt.dimension is not None:
            name, metres = opt.dimension
            axis = DIMENSIONS[name]
            # with a floor, the height is the top above the floor plane (y = 0)
            current = float(mesh.bounds[1][1] if floor is not None and axis == 1 else mesh.extents[axis])
            if current <= 0:
                raise ScanError(f"the model has no {name} to scale to {metres} m")
            report.scale = metres / current
        elif opt.unit is not None:
            report.scale = UNITS_M[opt.unit]
        if report.scale != 1.0:
            mesh.apply_scale(report.scale)
        if opt.dimension is None and opt.unit is None:
            warning = plausible_size_warning(mesh.extents)
            if warning:
                report.warnings.append(warning)

    with _timed(report, "decimate"):
        mesh, dec = decimate(mesh, opt.triangles, report.visual, closed=closed if floor is None else False)
        report.decimation = dec.method
        report.decimation_note = dec.note
        if dec.baked:
            report.warnings.append(dec.note)
        report.visual = dec.visual
        # after decimation, which moves vertices a little; without a floor the lowest point is y = 0
        mesh.apply_transform(place_on_floor(mesh.bounds, keep_height=floor is not None))
    report.triangles_after = len(mesh.faces)
    report.watertight_after = closed_surface(mesh)
    bounds = mesh.bounds
    report.bbox_min_m = [round(float(v), 4) for v in bounds[0]]
    report.bbox_max_m = [round(float(v), 4) for v in bounds[1]]
    report.size_m = [round(float(v), 4) for v in bounds[1] - bounds[0]]
    mesh.metadata = {
        "generator": "models3d prepare",
        "source": Path(path).name,
        "units": "m",
        "up": "+y",
        "front": "+z",
    }
    return mesh, report


def export_glb(mesh: trimesh.Trimesh) -> bytes:
    """Standard glTF 2.0 binary of one mesh (trimesh's exporter)."""
    return mesh.export(file_type="glb")


def prepare_file(
    path: str | Path,
    out: str | Path,
    options: PrepareOptions | None = None,
    report_json: str | Path | None = None,
) -> Report:
    """:func:`prepare` then write the GLB (and the JSON report when asked)."""
    mesh, report = prepare(path, options)
    with _timed(report, "export"):
        data = export_glb(mesh)
        out_path = Path(out)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_bytes(data)
    report.output = str(out_path)
    report.output_bytes = len(data)
    if report_json is not None:
        Path(report_json).write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    return report
