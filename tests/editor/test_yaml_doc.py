"""The site file written back from an edited document: meaning exact, comments and layout kept."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twin_server.editor.yaml_doc import dump_document, load_document, merge_document, same
from twin_server.site import load_site, parse_site

ROOT = Path(__file__).resolve().parents[2]
PILOT = (ROOT / "examples" / "pilot_site.yaml").read_text(encoding="utf-8")


def test_unchanged_document_gives_the_same_bytes():
    assert merge_document(PILOT, load_document(PILOT)) == PILOT
    contract = (ROOT / "examples" / "contract_site.yaml").read_text(encoding="utf-8")
    assert merge_document(contract, load_document(contract)) == contract


def test_an_edit_changes_only_its_line_and_keeps_every_comment():
    doc = load_document(PILOT)
    doc["machines"][1]["position"] = [8.25, 6.5]
    doc["shift"]["start"] = "08:00"
    out = merge_document(PILOT, doc)
    old, new = PILOT.splitlines(), out.splitlines()
    changed = [(a, b) for a, b in zip(old, new, strict=True) if a != b]
    assert changed == [
        ("    position: [8.0, 6.5]", "    position: [8.25, 6.5]"),
        ('  start: "08:30"', '  start: "08:00"'),
    ]
    assert [ln for ln in new if ln.lstrip().startswith("#")] == [
        ln for ln in old if ln.lstrip().startswith("#")
    ]
    assert same(load_document(out), doc)


def test_new_items_copy_their_siblings_style_and_removed_ones_go():
    doc = load_document(PILOT)
    doc["receivers"].append({"id": "R11", "position": [1.5, 1.2, 1.2]})
    doc["floor_markings"].pop(0)
    doc["plan"] = {"image": "plans/p.png", "m_per_px": 0.0166666667, "origin_px": [90, 690]}
    out = merge_document(PILOT, doc)
    assert "  - {id: R11, position: [1.5, 1.2, 1.2]}" in out.splitlines()
    assert "[[0.5, 3.2], [15.5, 3.2]]" not in out
    assert "# White walkway lines along the aisle, and the area for material racks." in out
    assert "  origin_px: [90, 690]" in out.splitlines()
    assert same(load_document(out), doc)


def test_texts_that_yaml_1_1_would_misread_are_quoted():
    doc = {
        "site": "s",
        "machines": [{"id": "M1", "zone": [[0, 0], [1, 0], [1, 1]], "name": "yes"}],
        "shift": {"start": "08:30", "end": "17:00"},
        "locators": ["010"],
    }
    out = dump_document(doc)
    back = yaml.safe_load(out)
    assert (
        back["shift"]["start"] == "08:30"
        and back["machines"][0]["name"] == "yes"
        and back["locators"] == ["010"]
    )
    parse_site(back)


def test_both_name_forms_are_kept_as_the_file_has_them():
    text = PILOT.replace(
        "    name: NC lathe No. 7\n    name_ja: NC旋盤 7号機\n",
        "    name: {ja: NC旋盤 7号機, en: NC lathe No. 7}\n",
    )
    doc = load_document(text)
    assert doc["machines"][1]["name"] == {"ja": "NC旋盤 7号機", "en": "NC lathe No. 7"}
    doc["machines"][1]["name"]["en"] = "Lathe seven"
    doc["machines"][0]["name"] = "Lathe three"
    out = merge_document(text, doc)
    assert "    name: {ja: NC旋盤 7号機, en: Lathe seven}" in out.splitlines()
    assert "    name: Lathe three" in out.splitlines() and "    name_ja: NC旋盤 3号機" in out.splitlines()


def test_a_new_file_reads_like_the_pilot():
    site_doc = load_document(PILOT)
    out = dump_document(site_doc)
    assert same(load_document(out), site_doc)
    lines = out.splitlines()
    assert "  - {id: W1, name: {ja: 作業者A, en: Operator A}, beacon: b-01}" in lines
    assert "name: {ja: 富山 機械加工工場（実証）, en: Toyama machining shop (pilot)}" in lines
    assert "    zone: [[1.6, 3.6], [4.4, 3.6], [4.4, 5.6], [1.6, 5.6]]" in lines
    assert "      - {id: light, kind: light, adc: mcp3008, adc_channel: 0}" in lines
    assert load_site  # the file validates as the pilot does
    assert parse_site(yaml.safe_load(out)) == parse_site(yaml.safe_load(PILOT))


_edits = st.lists(
    st.tuples(
        st.sampled_from(["move", "drop_marking", "add_receiver", "rename", "zone", "drop_key"]),
        st.floats(-50, 50, allow_nan=False),
        st.integers(0, 2),
    ),
    max_size=6,
)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(edits=_edits)
def test_any_edit_reads_back_exactly(edits):
    doc = load_document(PILOT)
    for kind, v, i in edits:
        d = copy.deepcopy(doc)
        if kind == "move":
            d["machines"][i]["position"] = [round(v, 3), 6.5]
        elif kind == "drop_marking" and d.get("floor_markings"):
            d["floor_markings"].pop(i % len(d["floor_markings"]))
        elif kind == "add_receiver":
            d["receivers"].append({"id": f"X{len(d['receivers'])}", "position": [v, 1.0, 1.2]})
        elif kind == "rename":
            d["machines"][i]["name"] = f"lathe {v:.1f}: 08:30"
        elif kind == "zone":
            d["machines"][i]["zone"] = [[v, 0.0], [v + 1, 0.0], [v + 1, 1.5], [v, 1.5]]
        elif kind == "drop_key":
            d["machines"][i].pop("device", None)
        doc = d
    out = merge_document(PILOT, doc)
    assert same(load_document(out), doc)
    assert out.count("#") >= PILOT.count("# ")  # the comments are still there
