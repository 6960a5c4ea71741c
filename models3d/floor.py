"""Find the scanned floor by plane segmentation and cut it away.

A phone scan of a machine nearly always includes a patch of the shop floor. The floor is the
plane that (a) is big: at least ``min_share`` of the surface area lies on it, (b) is at the
bottom: almost no surface lies below it, and (c) is roughly level: its normal is within
``max_tilt_deg`` of the expected up axis. A closed (watertight) mesh has no scanned floor, so
it is never cut. Points are sampled uniformly by area so that a plane-simplified scan (big flat
triangles, few vertices) is judged by area, not by vertex count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh

__all__ = ["Floor", "find_floor", "is_closed_surface", "remove_floor"]


def is_closed_surface(mesh: trimesh.Trimesh) -> bool:
    """Watertight once vertices at the same position count as one (texture seams ignored)."""
    if mesh.is_watertight:
        return True
    _, inverse = np.unique(np.round(mesh.vertices, 9), axis=0, return_inverse=True)
    return trimesh.Trimesh(
        np.zeros((int(inverse.max()) + 1, 3)), inverse.reshape(-1)[mesh.faces], process=False
    ).is_watertight


@dataclass(frozen=True)
class Floor:
    """A floor plane: unit ``normal`` points up, into the model; ``offset`` so that n.x + offset = 0."""

    normal: tuple[float, float, float]
    offset: float
    share: float  # of the surface area on the plane
    tolerance: float  # distance counted as "on the plane", model units
    tilt_deg: float  # angle between the normal and the up hint

    def signed_distance(self, points: np.ndarray) -> np.ndarray:
        """Height of each point above the plane (model units)."""
        return points @ np.asarray(self.normal) + self.offset


def find_floor(
    mesh: trimesh.Trimesh,
    up_hint: np.ndarray,
    min_share: float = 0.05,
    max_below_share: float = 0.02,
    max_tilt_deg: float = 45.0,
    tolerance_share: float = 0.01,
    planes: int = 4,
    samples: int = 10_000,
    seed: int = 0,
) -> Floor | None:
    """The floor plane of a scan, or ``None`` when no plane qualifies.

    Parameters
    ----------
    up_hint
        Expected up direction (unit vector); only its axis matters, the sign comes from the
        side of the plane the model is on.
    min_share
        Share of the surface area that must lie on the plane.
    max_below_share
        Share of the area allowed below the plane (scan noise).
    max_tilt_deg
        Largest angle between the plane normal and ``up_hint``.
    tolerance_share
        Distance to the plane counted as on it, as a share of the bounding-box diagonal.
    planes
        How many dominant planes to examine (RANSAC, largest first).
    """
    import open3d as o3d

    if len(mesh.faces) == 0 or is_closed_surface(mesh):
        return None
    points, _ = trimesh.sample.sample_surface(mesh, samples, seed=seed)
    tolerance = tolerance_share * float(np.linalg.norm(mesh.extents))
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    o3d.utility.random.seed(seed)
    hint = np.asarray(up_hint, dtype=np.float64) / np.linalg.norm(up_hint)
    best: Floor | None = None
    rest = cloud
    for _ in range(planes):
        if len(rest.points) < 3:
            break
        model, inliers = rest.segment_plane(tolerance, 3, 1000)
        share = len(inliers) / len(points)
        if share < min_share:
            break  # planes come largest first: the rest are smaller still
        # RANSAC's plane goes through 3 sampled points; a least-squares fit of all inliers
        # levels the model far better (the normal is the direction of least spread)
        on_plane = np.asarray(rest.points)[inliers]
        centre = on_plane.mean(axis=0)
        normal = np.linalg.svd(on_plane - centre, full_matrices=False)[2][2]
        if normal @ np.asarray(model[:3]) < 0:
            normal = -normal
        offset = float(-normal @ centre)
        dist = points @ normal + offset
        above = float((dist > 2 * tolerance).mean())
        below = float((dist < -2 * tolerance).mean())
        if below > above:  # flip so the model is on the positive side
            normal, offset, above, below = -normal, -offset, below, above
        tilt = float(np.degrees(np.arccos(np.clip(abs(normal @ hint), 0.0, 1.0))))
        if below <= max_below_share and tilt <= max_tilt_deg and (best is None or tilt < best.tilt_deg):
            best = Floor(tuple(normal.tolist()), offset, share, tolerance, tilt)
        rest = rest.select_by_index(inliers, invert=True)
    return best


def remove_floor(mesh: trimesh.Trimesh, floor: Floor) -> tuple[trimesh.Trimesh, int]:
    """Drop faces lying on the floor plane or below it; returns the mesh and faces removed."""
    height = floor.signed_distance(mesh.vertices)
    low = height < floor.tolerance
    drop = low[mesh.faces].all(axis=1)
    removed = int(drop.sum())
    if removed:
        mesh.update_faces(~drop)
        mesh.remove_unreferenced_vertices()
    return mesh, removed
