"""Benchmark: ``models3d prepare`` on a generated 1M-triangle scan.

Targets: prepared in < 20 s with < 2 GB peak memory on this machine; output GLB
<= 5 MB at the default budget (50k triangles). The baseline, measured in the same run, is a
process that only loads the same PLY with trimesh and writes it back as GLB (no processing):
the ratio says what the pipeline costs on top of plain I/O.

Run: ``.venv/bin/python bench/models3d/run.py [--triangles-in 1000000] [--keep DIR]``
Each measured step is a fresh subprocess; its peak RSS comes from ``os.wait4``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import trimesh

ROOT = Path(__file__).resolve().parents[2]
TARGET_S = 20.0
TARGET_RSS_MB = 2048.0
TARGET_GLB_MB = 5.0


def synthetic_scan(triangles: int, seed: int = 0) -> trimesh.Trimesh:
    """A machine-like scan of about ``triangles`` faces: a noisy ellipsoid body and head on a
    floor patch, with floating debris; vertex colours like a photogrammetry export."""
    rng = np.random.default_rng(seed)
    body = trimesh.creation.icosphere(subdivisions=7)  # 327,680 faces
    body.apply_scale([1.2, 0.9, 0.8])
    body.apply_translation([0.0, 0.9, 0.0])
    head = trimesh.creation.icosphere(subdivisions=7)
    head.apply_scale([0.5, 0.4, 0.5])
    head.apply_translation([0.6, 1.9, 0.0])
    debris = []
    for _ in range(200):
        d = trimesh.creation.icosphere(subdivisions=1, radius=0.01)
        d.apply_translation(rng.uniform([-2.5, 0.2, -2.5], [2.5, 2.5, 2.5]))
        debris.append(d)
    used = len(body.faces) + len(head.faces) + sum(len(d.faces) for d in debris)
    cells = int(np.sqrt(max(triangles - used, 2) / 2))
    ticks = np.linspace(-3.0, 3.0, cells + 1)
    xx, zz = np.meshgrid(ticks, ticks, indexing="ij")
    verts = np.column_stack([xx.ravel(), np.zeros(xx.size), zz.ravel()])
    idx = np.arange((cells + 1) ** 2).reshape(cells + 1, cells + 1)
    a, b, c, d_ = idx[:-1, :-1].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel(), idx[:-1, 1:].ravel()
    faces = np.vstack([np.column_stack([a, d_, c]), np.column_stack([a, c, b])])
    floor = trimesh.Trimesh(verts, faces, process=False)
    mesh = trimesh.util.concatenate([floor, body, head, *debris])
    # scanner noise: a few millimetres along the normals
    mesh.vertices += mesh.vertex_normals * rng.normal(scale=0.002, size=(len(mesh.vertices), 1))
    n = len(mesh.vertices)
    shade = np.clip(80 + 100 * mesh.vertices[:, 1:2] + rng.normal(scale=8, size=(n, 1)), 0, 255)
    colours = np.hstack([shade, shade * 0.9, shade * 0.8, np.full_like(shade, 255)]).astype(np.uint8)
    mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=colours)
    return mesh


def measure(argv: list[str]) -> tuple[float, float, int]:
    """Run a subprocess; return (wall seconds, peak RSS in MB, exit code)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        print(out)
    return wall, usage.ru_maxrss / 1024, proc.returncode  # ru_maxrss is in KiB on Linux


BASELINE = (
    "import sys, trimesh\n"
    "m = trimesh.load(sys.argv[1], process=False)\n"
    "open(sys.argv[2], 'wb').write(m.export(file_type='glb'))\n"
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--triangles-in", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="keep the generated scan and outputs here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        scan, out, base_out, report = (
            work / "scan_1m.ply",
            work / "machine.glb",
            work / "baseline.glb",
            work / "report.json",
        )
        t0 = time.perf_counter()
        mesh = synthetic_scan(args.triangles_in)
        scan.write_bytes(mesh.export(file_type="ply", encoding="binary"))
        gen_s = time.perf_counter() - t0
        scan_mb = scan.stat().st_size / 1e6
        print(f"scan: {len(mesh.faces):,} triangles, {scan_mb:.1f} MB PLY (made in {gen_s:.1f} s)")
        del mesh

        base_s, base_mb, base_rc = measure([sys.executable, "-c", BASELINE, str(scan), str(base_out)])
        cli = [sys.executable, "-m", "models3d", "prepare", str(scan), "--out", str(out)]
        prep_s, prep_mb, prep_rc = measure([*cli, "--report", str(report)])
        if base_rc or prep_rc:
            print(f"FAILED: baseline rc={base_rc}, prepare rc={prep_rc}")
            return 1
        data = json.loads(report.read_text())
        glb_mb = out.stat().st_size / 1e6
        print(f"baseline (load + GLB export, no processing): {base_s:.2f} s, peak RSS {base_mb:.0f} MB")
        budget = data["triangles_after"]
        print(
            f"prepare (default budget, {budget:,} triangles out): {prep_s:.2f} s, peak RSS {prep_mb:.0f} MB"
        )
        print("  steps: " + ", ".join(f"{k} {v:.2f} s" for k, v in data["timings_s"].items()))
        print(
            f"  removed {data['components_removed']} components, "
            f"floor {data['floor_faces_removed']:,} faces; "
            f"size {' x '.join(f'{v:.2f}' for v in data['size_m'])} m"
        )
        print(f"ratio prepare/baseline: time x{prep_s / base_s:.2f}, memory x{prep_mb / base_mb:.2f}")
        raw_mb = base_out.stat().st_size / 1e6
        print(f"output GLB {glb_mb:.2f} MB (baseline GLB of the raw scan {raw_mb:.1f} MB)")
        checks = {
            f"time < {TARGET_S:.0f} s": prep_s < TARGET_S,
            f"peak RSS < {TARGET_RSS_MB:.0f} MB": prep_mb < TARGET_RSS_MB,
            f"GLB <= {TARGET_GLB_MB:.0f} MB": glb_mb <= TARGET_GLB_MB,
        }
        for name, ok in checks.items():
            print(f"  {'ok  ' if ok else 'MISS'} {name}")
        return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
