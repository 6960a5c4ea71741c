"""Read a scan file into one trimesh mesh or point cloud, with warnings instead of surprises.

trimesh does the parsing; this module adds the checks a user needs: an unknown format, an
empty file, a file that holds no surface, and (for OBJ) texture images named in the MTL that
do not exist. trimesh silently drops such a texture; we say so.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import trimesh

from models3d.errors import ScanError

__all__ = ["FORMATS", "LoadedScan", "load_scan", "missing_textures"]

# suffix -> trimesh file type
FORMATS = {".obj": "obj", ".ply": "ply", ".stl": "stl", ".glb": "glb", ".gltf": "gltf"}
_USD = {".usdz", ".usd", ".usda", ".usdc"}  # through usd-core, see models3d.usd


@dataclass
class LoadedScan:
    """A scan as read from disk: exactly one of ``mesh`` or ``points`` is set."""

    path: Path
    file_type: str
    mesh: trimesh.Trimesh | None = None
    points: trimesh.PointCloud | None = None
    warnings: list[str] = field(default_factory=list)
    up_hint: str | None = None  # up axis the file declares (USD upAxis), if any


def missing_textures(obj_path: Path) -> list[str]:
    """Texture files referenced by an OBJ's material libraries that do not exist.

    Returns one message per missing file (or missing MTL), naming the file that refers to it.
    """
    problems: list[str] = []
    try:
        text = obj_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return problems
    for lib in re.findall(r"^\s*mtllib\s+(.+?)\s*$", text, flags=re.M):
        mtl = obj_path.parent / lib
        if not mtl.is_file():
            problems.append(f"material library {lib!r} named in {obj_path.name} is missing")
            continue
        mtl_text = mtl.read_text(encoding="utf-8", errors="replace")
        for ref in re.findall(r"^\s*map_\w+\s+(?:-\S+\s+\S+\s+)*(.+?)\s*$", mtl_text, flags=re.M):
            if not (mtl.parent / ref).is_file():
                problems.append(f"texture {ref!r} named in {mtl.name} is missing")
    return problems


def _as_single(geom: object, path: Path) -> trimesh.Trimesh | trimesh.PointCloud:
    """Flatten a loaded scene into one mesh, or return the point cloud it holds."""
    if isinstance(geom, trimesh.Scene):
        parts = list(geom.geometry.values())
        if any(isinstance(g, trimesh.Trimesh) and len(g.faces) for g in parts):
            # to_geometry applies node transforms and concatenates (materials are merged)
            flat = geom.to_geometry()
            if isinstance(flat, trimesh.Trimesh):
                return flat
        clouds = [g for g in parts if isinstance(g, trimesh.PointCloud) and len(g.vertices)]
        if clouds:
            return (
                clouds[0] if len(clouds) == 1 else trimesh.PointCloud(np.vstack([c.vertices for c in clouds]))
            )
        if not parts:
            raise ScanError(f"{path.name}: the file holds no geometry")
        raise ScanError(f"{path.name}: not a mesh or point cloud (found {type(parts[0]).__name__})")
    if isinstance(geom, trimesh.Trimesh | trimesh.PointCloud):
        return geom
    raise ScanError(f"{path.name}: not a mesh or point cloud (found {type(geom).__name__})")


def load_scan(path: str | Path) -> LoadedScan:
    """Load OBJ (with MTL and textures), PLY (mesh or points), STL, GLB, glTF or USD/USDZ.

    Raises
    ------
    ScanError
        Missing, empty, unreadable or unsupported file, or one without any surface or points.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in FORMATS and suffix not in _USD:
        known = ", ".join(sorted(FORMATS.keys() | _USD))
        raise ScanError(f"{p.name}: unknown scan format {suffix or '(none)'!r}; expected one of {known}")
    if not p.is_file():
        raise ScanError(f"{p}: no such file")
    if p.stat().st_size == 0:
        raise ScanError(f"{p.name}: the file is empty")
    warnings: list[str] = []
    if suffix in _USD:
        from models3d.usd import load_usd

        mesh, up, usd_warnings = load_usd(p)
        return LoadedScan(path=p, file_type="usd", mesh=mesh, warnings=usd_warnings, up_hint=up)
    if suffix == ".obj":
        warnings += [w + ": exported without that texture" for w in missing_textures(p)]
    # trimesh logs recoverable parse problems; keep them out of the user's terminal
    logging.getLogger("trimesh").setLevel(logging.ERROR)
    try:
        geom = trimesh.load(p, file_type=FORMATS[suffix], process=False)
    except ScanError:
        raise
    except Exception as exc:  # any parser failure is a bad file, whatever the parser raises
        detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise ScanError(f"{p.name}: cannot read as {FORMATS[suffix].upper()}: {detail}") from None
    single = _as_single(geom, p)
    scan = LoadedScan(path=p, file_type=FORMATS[suffix], warnings=warnings)
    if isinstance(single, trimesh.PointCloud):
        if len(single.vertices) < 100:
            raise ScanError(f"{p.name}: only {len(single.vertices)} points: too few to reconstruct a surface")
        scan.points = single
    else:
        if len(single.faces) == 0:
            if len(single.vertices) >= 100:
                scan.points = trimesh.PointCloud(single.vertices)
                return scan
            raise ScanError(f"{p.name}: the file holds no triangles")
        if not np.isfinite(single.vertices).all():
            keep = np.isfinite(single.vertices).all(axis=1)
            warnings.append(f"{int((~keep).sum())} vertices with NaN/inf coordinates dropped")
            single.update_faces(keep[single.faces].all(axis=1))
            single.remove_unreferenced_vertices()
            if len(single.faces) == 0:
                raise ScanError(f"{p.name}: no triangle has finite coordinates")
        scan.mesh = single
    return scan
