"""Readings CSV: bad rows are counted per reason, non-CSV files are one clear error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin_server.readings import ReadingsError, load_readings_csv, parse_readings_text, write_readings_csv

GOOD = """time,kind,source,channel,value
1700000000.5,light,M3,,812
1700000001.0,switch,M3,tool_change,1
1700000002.0,zone,tagsys,b-01,M7
1700000003.0,rssi,R3,b-01,-67
1700000000.1,pressure,M7,,101.3
"""


def test_good_rows_are_kept_and_sorted(pilot_site) -> None:
    loaded = parse_readings_text(GOOD, pilot_site)
    f = loaded.frame
    assert loaded.rejected_rows == 0
    assert list(f["kind"]) == ["pressure", "light", "switch", "zone", "rssi"]
    assert f["t"].is_monotonic_increasing
    assert f.loc[f["kind"] == "zone", "label"].item() == "M7"
    assert np.isnan(f.loc[f["kind"] == "zone", "value"].item())
    assert f.loc[f["kind"] == "light", "channel"].item() == ""


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("notanumber,light,M3,,1", "bad_time"),
        ("1700000004.0,light,M99,,1", "unknown_source"),
        ("1700000005.0,laser,M3,,1", "unknown_kind"),
        ("1700000006.0,light,M3,,inf", "bad_value"),
        ("1700000006.0,light,M3,,nan", "bad_value"),
        ("1700000006.0,light,M3,,", "bad_value"),
        ("1700000007.0,light,M3,,1,extra", "unparseable"),
        ("1700000008.0,zone,tagsys,b-01,M99", "unknown_zone"),
        ("1700000009.0,rssi,R3,b-77,-60", "unknown_beacon"),
        ("1700000009.0,rssi,R99,b-01,-60", "unknown_receiver"),
        ("1700000009.0,switch,M3,coffee,1", "unknown_channel"),
        ("1700000009.0,switch,M3,tool_change,2", "bad_value"),
    ],
)
def test_each_bad_row_is_counted_and_skipped(pilot_site, row: str, reason: str) -> None:
    loaded = parse_readings_text(GOOD + row + "\n", pilot_site)
    assert len(loaded.frame) == 5
    assert dict(loaded.rejected) == {reason: 1}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "binary content"),
        (b"site: demo\nmachines: []\n", "not a readings CSV: header must contain"),
        (b"", "not a readings CSV"),
        (b"time,kind\xff\xfa,source\n", "not UTF-8"),
    ],
)
def test_not_a_readings_file(pilot_site, tmp_path: Path, content: bytes, expected: str) -> None:
    p = tmp_path / "x.csv"
    p.write_bytes(content)
    with pytest.raises(ReadingsError, match=expected):
        load_readings_csv(p, pilot_site)


def test_missing_file_is_a_clear_error(pilot_site, tmp_path: Path) -> None:
    with pytest.raises(ReadingsError, match="cannot read readings file"):
        load_readings_csv(tmp_path / "nope.csv", pilot_site)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(1.6e9, 1.8e9), st.floats(-1e4, 1e4)), min_size=1, max_size=30))
def test_write_then_load_round_trips(pilot_site, tmp_path_factory, rows) -> None:
    frame = pd.DataFrame(
        {
            "t": [r[0] for r in rows],
            "kind": "light",
            "source": "M7",
            "channel": "",
            "value": [r[1] for r in rows],
            "label": "",
        }
    )
    path = tmp_path_factory.mktemp("rt") / "r.csv"
    write_readings_csv(frame, path)
    back = load_readings_csv(path, pilot_site)
    assert back.rejected_rows == 0
    assert len(back.frame) == len(rows)
    np.testing.assert_allclose(np.sort(back.frame["t"]), np.sort(frame["t"]), atol=1e-6)
    np.testing.assert_allclose(np.sort(back.frame["value"]), np.sort(frame["value"]), rtol=1e-5, atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_never_crashes(pilot_site, text: str) -> None:
    try:
        loaded = parse_readings_text("time,kind,source,channel,value\n" + text, pilot_site)
    except ReadingsError:
        return
    if text.strip():  # a line with content is either read or counted as rejected, never dropped
        assert len(loaded.frame) + loaded.rejected_rows >= 1
    assert np.isfinite(loaded.frame["t"].to_numpy(dtype=float)).all()
    assert set(loaded.frame["kind"]) <= {
        "light",
        "pressure",
        "switch",
        "rssi",
        "zone",
        "light_state",
        "pressure_state",
    }


def test_unterminated_quote_loses_only_its_line(pilot_site) -> None:
    text = (
        "time,kind,source,channel,value\n"
        "1795500000.0,light,M3,,812\n"
        '1795500001.0,light,M3,,"813\n'
        "1795500002.0,light,M3,,814\n"
    )
    loaded = parse_readings_text(text, pilot_site)
    assert list(loaded.frame["value"].astype(float)) == [812.0, 814.0]
    assert loaded.rejected_rows == 1
