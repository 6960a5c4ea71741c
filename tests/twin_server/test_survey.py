"""A site survey in the site file drives RSSI zones in ``analyze`` (CLI) and the server.

Data: the ble_tetam excerpt (CC0, tests/data/ble_tetam): its stationary survey points, a
zigzag track as the calibration walk, and a rectangular track to analyse.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from twin_server.__main__ import main
from twin_server.analysis.bleeval import circle
from twin_server.analysis.survey import SurveyError, survey_map, survey_points
from twin_server.evaluate import label_grid, score_times
from twin_server.site import SiteError, load_site

DATA = Path(__file__).resolve().parents[1] / "data" / "ble_tetam"
BEACON = "e78f135624ce"
TRACK = "rectangular_without_rotation"
WALK = "zigzagging_without_rotation"


def _readings_csv(rssi: pd.DataFrame, path: Path) -> None:
    pd.DataFrame(
        {
            "time": rssi["t_seconds"],
            "kind": "rssi",
            "source": rssi["receiver_id"],
            "channel": rssi["beacon_id"],
            "value": rssi["rssi_dbm"],
        }
    ).to_csv(path, index=False)


def _site_doc(survey: dict | None) -> dict:
    rec = pd.read_csv(DATA / "receivers.csv", dtype={"receiver_id": str})
    pis = rec[rec["alias"].str.endswith("0")]
    doc = {
        "site": "tetam",
        "floor": [20.66, 17.64],
        "machines": [
            {"id": g, "zone": circle(float(r.x_m), float(r.y_m), 2.5)}
            for g, r in zip(pis["group"], pis.itertuples(), strict=True)
        ],
        "workers": [{"id": "W", "beacon": BEACON}],
        "receivers": [{"id": r.receiver_id, "position": [r.x_m, r.y_m, r.z_m]} for r in rec.itertuples()],
    }
    if survey is not None:
        doc["survey"] = survey
    return doc


@pytest.fixture
def site_dir(tmp_path: Path) -> Path:
    pts = pd.read_csv(DATA / "survey_points.csv", dtype={"receiver_id": str})
    pts.rename(columns={"rssi_mean": "rssi_dbm"}).to_csv(tmp_path / "points.csv", index=False)
    _readings_csv(pd.read_csv(DATA / f"{WALK}_rssi.csv", dtype={"receiver_id": str}), tmp_path / "walk.csv")
    gt = pd.read_csv(DATA / f"{WALK}_gt.csv")
    gt.rename(columns={"t_seconds": "time"}).to_csv(tmp_path / "walk_track.csv", index=False)
    track = pd.read_csv(DATA / f"{TRACK}_rssi.csv", dtype={"receiver_id": str})
    _readings_csv(track, tmp_path / "readings.csv")
    return tmp_path


def _write_site(d: Path, survey: dict | None) -> Path:
    path = d / "site.yaml"
    path.write_text(yaml.safe_dump(_site_doc(survey)))
    return path


def _zone_accuracy(result_path: Path) -> float:
    res = json.loads(result_path.read_text())
    times = score_times(res["window"]["start"], res["window"]["end"])
    pred = label_grid([(z["start"], z["end"], z["zone"]) for z in res["worker_zones"]], times, "none")
    zones = pd.read_csv(DATA / f"{TRACK}_zones.csv")
    pos = np.searchsorted(zones["t_seconds"].to_numpy(), times, side="right") - 1
    truth = np.where(
        zones["zone"].to_numpy()[np.maximum(pos, 0)] == "aisle",
        "none",
        zones["zone"].to_numpy()[np.maximum(pos, 0)],
    )
    return float(np.mean(pred == truth))


def _analyze(site_path: Path, d: Path, capsys) -> tuple[int, str, Path]:
    out = d / "result.json"
    code = main(
        ["analyze", "--site", str(site_path), "--readings", str(d / "readings.csv"), "--out", str(out)]
    )
    return code, capsys.readouterr().err, out


def test_cli_uses_the_site_survey(site_dir: Path, capsys) -> None:
    """Same recording, same command: path-loss model without a survey, fingerprint map with one."""
    code, _, out = _analyze(_write_site(site_dir, None), site_dir, capsys)
    assert code == 0
    without = _zone_accuracy(out)
    survey = {
        "points": "points.csv",
        "walks": [{"readings": "walk.csv", "track": "walk_track.csv", "beacon": BEACON}],
        "walk_height_m": 1.75,
    }
    code, err, out = _analyze(_write_site(site_dir, survey), site_dir, capsys)
    assert code == 0, err
    assert "survey:" in err and "receiver-point(s)" in err
    res = json.loads(out.read_text())
    assert res["analysis"]["rssi_model"] == "survey fingerprint map"
    with_survey = _zone_accuracy(out)
    print(f"zone accuracy: {without:.3f} without the survey, {with_survey:.3f} with it")
    assert with_survey >= 0.77
    assert with_survey > without + 0.05


def test_blocked_areas_keep_the_walker_out(site_dir: Path) -> None:
    desk = [[9.0, 8.0], [11.0, 8.0], [11.0, 10.0], [9.0, 10.0]]
    site = load_site(_write_site(site_dir, {"points": "points.csv", "blocked": [desk]}))
    fmap, _ = survey_map(site, site_dir)
    gx, gy = fmap.cell_centres()
    inside = (gx > 9.0) & (gx < 11.0) & (gy > 8.0) & (gy < 10.0)
    assert inside.any()
    assert (fmap.walkable[inside] < 0.1).all() and (fmap.walkable[~inside] == 1.0).all()
    # Zones are the site's polygons: a cell at a Pi is in its station, a far corner in none.
    assert fmap.zones == ["station1", "station2", "station3", "station4"]
    assert fmap.zone_of_cell[int(7.0 / fmap.cell_m), int(7.09 / fmap.cell_m)] == 0
    assert fmap.zone_of_cell[0, 0] == len(fmap.zones)


def test_survey_rows_left_out_are_counted(site_dir: Path) -> None:
    pts = pd.read_csv(site_dir / "points.csv", dtype=str)
    pts.loc[0, "rssi_dbm"] = "oops"
    pts.loc[1, "receiver_id"] = "not-a-receiver"
    pts.loc[2, "rssi_dbm"] = "3"
    pts.to_csv(site_dir / "points.csv", index=False)
    site = load_site(_write_site(site_dir, {"points": "points.csv"}))
    got, dropped = survey_points(site, site_dir)
    assert dropped == {"bad_number": 1, "unknown_receiver": 1, "positive_rssi": 1, "bad_readings_row": 0}
    assert len(got) == len(pts) - 3


def test_walk_readings_as_json_lines_with_bad_rows_counted(site_dir: Path) -> None:
    """A walk exported as JSON Lines gives the same points; its broken rows are counted."""
    walk = pd.read_csv(site_dir / "walk.csv", dtype={"source": str, "channel": str})
    lines = [json.dumps(r) for r in walk.to_dict(orient="records")] + ["{not json", '{"time": 1}']
    (site_dir / "walk.jsonl").write_text("\n".join(lines) + "\n")
    as_csv = {"walks": [{"readings": "walk.csv", "track": "walk_track.csv"}]}
    as_jsonl = {"walks": [{"readings": "walk.jsonl", "track": "walk_track.csv"}]}
    got_csv, _ = survey_points(load_site(_write_site(site_dir, as_csv)), site_dir)
    got_jsonl, dropped = survey_points(load_site(_write_site(site_dir, as_jsonl)), site_dir)
    pd.testing.assert_frame_equal(got_csv, got_jsonl)
    assert dropped["bad_readings_row"] == 2


@pytest.mark.parametrize(
    ("survey", "message"),
    [
        ({"points": "missing.csv"}, "missing.csv does not exist"),
        ({"points": "walk.csv"}, "lacks column(s) x_m, y_m, z_m, receiver_id, rssi_dbm"),
        ({"walks": [{"readings": "walk.csv", "track": "points.csv"}]}, "walks[0].track"),
    ],
)
def test_bad_survey_files_end_the_command_clearly(site_dir: Path, capsys, survey: dict, message: str) -> None:
    code, err, _ = _analyze(_write_site(site_dir, survey), site_dir, capsys)
    assert code == 2
    assert message in err and err.count("\n") == 1
    with pytest.raises(SurveyError, match="survey"):
        survey_map(load_site(site_dir / "site.yaml"), site_dir)


def test_survey_needs_points_or_walks_and_receivers(site_dir: Path) -> None:
    with pytest.raises(SiteError, match="survey: a survey needs 'points', 'walks' or 'blocked' areas"):
        load_site(_write_site(site_dir, {"blocked": []}))
    doc = _site_doc({"points": "points.csv"})
    doc["receivers"] = []
    (site_dir / "site.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(SiteError, match="needs the site's receivers"):
        load_site(site_dir / "site.yaml")


def test_server_analysis_uses_the_survey(site_dir: Path, capsys) -> None:
    """``serve`` builds the survey map once at start; the live analysis runs with it."""
    import argparse

    from twin_server.api.app import create_app
    from twin_server.cli.serve import add_arguments, settings_from_args

    site_path = _write_site(site_dir, {"points": "points.csv"})
    argv = ["--site", str(site_path), "--broker", "none", "--data-dir", str(site_dir / "data")]
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    settings = settings_from_args(parser.parse_args(argv))
    params = settings.analysis_params
    assert params.survey_map[0].zones == ["station1", "station2", "station3", "station4"]
    app = create_app(settings)
    twin = app.state.twin
    assert twin.analysis.params is params
    # The day's analysis (what the viewer and the API serve) runs on the survey map.
    from edge_agent.wire import Reading

    track = pd.read_csv(DATA / f"{TRACK}_rssi.csv", dtype={"receiver_id": str})
    track = track[track["rssi_dbm"] < 0]
    twin.journal.write_batch(
        [
            (
                Reading(
                    site="tetam",
                    device=r.receiver_id,
                    sensor="ble",
                    kind="rssi",
                    t_ns=round(r.t_seconds * 1e9),
                    seq=i,
                    source=r.receiver_id,
                    channel=BEACON,
                    value=float(r.rssi_dbm),
                    unit="dBm",
                ).check(),
                0,
            )
            for i, r in enumerate(track.itertuples())
        ]
    )
    result, _kpis = twin.analysis.get("2020-02-09")
    assert result.extra["analysis"]["rssi_model"] == "survey fingerprint map"
    assert {z.zone for z in result.worker_zones} >= {"none", "station1"}
    # A broken survey stops the server before it starts, naming the file.
    (site_dir / "points.csv").unlink()
    assert main(["serve", *argv]) == 2
    assert "points.csv does not exist" in capsys.readouterr().err


def test_isolated_analysis_brings_the_survey_windows_back(site_dir: Path) -> None:
    """The live server analyses in a child process; the windows it smoothed come back to the
    server's cache, so the next run of a growing day only smooths the new windows."""
    import argparse

    from edge_agent.wire import Reading
    from twin_server.api.app import create_app
    from twin_server.cli.serve import add_arguments, settings_from_args

    site_path = _write_site(site_dir, {"points": "points.csv"})
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    settings = settings_from_args(
        parser.parse_args(
            ["--site", str(site_path), "--broker", "none", "--data-dir", str(site_dir / "data")]
        )
    )
    twin = create_app(settings).state.twin
    assert twin.analysis.isolated
    cache = settings.analysis_params.survey_map[0].cache
    assert len(cache) == 0
    track = pd.read_csv(DATA / f"{TRACK}_rssi.csv", dtype={"receiver_id": str})
    track = track[track["rssi_dbm"] < 0]
    twin.journal.write_batch(
        [
            (
                Reading(
                    site="tetam",
                    device=r.receiver_id,
                    sensor="ble",
                    kind="rssi",
                    t_ns=round(r.t_seconds * 1e9),
                    seq=i,
                    source=r.receiver_id,
                    channel=BEACON,
                    value=float(r.rssi_dbm),
                    unit="dBm",
                ).check(),
                0,
            )
            for i, r in enumerate(track.itertuples())
        ]
    )
    isolated, _ = twin.analysis.get("2020-02-09")
    windows = set(cache)
    assert windows  # sent back by the child
    twin.analysis.isolated = False
    twin.analysis._cache.clear()
    in_process, _ = twin.analysis.get("2020-02-09")
    assert set(cache) == windows  # every window came from the cache
    assert in_process.to_dict()["worker_zones"] == isolated.to_dict()["worker_zones"]
