"""Site configuration: loads the examples, names the key path of every problem."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from twin_server.site import SiteError, load_site, parse_site, point_in_polygon

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pilot_dict() -> dict:
    return yaml.safe_load((ROOT / "examples" / "pilot_site.yaml").read_text())


def test_pilot_site_reproduces_the_pilot(pilot_site) -> None:
    assert pilot_site.machine_ids == ["M3", "M7", "M10"]
    assert [m.name for m in pilot_site.machines] == ["NC lathe No. 3", "NC lathe No. 7", "NC lathe No. 10"]
    assert len(pilot_site.workers) == 2
    assert pilot_site.language == "ja"
    # Every machine's zone is in front of it and maps back to that machine.
    for m in pilot_site.machines:
        xs = [p[0] for p in m.zone]
        ys = [p[1] for p in m.zone]
        assert pilot_site.zone_at(sum(xs) / len(xs), sum(ys) / len(ys)) == m.id
    assert pilot_site.zone_at(8.0, 2.0) == "none"
    assert {s.channel for s in pilot_site.machines[0].sensors if s.kind == "switch"} == {
        "tool_change",
        "program_input",
        "material_setting",
    }


def test_contract_site_file_is_a_valid_subset() -> None:
    site = load_site(ROOT / "examples" / "contract_site.yaml")
    assert site.site == "demo"
    assert site.receivers[0].position == (1.0, 0.5, 1.2)
    assert site.machines[0].centre == pytest.approx((1.0, 0.75))
    assert site.shift.start.hour == 8  # default calendar


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["machines"][2].__setitem__("zone", [[0, 0], [1, 1]]),
            "machines[2].zone: polygon needs >= 3 points",
        ),
        (
            lambda d: d["machines"][0].__setitem__("zone", [[0, 0], [1, 1], [2, 2]]),
            "machines[0].zone: polygon has zero area",
        ),
        (lambda d: d["workers"][1].pop("beacon"), "workers[1].beacon: required key is missing"),
        (lambda d: d["workers"][0].__setitem__("colour", "red"), "workers[0].colour: unknown key"),
        (
            lambda d: d["receivers"][1].__setitem__("machine", "M99"),
            "receivers[1].machine: unknown machine 'M99'",
        ),
        (lambda d: d["machines"][1].__setitem__("id", "M3"), "machines: duplicate id 'M3'"),
        (
            lambda d: d["machines"][0]["sensors"][2].__setitem__("channel", "coffee"),
            "machines[0].sensors[2]: switch channel must be one of",
        ),
        (lambda d: d["machines"][0]["sensors"][0].__setitem__("gpio", 99), "machines[0].sensors[0].gpio"),
        (lambda d: d.__setitem__("timezone", "Mars/Olympus"), "timezone: unknown timezone"),
        (lambda d: d["shift"]["breaks"][0].__setitem__("end", "07:00"), "shift: break 'morning break'"),
        (
            lambda d: d["floor_markings"][0].__setitem__("points", [[0, 0]]),
            "floor_markings[0]: a line needs >= 2",
        ),
        (lambda d: d.__setitem__("machines", []), "machines: List should have at least 1 item"),
    ],
)
def test_errors_name_the_key_path(pilot_dict: dict, mutate, expected: str) -> None:
    data = copy.deepcopy(pilot_dict)
    mutate(data)
    with pytest.raises(SiteError) as info:
        parse_site(data)
    assert any(p.startswith(expected) for p in info.value.problems), info.value.problems
    assert "\n" not in str(info.value)


def test_all_problems_are_reported_at_once(pilot_dict: dict) -> None:
    data = copy.deepcopy(pilot_dict)
    data["machines"][2]["zone"] = [[0, 0]]
    data["workers"][0]["foo"] = 1
    with pytest.raises(SiteError) as info:
        parse_site(data)
    assert len(info.value.problems) == 2
    assert "(and 1 more problem(s))" in str(info.value)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("site: [unclosed", "not valid YAML at line"),
        ("- just\n- a list\n", "must be a YAML mapping"),
        (b"\xff\xfe\x00binary", "not UTF-8"),
    ],
)
def test_unreadable_site_files(tmp_path: Path, content, expected: str) -> None:
    p = tmp_path / "site.yaml"
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(SiteError, match=expected):
        load_site(p)
    with pytest.raises(SiteError, match="cannot read site file"):
        load_site(tmp_path / "missing.yaml")


@given(st.floats(-10, 10), st.floats(-10, 10))
def test_point_in_polygon_matches_box_test(x: float, y: float) -> None:
    box = [(0.0, 0.0), (2.0, 0.0), (2.0, 1.5), (0.0, 1.5)]
    inside = 0 < x < 2 and 0 < y < 1.5
    on_edge = x in (0.0, 2.0) or y in (0.0, 1.5)
    if not on_edge:
        assert point_in_polygon(x, y, box) == inside


def test_display_names_in_both_languages_or_the_old_single_string(pilot_site):
    from twin_server.site import parse_site

    # The pilot file uses `name: {ja, en}` for the site, workers and breaks and the old
    # `name` + `name_ja` for machines: both forms load the same way.
    assert pilot_site.name == "Toyama machining shop (pilot)"
    assert pilot_site.name_ja == "富山 機械加工工場（実証）"
    assert [(w.name, w.name_ja) for w in pilot_site.workers] == [
        ("Operator A", "作業者A"),
        ("Operator B", "作業者B"),
    ]
    assert pilot_site.shift.breaks[1].name_ja == "昼休み"
    assert pilot_site.machines[0].name_ja == "NC旋盤 3号機"
    base = {"site": "s", "machines": [{"id": "M1", "zone": [[0, 0], [1, 0], [1, 1]]}]}
    one = parse_site({**base, "name": "Plain name"})
    assert (one.name, one.name_ja) == ("Plain name", "")
    ja_only = parse_site({**base, "workers": [{"id": "W1", "beacon": "b", "name": {"ja": "山田"}}]})
    assert (ja_only.workers[0].name, ja_only.workers[0].name_ja) == ("山田", "山田")
    for bad, msg in (
        ({"name": {"jp": "x"}}, "languages are ja and en"),
        ({"name": {"ja": 3}}, "must be text"),
        ({"name": {"ja": "x"}, "name_ja": "y"}, "not both"),
    ):
        with pytest.raises(SiteError, match=msg):
            parse_site({**base, **bad})
