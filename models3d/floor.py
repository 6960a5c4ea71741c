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

from models3d.clean import closed_surface

__all__ = ["Floor", "find_floor", "remove_floor", "sample_by_area"]


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


def sample_by_area(vertices: np.ndarray, faces: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """``count`` points uniformly distributed over the surface (area-weighted faces, uniform
    barycentric coordinates)."""
    tri = vertices[faces]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    rng = np.random.default_rng(seed)
    cdf = np.cumsum(area)
    pick = np.minimum(np.searchsorted(cdf, rng.uniform(0, cdf[-1], count)), len(faces) - 1)
    u, v = rng.uniform(size=(2, count))
    flip = u + v > 1  # fold the far half of the parallelogram back into the triangle
    u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
    t = tri[pick]
    return t[:, 0] + u[:, None] * (t[:, 1] - t[:, 0]) + v[:, None] * (t[:, 2] - t[:, 0])


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
    closed: bool | None = None,
    rejected: list[Floor] | None = None,
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
    closed
        Whether the mesh is closed, when the caller already knows (costly on big meshes).
    rejected
        When given, planes that would be a floor but for their tilt are appended to it (so the
        caller can suggest ``--up``).
    """
    import open3d as o3d

    if closed is None:
        closed = closed_surface(mesh)
    if len(mesh.faces) == 0 or closed:
        return None
    points = sample_by_area(mesh.vertices, mesh.faces, samples, seed)
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
        if below <= max_below_share:
            candidate = Floor(tuple(normal.tolist()), offset, share, tolerance, tilt)
            if tilt > max_tilt_deg:
                if rejected is not None:
                    rejected.append(candidate)
            elif best is None or tilt < best.tilt_deg:
                best = candidate
        rest = rest.select_by_index(inliers, invert=True)
    return best


def remove_floor(
    mesh: trimesh.Trimesh, floor: Floor, max_slope_deg: float = 45.0
) -> tuple[trimesh.Trimesh, int]:
    """Drop the floor's faces; returns the mesh and the number of faces removed.

    A face is floor when all its corners lie within the tolerance of the plane and it lies
    roughly flat (normal within ``max_slope_deg`` of the plane's), so the bottom strip of a
    machine's vertical sides stays. Faces entirely below the plane (noise under the floor)
    go too.
    """
    height = floor.signed_distance(mesh.vertices)
    corners = height[mesh.faces]
    near = (corners < floor.tolerance).all(axis=1)  # on the plane or below it
    below = (corners < -floor.tolerance).all(axis=1)
    drop = below.copy()
    idx = np.flatnonzero(near & ~below)
    tri = mesh.vertices[mesh.faces[idx]]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    length = np.linalg.norm(normal, axis=1)
    cos = np.abs(normal @ np.asarray(floor.normal)) / np.maximum(length, 1e-300)
    drop[idx] = cos > np.cos(np.radians(max_slope_deg))
    removed = int(drop.sum())
    if removed:
        mesh.update_faces(~drop)
        mesh.remove_unreferenced_vertices()
    return mesh, removed
