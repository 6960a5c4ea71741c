"""Surface from a point cloud: outlier removal, normals, screened Poisson (open3d)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh

__all__ = ["Reconstruction", "poisson_mesh"]


@dataclass
class Reconstruction:
    """What the point-cloud step did."""

    points_in: int
    noise_points: int
    points_used: int
    depth: int


def poisson_mesh(
    cloud: trimesh.PointCloud,
    depth: int = 8,
    max_points: int = 200_000,
    noise_neighbors: int = 20,
    noise_std_ratio: float = 2.0,
    max_gap_spacings: float = 3.0,
) -> tuple[trimesh.Trimesh, Reconstruction]:
    """Reconstruct a coloured triangle mesh from a point cloud.

    Parameters
    ----------
    depth
        Octree depth of the Poisson solve (8 gives about 256 cells across the model).
    max_points
        The cloud is voxel-downsampled to about this many points first (time and memory).
    noise_neighbors, noise_std_ratio
        Statistical outlier removal before the solve: floating noise would grow blobs.
    max_gap_spacings
        Poisson closes the surface everywhere, also where nothing was scanned; vertices
        farther from every input point than this many point spacings (median nearest-neighbour
        distance) are cut away. Unlike a density quantile, this leaves a fully scanned
        object closed.
    """
    import open3d as o3d

    points = np.asarray(cloud.vertices, dtype=np.float64)
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    colours = getattr(cloud, "colors", None)
    if colours is not None and len(colours) == len(points):
        pcd.colors = o3d.utility.Vector3dVector(np.asarray(colours, dtype=np.float64)[:, :3] / 255)
    n_in = len(points)
    if n_in > max_points:
        extent = float(np.linalg.norm(np.ptp(points, axis=0)))
        voxel = extent / np.sqrt(max_points)  # a surface holds about (extent/voxel)^2 voxels
        pcd = pcd.voxel_down_sample(voxel)
    n_down = len(pcd.points)
    pcd, kept = pcd.remove_statistical_outlier(nb_neighbors=noise_neighbors, std_ratio=noise_std_ratio)
    noise = n_down - len(kept)
    pcd.estimate_normals(o3d.geometry.KDTreeSearchParamKNN(knn=30))
    # Poisson needs outward normals; a consistent orientation over the tangent plane graph does it
    pcd.orient_normals_consistent_tangent_plane(15)
    # that orientation is consistent but may be inward throughout: a scanned object is seen
    # from outside, so make the normals point away from the centre on average
    pts, nrm = np.asarray(pcd.points), np.asarray(pcd.normals)
    if float(np.einsum("ij,ij->i", pts - pts.mean(axis=0), nrm).mean()) < 0:
        pcd.normals = o3d.utility.Vector3dVector(-nrm)
    mesh, _ = o3d.geometry.TriangleMesh.create_from_point_cloud_poisson(pcd, depth=depth)
    if max_gap_spacings > 0 and len(mesh.vertices):
        from scipy.spatial import cKDTree

        used = np.asarray(pcd.points)
        tree = cKDTree(used)
        spacing = float(np.median(tree.query(used, k=2)[0][:, 1]))
        gap, _ = tree.query(np.asarray(mesh.vertices), k=1)
        mesh.remove_vertices_by_mask(gap > max_gap_spacings * spacing)
    out = trimesh.Trimesh(np.asarray(mesh.vertices), np.asarray(mesh.triangles), process=False)
    if mesh.has_vertex_colors():
        rgb = np.clip(np.asarray(mesh.vertex_colors) * 255, 0, 255).round().astype(np.uint8)
        out.visual = trimesh.visual.ColorVisuals(out, vertex_colors=rgb)
    return out, Reconstruction(n_in, noise, len(kept), depth)
