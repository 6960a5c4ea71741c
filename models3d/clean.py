"""Mesh clean-up: bad faces, small disconnected debris, floating noise.

All functions take a :class:`trimesh.Trimesh` and return a new one plus counts; visuals (vertex
colours or UVs) follow the kept faces and vertices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import trimesh
from scipy.sparse.csgraph import connected_components

__all__ = [
    "Debris",
    "component_labels",
    "component_labels_by_position",
    "normalise_visual",
    "remove_bad_faces",
    "remove_debris",
]


def normalise_visual(mesh: trimesh.Trimesh) -> tuple[trimesh.Trimesh, str]:
    """Bring the mesh's colours into one of three forms the rest of the pipeline keeps.

    Returns the mesh and its kind: ``"texture"`` (UVs plus an image), ``"vertex_colors"``
    or ``"none"``. Face colours become vertex colours (averaged) so decimation can carry them;
    a texture whose image is missing leaves the mesh with its material's flat colour.
    """
    visual = mesh.visual
    if isinstance(visual, trimesh.visual.TextureVisuals):
        material = visual.material
        image = getattr(material, "image", None) or getattr(material, "baseColorTexture", None)
        if visual.uv is not None and len(visual.uv) == len(mesh.vertices) and image is not None:
            return mesh, "texture"
        # no usable image: keep the material's main colour as a flat vertex colour
        colour = np.asarray(getattr(material, "main_color", [200, 200, 200, 255]), dtype=np.uint8)
        mesh.visual = trimesh.visual.ColorVisuals(
            mesh, vertex_colors=np.tile(colour, (len(mesh.vertices), 1))
        )
        return mesh, "none"
    if isinstance(visual, trimesh.visual.ColorVisuals) and visual.defined:
        if visual.kind == "face":
            # trimesh averages the colours of the faces around each vertex
            mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=visual.vertex_colors)
        return mesh, "vertex_colors"
    return mesh, "none"


def remove_bad_faces(mesh: trimesh.Trimesh) -> tuple[trimesh.Trimesh, dict[str, int]]:
    """Merge coincident vertices, then drop degenerate and duplicate faces and unused vertices.

    Vertices are merged by position only where their UVs also agree, so texture seams survive.
    Returns the mesh and ``{"degenerate_faces": n, "duplicate_faces": n, "merged_vertices": n}``.
    """
    n_vertices = len(mesh.vertices)
    mesh.merge_vertices()
    merged = n_vertices - len(mesh.vertices)
    good = mesh.nondegenerate_faces(height=1e-12)
    degenerate = int((~good).sum())
    mesh.update_faces(good)
    n_faces = len(mesh.faces)
    # unique_faces treats the same three vertices in any order (either winding) as one face
    mesh.update_faces(mesh.unique_faces())
    duplicate = n_faces - len(mesh.faces)
    mesh.remove_unreferenced_vertices()
    return mesh, {"degenerate_faces": degenerate, "duplicate_faces": duplicate, "merged_vertices": merged}


def component_labels(faces: np.ndarray, n_vertices: int) -> tuple[int, np.ndarray]:
    """Connected components of a triangle mesh through shared vertices.

    Returns the number of components and the component label of every face. Vertices that
    share a position but not an index (texture seams) should be merged by the caller first
    if seams must not split components; :func:`component_labels_by_position` does that.
    """
    if len(faces) == 0:
        return 0, np.zeros(0, dtype=np.int64)
    rows = np.concatenate([faces[:, 0], faces[:, 1]])
    cols = np.concatenate([faces[:, 1], faces[:, 2]])
    graph = sp.coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n_vertices, n_vertices))
    _, vertex_label = connected_components(graph, directed=False)
    used, face_label = np.unique(vertex_label[faces[:, 0]], return_inverse=True)
    return len(used), face_label


def component_labels_by_position(mesh: trimesh.Trimesh) -> tuple[int, np.ndarray]:
    """Like :func:`component_labels` but vertices at the same position count as one."""
    _, inverse = np.unique(np.round(mesh.vertices, 9), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    return component_labels(inverse[mesh.faces], int(inverse.max()) + 1 if len(inverse) else 0)


@dataclass
class Debris:
    """What :func:`remove_debris` removed."""

    components_before: int
    debris_components: int
    noise_components: int
    faces_removed: int


def _outlier_vertices(vertices: np.ndarray, nb_neighbors: int, std_ratio: float) -> np.ndarray:
    """Boolean mask of statistical outliers (open3d): mean neighbour distance far above the rest."""
    import open3d as o3d

    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(vertices, dtype=np.float64)))
    _, kept = cloud.remove_statistical_outlier(nb_neighbors=nb_neighbors, std_ratio=std_ratio)
    mask = np.ones(len(vertices), dtype=bool)
    mask[np.asarray(kept, dtype=np.int64)] = False
    return mask


def remove_debris(
    mesh: trimesh.Trimesh,
    min_area_share: float = 0.005,
    noise_neighbors: int = 20,
    noise_std_ratio: float = 2.0,
    outliers: bool = True,
) -> tuple[trimesh.Trimesh, Debris]:
    """Drop small disconnected pieces and floating noise; the largest piece always stays.

    Parameters
    ----------
    min_area_share
        A component whose surface area is below this share of the total is debris.
    noise_neighbors, noise_std_ratio
        open3d statistical outlier removal on the vertices. Removing single outlier
        vertices would punch holes into a good surface, so a whole component is removed as
        floating noise when most of its vertices are outliers.
    outliers
        Run the outlier test at all (it costs a KD-tree over the vertices).
    """
    count, labels = component_labels_by_position(mesh)
    if count <= 1:
        return mesh, Debris(count, 0, 0, 0)
    area = np.bincount(labels, weights=mesh.area_faces, minlength=count)
    largest = int(np.argmax(area))
    debris = area < min_area_share * area.sum()
    noise = np.zeros(count, dtype=bool)
    if outliers and len(mesh.vertices) > noise_neighbors + 1:
        outlier = _outlier_vertices(mesh.vertices, noise_neighbors, noise_std_ratio)
        # share of outlier corners per component, counted over face corners
        corner_out = outlier[mesh.faces].mean(axis=1)
        faces_per = np.bincount(labels, minlength=count)
        out_share = np.bincount(labels, weights=corner_out, minlength=count) / np.maximum(faces_per, 1)
        noise = (out_share > 0.5) & ~debris
    drop = debris | noise
    drop[largest] = False
    keep_faces = ~drop[labels]
    removed = int((~keep_faces).sum())
    if removed:
        mesh.update_faces(keep_faces)
        mesh.remove_unreferenced_vertices()
    return mesh, Debris(count, int((debris & drop).sum()), int((noise & drop).sum()), removed)
