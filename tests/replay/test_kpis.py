"""The KPI strip's figures (``GET /api/kpis/{site}``) against a shift computed by hand."""

from __future__ import annotations

import json
import shutil

import httpx
import pytest
from viewer_harness import DAY0_START_S, PILOT_SITE, serve

from twin_server.api.viewer import create_viewer_app
from twin_server.kpis import changeover_starts, shift_kpis
from twin_server.result import Result
from twin_server.store.replay_data import FileReplayProvider, clip_result

SITE = "toyama-pilot"
T0 = DAY0_START_S  # 2023-02-06 08:30 Asia/Tokyo


def hand_shift(t0: float, jig_s: float = 600) -> dict:
    """Two hours of the pilot, small enough to compute every figure by hand (see the test)."""

    def iv(a: float, b: float, **kw) -> dict:
        return {**kw, "start": t0 + a, "end": t0 + b}

    return {
        "site": SITE,
        "window": {"start": t0, "end": t0 + 7200},
        "rejected_rows": 0,
        "machine_states": [
            iv(0, 1800, machine="M3", state="running"),
            iv(1800, 3600, machine="M3", state="stopped"),
            iv(3600, 7200, machine="M3", state="running"),
            iv(0, 7200, machine="M7", state="running"),
        ],
        "tasks": [
            iv(1800, 1800 + jig_s, machine="M3", task="jig_change", worker="W1"),
            iv(2460, 2700, machine="M3", task="tool_change", worker="W1"),  # 60 s later: same changeover
            iv(3000, 3300, machine="M3", task="material_setting", worker="W2"),  # 300 s later: a new one
        ],
        "worker_zones": [
            iv(0, 1700, worker="W1", zone="none"),
            iv(1700, 2800, worker="W1", zone="M3"),
            iv(2800, 7200, worker="W1", zone="none"),
            iv(0, 2900, worker="W2", zone="none"),
            iv(2900, 3500, worker="W2", zone="M3"),
            iv(3500, 7200, worker="W2", zone="M7"),
        ],
        "beacon_lag": [],
    }


@pytest.fixture(scope="module")
def hand_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("kpi-site")
    shutil.copy(PILOT_SITE, d / "site.yaml")
    # The earlier day: W1's jig change took 20 min; the day shown: 10 min.
    (d / "day0.json").write_text(json.dumps(hand_shift(T0, jig_s=1200)))
    (d / "day1.json").write_text(json.dumps(hand_shift(T0 + 86400)))
    return d


@pytest.fixture(scope="module")
def client(hand_dir, tmp_path_factory):
    app = create_viewer_app(
        FileReplayProvider(hand_dir), tmp_path_factory.mktemp("kpi-data"), build_scenes=False
    )
    with serve(app) as url, httpx.Client(base_url=url, timeout=30) as c:
        yield c


def test_kpis_of_a_hand_computed_shift(client):
    r = client.get(f"/api/kpis/{SITE}")
    assert r.status_code == 200, r.text
    k = r.json()
    assert k["day"] == "2023-02-07"
    m3 = k["machines"]["M3"]
    # Running 0-1800 and 3600-7200 of 7200 s.
    assert m3["utilisation"] == pytest.approx(0.75)
    # jig 1800-2400 + tool 2460-2700 are one changeover (60 s apart); material 3000-3300 another.
    assert m3["changeover_count"] == 2
    assert m3["changeover_min"] == pytest.approx((600 + 240 + 300) / 60, abs=0.01)
    assert m3["by_task"]["jig_change"] == {
        "count": 1,
        "min": 10.0,
        "longest": {"start": T0 + 86400 + 1800, "end": T0 + 86400 + 2400, "min": 10.0},
    }
    assert m3["by_task"]["tool_change"]["min"] == 4.0
    assert m3["by_task"]["program_input"] == {"count": 0, "min": 0.0, "longest": None}
    # Stopped 1800-3600 minus tasks = 2400-2460, 2700-3000, 3300-3600; attended (W1 1700-2800,
    # W2 2900-3500): 2400-2460 (60 s) + 2700-2800 (100) + 2900-3000 (100) + 3300-3500 (200) = 460 s.
    assert m3["attended_idle_min"] == pytest.approx(460 / 60, abs=0.01)
    assert m3["longest_attended_idle"]["start"] == T0 + 86400 + 3300
    assert m3["longest_stop"] == {"start": T0 + 86400 + 1800, "end": T0 + 86400 + 3600, "min": 30.0}
    assert m3["first_changeover"] == T0 + 86400 + 1800
    m7 = k["machines"]["M7"]
    assert (m7["utilisation"], m7["changeover_count"]) == (1.0, 0)
    assert (m7["attended_idle_min"], m7["longest_stop"]) == (0, None)
    assert k["machines"]["M10"]["utilisation"] is None  # no machine state at all: unknown, not 0 %
    w1 = k["workers"]["W1"]
    assert w1["changeover_min"] == 14.0
    assert w1["by_task"]["jig_change"]["median_min"] == 10.0
    assert w1["by_task"]["jig_change"]["own_median_min"] == 20.0  # the earlier day
    assert k["workers"]["W2"]["by_task"]["material_setting"]["own_median_min"] == 5.0
    assert k["workers"]["W2"]["by_task"]["jig_change"]["own_median_min"] is None
    # The trend: both days, oldest first.
    assert [d["day"] for d in k["trend"]] == ["2023-02-06", "2023-02-07"]
    assert [d["machines"]["M3"]["changeover_min"] for d in k["trend"]] == [29.0, 19.0]
    assert [d["workers"]["W1"]["changeover_min"] for d in k["trend"]] == [24.0, 14.0]


def test_kpis_of_an_earlier_day_and_errors(client):
    k = client.get(f"/api/kpis/{SITE}", params={"day": "2023-02-06"}).json()
    assert k["machines"]["M3"]["by_task"]["jig_change"]["min"] == 20.0
    assert [d["day"] for d in k["trend"]] == ["2023-02-06"]
    assert client.get(f"/api/kpis/{SITE}", params={"day": "2023-03-01"}).status_code == 404
    assert client.get(f"/api/kpis/{SITE}", params={"day": "Monday"}).status_code == 422
    assert client.get(f"/api/kpis/{SITE}", params={"days": 21}).status_code == 422
    assert client.get("/api/kpis/nowhere").status_code == 404


def test_kpis_are_computed_from_the_replay_document(client, shifts, tmp_path):
    """One computation: the route's figures are those of the replay payload's own result."""
    app = create_viewer_app(FileReplayProvider(shifts.dir), tmp_path, build_scenes=False)
    with serve(app) as url, httpx.Client(base_url=url, timeout=30) as c:
        replay = c.get(f"/api/replay/{SITE}").json()
        kpis = c.get(f"/api/kpis/{SITE}").json()
    assert kpis["shift"]["day"] == replay["shift"]["day"]
    mine = shift_kpis(Result.from_dict(replay["result"]), ["M3", "M7", "M10"], ["W1", "W2"])
    for m, v in mine["machines"].items():
        assert kpis["machines"][m]["changeover_count"] == v["changeover_count"]
        assert kpis["machines"][m]["utilisation"] == pytest.approx(v["utilisation"], abs=1e-4)
        assert kpis["machines"][m]["attended_idle_min"] == pytest.approx(v["attended_idle_min"], abs=0.01)
    # The replay's J/K changeovers and the strip's count are the same rule.
    tasks = [(t["start"], t["end"]) for t in replay["result"]["tasks"] if t["machine"] == "M3"]
    assert len(changeover_starts(tasks)) == kpis["machines"]["M3"]["changeover_count"] > 0
    assert len(kpis["trend"]) == 3


def test_clip_then_kpis_ignores_what_lies_outside_the_shift():
    doc = hand_shift(T0)
    clipped = clip_result(doc, T0, T0 + 2000)
    k = shift_kpis(Result.from_dict(clipped), ["M3"], ["W1"])
    assert k["machines"]["M3"]["utilisation"] == pytest.approx(1800 / 2000)
    assert k["machines"]["M3"]["by_task"]["jig_change"]["min"] == pytest.approx(200 / 60)
