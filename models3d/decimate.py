"""Decimate to a triangle budget, carrying vertex colours or UVs along.

fast-simplification (quadric edge collapse) is fast (about 3 s for 1M triangles here) and
returns its collapse history, from which we rebuild which input vertices ended up in each
output vertex: the output vertex gets the mean colour / UV of those. A texture seam is a cut
in the vertex graph (seam vertices are duplicated), so a collapse never mixes two UV charts.

Fallbacks, each reported:

- a textured mesh whose seams (open borders to the simplifier) stop it above the budget has
  its texture baked to vertex colours, the seams welded, and is decimated as a coloured mesh;
- fast-simplification stopping above the budget, or pinching a closed surface open (it
  rarely makes a non-manifold edge): the decimation is redone with open3d's quadric
  decimation, slower, which reaches the budget and keeps the surface closed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh

from models3d.clean import closed_surface

__all__ = ["Decimation", "bake_texture", "decimate", "vertex_groups"]


@dataclass
class Decimation:
    """How the budget was met."""

    method: str  # "none", "fast-simplification", "open3d-quadric"
    visual: str  # what colour the output carries: texture / vertex_colors / none
    baked: bool = False  # texture turned into vertex colours
    note: str = ""  # why a fallback was taken, for the report


def vertex_groups(n_vertices: int, collapses: np.ndarray) -> np.ndarray:
    """Surviving vertex (input index) that every input vertex was collapsed into.

    ``collapses[i] = (keep, gone)`` in order; following the chains gives each vertex's root.
    """
    parent = np.arange(n_vertices, dtype=np.int64)
    if len(collapses):
        parent[collapses[:, 1]] = collapses[:, 0]
    while True:  # pointer jumping: log(chain length) passes
        nxt = parent[parent]
        if np.array_equal(nxt, parent):
            return parent
        parent = nxt


def _mean_by_group(values: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    out = np.zeros((n_groups, values.shape[1]), dtype=np.float64)
    np.add.at(out, group, values.astype(np.float64))
    count = np.bincount(group, minlength=n_groups).astype(np.float64)
    return out / np.maximum(count, 1)[:, None]


def _fast(mesh: trimesh.Trimesh, budget: int, visual: str) -> trimesh.Trimesh:
    import fast_simplification

    points, faces, collapses = fast_simplification.simplify(
        mesh.vertices, mesh.faces, target_count=budget, return_collapses=True
    )
    root = vertex_groups(len(mesh.vertices), np.asarray(collapses, dtype=np.int64))
    # a surviving vertex whose faces all collapsed is dropped from the output: the output
    # vertices are the survivors still used by a non-degenerate face, in input order
    corners = root[mesh.faces]
    alive = (
        (corners[:, 0] != corners[:, 1]) & (corners[:, 1] != corners[:, 2]) & (corners[:, 0] != corners[:, 2])
    )
    used = np.unique(corners[alive])
    if len(used) != len(points):
        raise RuntimeError("fast-simplification collapse history does not match its output")
    group = np.searchsorted(used, root)
    member = np.isin(root, used)
    out = trimesh.Trimesh(points, faces, process=False)
    if visual == "texture":
        uv = _mean_by_group(mesh.visual.uv[member], group[member], len(points))
        out.visual = trimesh.visual.TextureVisuals(uv=uv, material=mesh.visual.material)
    elif visual == "vertex_colors":
        colours = _mean_by_group(mesh.visual.vertex_colors[member], group[member], len(points))
        out.visual = trimesh.visual.ColorVisuals(out, vertex_colors=np.round(colours).astype(np.uint8))
    return out


def _open3d(mesh: trimesh.Trimesh, budget: int, visual: str) -> trimesh.Trimesh:
    import open3d as o3d

    o3 = o3d.geometry.TriangleMesh(
        o3d.utility.Vector3dVector(np.asarray(mesh.vertices, dtype=np.float64)),
        o3d.utility.Vector3iVector(np.asarray(mesh.faces, dtype=np.int32)),
    )
    if visual == "vertex_colors":
        colours = np.asarray(mesh.visual.vertex_colors[:, :3], dtype=np.float64) / 255
        o3.vertex_colors = o3d.utility.Vector3dVector(colours)
    small = o3.simplify_quadric_decimation(budget)
    out = trimesh.Trimesh(np.asarray(small.vertices), np.asarray(small.triangles), process=False)
    if small.has_vertex_colors():
        rgb = np.clip(np.asarray(small.vertex_colors) * 255, 0, 255).round().astype(np.uint8)
        out.visual = trimesh.visual.ColorVisuals(out, vertex_colors=rgb)
    return out


def bake_texture(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Texture sampled to vertex colours, and the vertices split at UV seams welded again
    (their colours averaged) so the surface decimates as one piece."""
    colours = np.asarray(mesh.visual.to_color().vertex_colors, dtype=np.float64)
    unique, inverse = trimesh.grouping.unique_rows(mesh.vertices)
    inverse = np.asarray(inverse).reshape(-1)
    rgba = np.round(_mean_by_group(colours, inverse, len(unique))).astype(np.uint8)
    out = trimesh.Trimesh(mesh.vertices[unique], inverse[mesh.faces], process=False)
    out.visual = trimesh.visual.ColorVisuals(out, vertex_colors=rgba)
    return out


def _fast_to_budget(mesh: trimesh.Trimesh, budget: int, visual: str) -> trimesh.Trimesh:
    out = _fast(mesh, budget, visual)
    for _ in range(3):  # fast-simplification can stop a little above the target: go again
        if len(out.faces) <= budget:
            break
        out = _fast(out, budget, visual)
    return out


def decimate(
    mesh: trimesh.Trimesh, budget: int, visual: str, closed: bool | None = None
) -> tuple[trimesh.Trimesh, Decimation]:
    """Reduce ``mesh`` to at most ``budget`` triangles keeping its colours.

    Parameters
    ----------
    visual
        ``"texture"``, ``"vertex_colors"`` or ``"none"`` (from :func:`models3d.clean.normalise_visual`).
    closed
        Whether the input is closed, when the caller already knows (costly on big meshes).
    """
    if len(mesh.faces) <= budget:
        return mesh, Decimation("none", visual)
    if visual == "texture":
        # texture seams split vertices, so a textured mesh is never closed by index; its UVs
        # are kept unless the seams (open borders to the simplifier) stop it above the budget
        out = _fast_to_budget(mesh, budget, visual)
        if len(out.faces) <= budget:
            return out, Decimation("fast-simplification", "texture")
        reached = len(out.faces)
        out, info = decimate(bake_texture(mesh), budget, "vertex_colors")
        info.baked = True
        info.note = (
            f"texture baked to vertex colours: its UV seams stopped decimation at {reached} > {budget} "
            "triangles"
        )
        return out, info
    closed = closed_surface(mesh) if closed is None else closed
    out = _fast_to_budget(mesh, budget, visual)
    if len(out.faces) > budget:
        return _open3d(mesh, budget, visual), Decimation(
            "open3d-quadric", visual, note=f"fast-simplification stopped at {len(out.faces)} triangles"
        )
    if closed and not closed_surface(out):
        return _open3d(mesh, budget, visual), Decimation(
            "open3d-quadric", visual, note="fast-simplification opened the closed surface"
        )
    return out, Decimation("fast-simplification", visual)
