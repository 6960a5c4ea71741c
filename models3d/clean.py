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
    "closed_surface",
    "component_labels",
    "component_labels_by_position",
    "normalise_visual",
    "position_ids",
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
    faces = mesh.faces
    repeated = (faces[:, 0] == faces[:, 1]) | (faces[:, 1] == faces[:, 2]) | (faces[:, 0] == faces[:, 2])
    area = mesh.area_faces
    # zero area up to float noise: collinear corners (relative to the typical face, so units do not matter)
    flat = area <= 1e-10 * max(float(np.mean(area)), np.finfo(float).tiny)
    good = ~(repeated | flat)
    degenerate = int((~good).sum())
    mesh.update_faces(good)
    n_faces = len(mesh.faces)
    # unique_faces treats the same three vertices in any order (either winding) as one face
    mesh.update_faces(mesh.unique_faces())
    duplicate = n_faces - len(mesh.faces)
    mesh.remove_unreferenced_vertices()
    return mesh, {"degenerate_faces": degenerate, "duplicate_faces": duplicate, "merged_vertices": merged}


def position_ids(mesh: trimesh.Trimesh) -> np.ndarray:
    """Per-vertex id that is equal for vertices at the same position.

    After :func:`remove_bad_faces` positions only repeat at texture seams, so untextured
    meshes skip the (costly) search.
    """
    if not isinstance(mesh.visual, trimesh.visual.TextureVisuals):
        return np.arange(len(mesh.vertices))
    _, inverse = trimesh.grouping.unique_rows(mesh.vertices)
    return np.asarray(inverse).reshape(-1)


def closed_surface(mesh: trimesh.Trimesh) -> bool:
    """Every edge shared by exactly two faces, counting vertices at one position as one
    (texture seams ignored). Same test as ``trimesh.Trimesh.is_watertight``, faster on big meshes."""
    if len(mesh.faces) == 0:
        return False
    faces = position_ids(mesh)[mesh.faces].astype(np.int64)
    edges = np.sort(faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
    keys = edges[:, 0] * (int(faces.max()) + 1) + edges[:, 1]
    _, counts = np.unique(keys, return_counts=True)
    return bool((counts == 2).all())


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
    ids = position_ids(mesh)
    return component_labels(ids[mesh.faces], int(ids.max()) + 1 if len(ids) else 0)


@dataclass
class Debris:
    """What :func:`remove_debris` removed."""

    components_before: int
    debris_components: int
    noise_components: int
    faces_removed: int


def _outlier_share(
    vertices: np.ndarray,
    vertex_label: np.ndarray,
    candidates: np.ndarray,
    nb_neighbors: int,
    std_ratio: float,
    sample: int = 20_000,
    per_component: int = 2_000,
    seed: int = 0,
) -> np.ndarray:
    """Share of statistical-outlier vertices in each candidate component.

    The test is open3d's ``remove_statistical_outlier``: a vertex is an outlier when its mean
    distance to its ``nb_neighbors`` nearest vertices exceeds the mean of that distance over
    the scan by ``std_ratio`` standard deviations. On a 1M-triangle scan running it on every
    vertex takes seconds, so the scan-wide mean/std come from a random sample and each
    candidate component is judged on up to ``per_component`` of its vertices (KD-tree over
    all vertices, so the distances are exact).
    """
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(seed)
    tree = cKDTree(vertices)
    k = min(nb_neighbors + 1, len(vertices))

    def mean_dist(idx: np.ndarray) -> np.ndarray:
        d, _ = tree.query(vertices[idx], k=k, workers=-1)
        return d[:, 1:].mean(axis=1)

    pick = rng.choice(len(vertices), size=min(sample, len(vertices)), replace=False)
    ref = mean_dist(pick)
    limit = float(ref.mean() + std_ratio * ref.std())
    share = np.zeros(len(candidates))
    for i, comp in enumerate(candidates):
        members = np.flatnonzero(vertex_label == comp)
        if len(members) > per_component:
            members = rng.choice(members, size=per_component, replace=False)
        share[i] = float((mean_dist(members) > limit).mean())
    return share


def remove_debris(
    mesh: trimesh.Trimesh,
    min_area_share: float = 0.005,
    noise_neighbors: int = 20,
    noise_std_ratio: float = 2.0,
    outliers: bool = True,
) -> tuple[trimesh.Trimesh, Debris]:
    """Drop small disconnected pieces and floating noise; the piece with most faces always stays.

    Parameters
    ----------
    min_area_share
        A component whose surface area is below this share of the total is debris.
    noise_neighbors, noise_std_ratio
        Statistical outlier test on the vertices (as open3d's ``remove_statistical_outlier``).
        Removing single outlier vertices would punch holes into a good surface, so a whole
        component is removed as floating noise when most of its vertices are outliers. The
        main piece and debris are not tested.
    outliers
        Run the outlier test at all (it costs a KD-tree over the vertices).
    """
    count, labels = component_labels_by_position(mesh)
    if count <= 1:
        return mesh, Debris(count, 0, 0, 0)
    area = np.bincount(labels, weights=mesh.area_faces, minlength=count)
    # the main part is the densest piece (most faces): long noise triangles can span more area
    largest = int(np.argmax(np.bincount(labels, minlength=count)))
    debris = area < min_area_share * area.sum()
    noise = np.zeros(count, dtype=bool)
    candidates = np.flatnonzero(~debris)
    candidates = candidates[candidates != largest]
    if outliers and len(candidates) and len(mesh.vertices) > noise_neighbors + 1:
        vertex_label = np.zeros(len(mesh.vertices), dtype=np.int64)
        vertex_label[mesh.faces.ravel()] = np.repeat(labels, 3)
        share = _outlier_share(mesh.vertices, vertex_label, candidates, noise_neighbors, noise_std_ratio)
        noise[candidates[share > 0.5]] = True
    drop = debris | noise
    drop[largest] = False
    keep_faces = ~drop[labels]
    removed = int((~keep_faces).sum())
    if removed:
        mesh.update_faces(keep_faces)
        mesh.remove_unreferenced_vertices()
    return mesh, Debris(count, int((debris & drop).sum()), int((noise & drop).sum()), removed)
