"""The wire contract (edge_agent/wire.py): round trips and "bad input raises only WireError"."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.wire import (
    KINDS,
    SWITCH_CHANNELS,
    UNITS,
    Reading,
    Status,
    WireError,
    decode,
    encode_reading,
    encode_status,
    reading_topic,
    status_topic,
    subscription_topics,
)

ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-"
ids = st.text(ID_CHARS, min_size=1, max_size=64).filter(lambda s: s != "status")
channels = st.text(ID_CHARS + ":", min_size=0, max_size=64)
T_MIN, T_MAX = 946_684_800 * 10**9, 7_258_118_400 * 10**9
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@st.composite
def readings(draw) -> Reading:
    kind = draw(st.sampled_from(sorted(KINDS)))
    unit = draw(st.sampled_from(sorted(UNITS[kind])))
    channel = draw(channels)
    count = rssi_max = window_ms = None
    if kind in ("switch", "light_state", "pressure_state"):
        value: float | str = draw(st.sampled_from([0.0, 1.0]))
    elif kind == "rssi":
        value = draw(st.floats(-150.0, 20.0))
        if draw(st.booleans()):
            count = draw(st.integers(1, 10**6))
            rssi_max = draw(st.floats(-150.0, 20.0))
            window_ms = draw(st.integers(1, 10**7))
    elif kind == "zone":
        value = draw(ids)
    else:
        value = draw(finite)
    if kind == "switch":
        channel = draw(st.sampled_from(sorted(SWITCH_CHANNELS)))
    if kind in ("rssi", "zone"):
        channel = draw(ids)
    return Reading(
        site=draw(ids),
        device=draw(ids),
        sensor=draw(ids),
        kind=kind,
        t_ns=draw(st.integers(T_MIN, T_MAX)),
        seq=draw(st.integers(0, 2**63 - 1)),
        source=draw(ids),
        value=value,
        unit=unit,
        channel=channel,
        count=count,
        rssi_max_dbm=rssi_max,
        window_ms=window_ms,
    )


@given(readings())
def test_reading_round_trip(r: Reading) -> None:
    topic, payload = encode_reading(r)
    assert topic == reading_topic(r)
    assert decode(topic, payload) == r
    assert decode(topic, payload.decode()) == r  # text payloads too


json_scalars = st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.text(max_size=20)


@given(
    site=ids,
    device=ids,
    online=st.booleans(),
    t_ns=st.none() | st.integers(T_MIN, T_MAX),
    clock=st.none() | st.booleans(),
    version=st.none() | st.text(st.characters(codec="utf-8").filter(str.isprintable), max_size=20),
    extra=st.dictionaries(st.text(ID_CHARS, min_size=1, max_size=12), json_scalars, max_size=4),
)
def test_status_round_trip(site, device, online, t_ns, clock, version, extra) -> None:
    extra = {
        k: v for k, v in extra.items() if k not in {"v", "state", "t_ns", "clock_synced", "agent_version"}
    }
    s = Status(site, device, online, t_ns, clock, version, extra)
    topic, payload = encode_status(s)
    assert topic == status_topic(site, device)
    assert decode(topic, payload) == s


T_OK = 1_700_000_000 * 10**9


@pytest.mark.parametrize(
    ("kind", "fields", "reason"),
    [
        ("light", {"seq": 2**63}, "bad_seq"),
        ("light", {"seq": -1}, "bad_seq"),
        ("light", {"t_ns": 2**70}, "bad_time"),
        ("rssi", {"count": 2**64, "window_ms": 1000}, "bad_count"),
        ("rssi", {"count": 0, "window_ms": 1000}, "bad_count"),
        ("rssi", {"count": 2, "window_ms": 2**63}, "bad_window_ms"),
        ("rssi", {"count": 2, "window_ms": 1000, "rssi_max_dbm": 1e300}, "bad_rssi_max_dbm"),
        ("light", {"source": "M\ud8003"}, "bad_source"),
    ],
)
def test_decode_bounds_every_stored_field(kind, fields, reason) -> None:
    """Everything decode accepts fits the journal (signed 64-bit integers, UTF-8 text)."""
    body = {"v": 1, "t_ns": T_OK, "seq": 1, "source": "M3", "channel": "", "value": 1.0, "unit": "raw"}
    if kind == "rssi":
        body |= {"source": "R3", "channel": "b-01", "value": -60.0, "unit": "dBm"}
    # json.dumps escapes a lone surrogate as \\ud800, as a hostile device would send it
    with pytest.raises(WireError) as info:
        decode(f"twin/v1/s/d/{kind}/x", json.dumps(body | fields))
    assert info.value.reason == reason


def test_decode_accepts_the_bounds_themselves() -> None:
    body = {
        "v": 1,
        "t_ns": T_OK,
        "seq": 2**63 - 1,
        "source": "R3",
        "channel": "b-01",
        "value": -60.0,
        "unit": "dBm",
        "count": 10**6,
        "window_ms": 86_400_000,
        "rssi_max_dbm": 20.0,
    }
    r = decode("twin/v1/s/d/rssi/x", json.dumps(body))
    assert (r.seq, r.count, r.window_ms) == (2**63 - 1, 10**6, 86_400_000)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"t_ns": 2**70}, "bad_time"),
        ({"agent_version": "0.1\ud800"}, "bad_agent_version"),
        ({"agent_version": "v" * 65}, "bad_agent_version"),
        ({"note": "x\udfff"}, "bad_status"),
    ],
)
def test_decode_status_bounds(fields, reason) -> None:
    text = json.dumps({"v": 1, "state": "online"} | fields)
    with pytest.raises(WireError) as info:
        decode("twin/v1/s/d/status", text)
    assert info.value.reason == reason


def _only_wire_error(topic: str, payload) -> None:
    try:
        decode(topic, payload)
    except WireError as exc:
        reason, detail = exc.reason, exc.detail
    else:
        return  # a valid message by chance: fine
    # "malformed" is decode's catch-all for an exception it did not expect: a bug, not a reason.
    assert reason != "malformed", detail
    assert re.fullmatch(r"[a-z_]+", reason) and isinstance(detail, str)


@settings(max_examples=300)
@given(topic=st.text(max_size=120), payload=st.binary(max_size=300))
def test_arbitrary_bytes_and_topics_raise_only_wire_error(topic, payload) -> None:
    _only_wire_error(topic, payload)


json_values = st.recursive(
    json_scalars | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
fields = st.sampled_from(
    [
        "v",
        "t_ns",
        "seq",
        "source",
        "channel",
        "value",
        "unit",
        "count",
        "rssi_max_dbm",
        "window_ms",
        "state",
        "clock_synced",
        "agent_version",
    ]
)


@settings(max_examples=300)
@given(
    parts=st.lists(
        st.sampled_from(["toyama-pilot", "pi-m3", "light", "rssi", "status", "", "+", "a/b", "x" * 70]),
        min_size=0,
        max_size=6,
    ),
    body=st.dictionaries(fields, json_values | st.integers(), max_size=10),
    v1=st.booleans(),
)
def test_near_miss_messages_raise_only_wire_error(parts, body, v1) -> None:
    # Plausible topics and payloads with wrong types/values: the decoder's hard cases.
    if v1:
        body["v"] = 1
    _only_wire_error("/".join(["twin", "v1", *parts]), json.dumps(body).encode())


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        (
            "twin/v1/s/d/light/x",
            b'{"v":1,"t_ns":1700000000000000000,"seq":0,"source":"M3","value":NaN,"unit":"raw"}',
            "bad_value",
        ),
        (
            "twin/v1/s/d/switch/x",
            b'{"v":1,"t_ns":1700000000000000000,"seq":0,"source":"M3","value":1,'
            b'"unit":"bool","channel":"coffee"}',
            "bad_channel",
        ),
        ("twin/v1/s/d/light/x", b'{"v":2}', "bad_version"),
        ("other/v1/s/d/light/x", b"{}", "bad_topic"),
        ("twin/v1/s/d/status", b'{"v":1,"state":"sleepy"}', "bad_status"),
        ("twin/v1/s/d/light/x", b"[1]", "bad_json"),
        ("twin/v1/s/d/light/x", b"x" * 5000, "too_large"),
    ],
)
def test_named_rejections(topic, payload, reason) -> None:
    with pytest.raises(WireError) as info:
        decode(topic, payload)
    assert info.value.reason == reason


def test_subscription_topics_cover_readings_and_status() -> None:
    assert subscription_topics("toyama-pilot") == [
        "twin/v1/toyama-pilot/+/+/+",
        "twin/v1/toyama-pilot/+/status",
    ]
