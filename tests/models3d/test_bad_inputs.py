"""Bad scans and bad options through the real CLI: one clear line, exit code 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh
from m3d_helpers import run_cli

from models3d.__main__ import main


def _assert_clean_error(result_code: int, err: str, *needles: str) -> None:
    assert result_code == 2
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_empty_file_via_subprocess(tmp_path: Path) -> None:
    scan = tmp_path / "empty.obj"
    scan.write_bytes(b"")
    result = run_cli("prepare", str(scan), "--out", str(tmp_path / "o.glb"))
    _assert_clean_error(result.returncode, result.stderr, "empty.obj", "empty")
    assert not (tmp_path / "o.glb").exists()


def test_unknown_format_via_subprocess(tmp_path: Path) -> None:
    scan = tmp_path / "machine.fbx"
    scan.write_bytes(b"Kaydara FBX Binary  \x00")
    result = run_cli("prepare", str(scan), "--out", str(tmp_path / "o.glb"))
    _assert_clean_error(result.returncode, result.stderr, "machine.fbx", "unknown scan format")


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("garbage.stl", b"this is not an STL file at all\n" * 3, "garbage.stl"),
        ("garbage.glb", b"glTF\x02\x00\x00\x00garbage", "garbage.glb"),
        ("lines.obj", b"v 0 0 0\nv 1 0 0\nv 1 1 0\nl 1 2 3\n", "lines.obj"),
        (
            "few.ply",
            b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
            b"property float z\nend_header\n0 0 0\n1 0 0\n0 1 0\n",
            "too few",
        ),
        ("scan.usdz", b"PK\x03\x04 not a usd package", "scan.usdz"),
    ],
)
def test_not_a_mesh(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: bytes, needle: str
) -> None:
    scan = tmp_path / name
    scan.write_bytes(content)
    code = main(["prepare", str(scan), "--out", str(tmp_path / "o.glb")])
    _assert_clean_error(code, capsys.readouterr().err, needle)


def test_missing_file_and_bad_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["prepare", str(tmp_path / "nope.ply"), "--out", str(tmp_path / "o.glb")])
    _assert_clean_error(code, capsys.readouterr().err, "no such file")
    box = trimesh.creation.box()
    scan = tmp_path / "box.ply"
    box.export(scan)
    code = main(["prepare", str(scan), "--out", str(tmp_path / "o.glb"), "--dimension", "girth=2"])
    _assert_clean_error(code, capsys.readouterr().err, "--dimension")
    code = main(["prepare", str(scan), "--out", str(tmp_path / "o.glb"), "--dimension", "height=-1"])
    _assert_clean_error(code, capsys.readouterr().err, "> 0")
    code = main(["prepare", str(scan), "--out", str(tmp_path / "o.glb"), "--triangles", "0"])
    _assert_clean_error(code, capsys.readouterr().err, "--triangles")
    code = main(["prepare", str(scan), "--out", str(tmp_path / "o.glb"), "--min-component-share", "2"])
    _assert_clean_error(code, capsys.readouterr().err, "--min-component-share")
    # the front cannot be the up axis
    code = main(["prepare", str(scan), "--out", str(tmp_path / "o.glb"), "--front", "+y", "--up", "+y"])
    _assert_clean_error(code, capsys.readouterr().err, "--front")


def test_nan_vertices_are_dropped_with_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    box = trimesh.creation.box()
    vertices = np.vstack([box.vertices, [[np.nan, 0, 0]]])
    faces = np.vstack([box.faces, [[0, 1, 8]]])
    scan = tmp_path / "nan.obj"
    trimesh.Trimesh(vertices, faces, process=False).export(scan)
    assert main(["prepare", str(scan), "--out", str(tmp_path / "o.glb")]) == 0
    assert "NaN" in capsys.readouterr().out


def test_bad_site_file_via_subprocess(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text("site: x\nmachines: []\n")
    result = run_cli("scene", "--site", str(site), "--out", str(tmp_path / "f.glb"))
    _assert_clean_error(result.returncode, result.stderr, "machines")
