"""The live check: validator problems with the path of their shape; warnings for overlaps."""

from __future__ import annotations

import math
from pathlib import Path

import yaml

from twin_server.editor.checks import check_document, overlap_area_m2

ROOT = Path(__file__).resolve().parents[2]


def _pilot() -> dict:
    return yaml.safe_load((ROOT / "examples" / "pilot_site.yaml").read_text(encoding="utf-8"))


def test_the_pilot_has_no_problem_and_no_warning():
    problems, warnings, site = check_document(_pilot(), "toyama-pilot")
    assert problems == [] and warnings == [] and site is not None


def test_problems_carry_the_path_of_their_shape():
    doc = _pilot()
    doc["machines"][2]["zone"] = [[0, 0], [1, 1]]
    doc["receivers"][1]["machine"] = "M99"
    doc["plan"] = {"image": "p.png", "m_per_px": 0, "origin_px": [0, 0]}
    problems, _, site = check_document(doc, "toyama-pilot")
    paths = {p.path: p.message for p in problems}
    assert site is None
    assert "polygon needs >= 3 points" in paths["machines[2].zone"]
    assert "greater than 0" in paths["plan.m_per_px"]
    doc = _pilot()
    doc["receivers"][1]["machine"] = "M99"
    problems, _, _ = check_document(doc, "toyama-pilot")
    assert [(p.path, p.message) for p in problems] == [("receivers[1].machine", "unknown machine 'M99'")]


def test_negative_scale_and_another_site_id_are_problems():
    doc = _pilot()
    doc["plan"] = {"image": "p.png", "m_per_px": -0.01, "origin_px": [0, 0]}
    problems, _, _ = check_document(doc, "toyama-pilot")
    assert [p.path for p in problems] == ["plan.m_per_px"]
    problems, _, _ = check_document(_pilot(), "another")
    assert problems[0].path == "site" and problems[0].code == "site_id"


def test_overlapping_zones_warn_touching_ones_do_not():
    doc = _pilot()
    doc["machines"][1]["zone"] = [[4.4, 3.6], [9.4, 3.6], [9.4, 5.6], [4.4, 5.6]]  # shares M3's edge
    assert check_document(doc, "toyama-pilot")[1] == []
    doc["machines"][1]["zone"] = [[4.0, 3.6], [9.4, 3.6], [9.4, 5.6], [4.0, 5.6]]  # 0.4 x 2.0 m over M3's
    problems, warnings, _ = check_document(doc, "toyama-pilot")
    assert problems == []
    assert [(w.path, w.code) for w in warnings] == [("machines[1].zone", "zones_overlap")]
    assert "0.80 m²" in warnings[0].message and "M3" in warnings[0].message


def test_bodies_overlapping_and_things_outside_the_floor_warn():
    doc = _pilot()
    doc["machines"][1]["position"] = [4.0, 6.5]
    doc["receivers"][2]["position"] = [17.0, 5.4, 1.2]
    codes = sorted(w.code for w in check_document(doc, "toyama-pilot")[1])
    assert codes == ["bodies_overlap", "outside_floor"]


def test_overlap_area_is_right_and_bounded_for_huge_shapes():
    a = [(0, 0), (2, 0), (2, 2), (0, 2)]
    b = [(1, 1), (3, 1), (3, 3), (1, 3)]
    assert math.isclose(overlap_area_m2(a, b), 1.0, rel_tol=0.02)
    huge = [(0, 0), (1e7, 0), (1e7, 1e7), (0, 1e7)]
    assert math.isclose(overlap_area_m2(huge, huge), 1e14, rel_tol=0.02)
    assert overlap_area_m2(a, [(float("inf"), 0), (1, 1), (0, 1)]) == 0.0
