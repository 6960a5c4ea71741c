"""Hostile input at volume: hypothesis generates thousands of hostile MQTT messages, sent
through a real mosquitto to a real ``python -m twin_server serve`` between valid readings.

Hostile: random bytes, truncated and deeply nested JSON, NaN/Infinity, wrong types, unicode
and control characters in ids, wrong devices and sites, out-of-range times and integers
past 2^63, duplicates, oversize payloads (up to 1 MiB), status messages.

Checked on every generated burst: every valid reading is journalled; every hostile message
is counted under the reason the wire contract gives it (the server's counters move by
exactly the expected per-reason counts, duplicates as duplicates, messages on topics the
server does not subscribe to not at all); a reading published after the burst is journalled
within 2 s. At the end: at least 2,000 hostile messages were sent, the server's RSS is
within 50 MiB of its start, dead letters are bounded (rows, payload prefix, the route's
answer size) and the server logged no traceback.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from paho.mqtt.client import topic_matches_sub
from services import free_port, run_mosquitto, wait_for_port, wait_until

from edge_agent.wire import Reading, encode_reading, subscription_topics
from twin_server.auth.device_scope import DeviceScope
from twin_server.ingest.publish import Publisher
from twin_server.ingest.subscriber import ScopeFilter, classify
from twin_server.store.journal import (
    DEAD_ROWS_PER_DAY,
    DEAD_ROWS_PER_DEVICE_DAY,
    MAX_DEAD_PAYLOAD_BYTES,
    DeadLetter,
)

pytestmark = pytest.mark.broker
ROOT = Path(__file__).resolve().parents[2]
T_NS_MIN, T_NS_MAX = 946_684_800 * 10**9, 7_258_118_400 * 10**9
MIN_HOSTILE = 2_000
RSS_GROWTH_MAX_MIB = 50.0
SENTINEL_MAX_S = 2.0


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@dataclass
class Server:
    proc: subprocess.Popen
    http: httpx.Client
    journal: Path
    log: Path
    pub: Publisher
    site: str
    scope: ScopeFilter
    seq: Iterator[int]
    sent_valid: list[tuple[str, bytes]] = field(default_factory=list)
    stored_seqs: set[int] = field(default_factory=set)
    hostile: Counter[str] = field(default_factory=Counter)
    dead: Counter[str] = field(default_factory=Counter)
    sentinel_s: float = 0.0

    def health(self) -> dict[str, Any]:
        return self.http.get("/health").json()

    def valid(self, value: float, sensor: str = "fuzz") -> tuple[str, bytes, int]:
        seq = next(self.seq)
        r = Reading(self.site, "pi-m3", sensor, "light", time.time_ns(), seq, "M3", value, "lux")
        topic, payload = encode_reading(r)
        return topic, payload, seq

    def journalled(self, sensor: str, seqs: set[int]) -> set[int]:
        with sqlite3.connect(f"file:{self.journal}?mode=ro", uri=True, timeout=30) as db:
            rows = db.execute("SELECT seq FROM readings WHERE device = 'pi-m3' AND sensor = ?", (sensor,))
            return {s for (s,) in rows} & seqs


@pytest.fixture(scope="module")
def server(tmp_path_factory, pilot_site, pilot_site_path) -> Iterator[Server]:
    d = tmp_path_factory.mktemp("hostile")
    port = free_port()
    with run_mosquitto(d / "mosquitto") as broker:
        log = d / "server.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "twin_server",
                    "serve",
                    "--site",
                    str(pilot_site_path),
                    "--broker",
                    f"{broker.host}:{broker.port}",
                    "--port",
                    str(port),
                    "--data-dir",
                    str(d / "data"),
                    "--analysis-interval",
                    "1",
                    "--log-level",
                    "WARNING",
                ],
                cwd=ROOT,
                stdout=out,
                stderr=out,
            )
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        pub = None
        try:
            wait_for_port(port, 60, proc)
            wait_until(lambda: http.get("/health").json()["broker"]["subscribed"], 30, "server subscribed")
            pub = Publisher(broker.host, broker.port, max_inflight=500)
            seq = iter(range(10**9))
            srv = Server(
                proc,
                http,
                d / "data" / "journal.sqlite",
                log,
                pub,
                pilot_site.site,
                ScopeFilter(DeviceScope.of(pilot_site)),
                seq,
            )
            yield srv
        finally:
            if pub is not None:
                pub.close()
            http.close()
            proc.terminate()
            proc.wait(30)


# --- hostile messages -------------------------------------------------------------------------
SITE = "toyama-pilot"
LIGHT = f"twin/v1/{SITE}/pi-m3/light/hostile"
RSSI = f"twin/v1/{SITE}/pi-m3/rssi/R3.b-01"
STATUS = f"twin/v1/{SITE}/pi-m3/status"
T_OK = 1_800_000_000 * 10**9


def _body(**over: Any) -> dict[str, Any]:
    body = {"v": 1, "t_ns": T_OK, "seq": 7, "source": "M3", "channel": "", "value": 12.5, "unit": "lux"}
    body.update(over)
    return {k: v for k, v in body.items() if v is not _DROP}


_DROP = object()
_SCALAR = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
_JSON = st.recursive(
    _SCALAR,
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=4), kids, max_size=3),
    max_leaves=6,
)
# Characters MQTT topics may carry (mosquitto refuses control characters, surrogates,
# non-characters, and '+' '#' in a published topic); '/' would add a level.
_TOPIC_CHARS = st.characters(blacklist_categories=("Cc", "Cs", "Cn"), blacklist_characters="/+#")
_ANY_CHARS = st.characters(blacklist_categories=("Cs",))
_UNITS = {"light": "lux", "pressure": "kPa", "switch": "bool", "zone": "zone", "rssi": "dBm"}
_VALUES = {"switch": 1, "zone": "M3", "rssi": -60}
_CHANNELS = {"switch": "tool_change", "zone": "b-01", "rssi": "b-01"}


def _dumps(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _truncated(i: int) -> tuple[str, bytes]:
    full = _dumps(_body(seq=i))
    return LIGHT, full[: i % len(full)]


def _nested(depth: int, opener: str) -> tuple[str, bytes]:
    closer = b"]" if opener == "[" else b"1}"
    head = b'{"v":1,"t_ns":%d,"seq":1,"source":"M3","unit":"lux","value":' % T_OK
    return LIGHT, head + opener.encode() * depth + closer * depth + b"}"


def _non_finite(constant: str, name: str) -> tuple[str, bytes]:
    body = (
        b'{"v":1,"t_ns":%d,"seq":3,"source":"R3","channel":"b-01","value":-60,"unit":"dBm",'
        b'"count":2,"window_ms":1000,"%s":%s}' % (T_OK, name.encode(), constant.encode())
    )
    return RSSI if name == "rssi_max_dbm" else LIGHT, body


def _topic_id(text: str, where: str, status: bool) -> tuple[str, bytes]:
    site = text if where == "site" else SITE
    device = text if where == "device" else "pi-m3"
    kind = text if where == "kind" else "light"
    rest = ["status"] if status else [kind, text if where == "sensor" else "s"]
    body = {"v": 1, "state": "online"} if status else _body()
    return "/".join(["twin", "v1", site, device, *rest]), _dumps(body)


def _wrong_device(device: str, kind: str, source: str) -> tuple[str, bytes]:
    body = _body(
        source=source, unit=_UNITS[kind], value=_VALUES.get(kind, 12.5), channel=_CHANNELS.get(kind, "")
    )
    return f"twin/v1/{SITE}/{device}/{kind}/s", _dumps(body)


def _oversize(n: int, status: bool) -> tuple[str, bytes]:
    if status:
        return STATUS, _dumps({"v": 1, "state": "online", "agent_version": "x" * n})
    return LIGHT, _dumps(_body(channel="x" * n))


HOSTILE = {
    "random_bytes": st.tuples(st.just(LIGHT), st.binary(max_size=700)),
    "truncated": st.integers(0, 10_000).map(_truncated),
    # Depths the server parses, depths past its recursion limit (within 4 KiB), and larger.
    "nested": st.builds(
        _nested,
        st.integers(1, 400) | st.integers(1_300, 2_000) | st.integers(2_001, 50_000),
        st.sampled_from(["[", '{"a":']),
    ),
    "non_finite": st.builds(
        _non_finite,
        st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-1e999"]),
        st.sampled_from(["value", "rssi_max_dbm"]),
    ),
    "wrong_type": st.builds(
        lambda name, v: (LIGHT, _dumps(_body(**{name: v}))),
        st.sampled_from(
            ["v", "t_ns", "seq", "source", "channel", "value", "unit", "count", "window_ms", "rssi_max_dbm"]
        ),
        _JSON | st.just(_DROP),
    ),
    "topic_ids": st.builds(
        _topic_id,
        st.text(_TOPIC_CHARS, max_size=70),
        st.sampled_from(["device", "kind", "sensor", "site"]),
        st.booleans(),
    ),
    "payload_ids": st.builds(
        lambda text, name: (LIGHT, _dumps(_body(**{name: text}))),
        st.text(_ANY_CHARS, min_size=1, max_size=70),
        st.sampled_from(["source", "channel"]),
    ),
    "wrong_device": st.builds(
        _wrong_device,
        st.sampled_from(["pi-m7", "pi-m10", "pi-zz", "rx-R3", "tagsys", "pi-m3"]),
        st.sampled_from(sorted(_UNITS)),
        st.sampled_from(["M3", "M7", "M10", "R3", "tagsys"]),
    ),
    "bad_time": (st.integers(max_value=T_NS_MIN - 1) | st.integers(min_value=T_NS_MAX + 1)).map(
        lambda t: (LIGHT, _dumps(_body(t_ns=t)))
    ),
    # Integers past what the journal stores (2^63 and up): once a poison message that halted ingest.
    "big_integers": st.builds(
        lambda name, n: (
            RSSI,
            _dumps(
                {
                    **_body(source="R3", channel="b-01", value=-60, unit="dBm", count=2, window_ms=1000),
                    name: n,
                }
            ),
        ),
        st.sampled_from(["seq", "t_ns", "count", "window_ms"]),
        st.integers(2**63 - 1, 2**70) | st.sampled_from([2**63, 2**64, -(2**63) - 1]),
    ),
    "oversize": st.builds(
        _oversize, st.one_of(*[st.integers(4_097, 65_536)] * 3, st.integers(65_537, 2**20)), st.booleans()
    ),
    "bad_status": st.fixed_dictionaries(
        {"v": st.just(1), "state": _JSON}, optional={"t_ns": _JSON, "agent_version": _JSON}
    ).map(lambda b: (STATUS, _dumps(b))),
}
# Topics the server does not subscribe to: another site, another root, too many levels.
IGNORED = st.sampled_from(
    [
        "twin/v1/other-site/pi-m3/light/s",
        "factory/x",
        f"twin/v1/{SITE}/pi-m3/light/s/t",
        f"twin/v2/{SITE}/pi-m3/light/s",
    ]
).map(lambda t: (t, _dumps(_body())))


def _expect(scope: ScopeFilter, topic: str, payload: bytes) -> DeadLetter | object:
    """What the server makes of a message, by the same pure function, under the server's
    recursion limit (hypothesis raises the test's, which would parse deeper JSON)."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    try:
        return classify(topic, payload, 0, scope)
    finally:
        sys.setrecursionlimit(limit)


def _subscribed(topic: str) -> bool:
    return any(topic_matches_sub(sub, topic) for sub in subscription_topics(SITE))


def _is_dead(scope: ScopeFilter, msg: tuple[str, bytes]) -> bool:
    return not _subscribed(msg[0]) or isinstance(_expect(scope, *msg), DeadLetter)


def _item(scope: ScopeFilter) -> st.SearchStrategy[tuple[str, Any]]:
    hostile = st.one_of(*[s.map(lambda m, k=k: (k, m)) for k, s in HOSTILE.items()]).filter(
        lambda km: _is_dead(scope, km[1])
    )
    return st.one_of(
        hostile,
        hostile,
        hostile,
        hostile,
        hostile,
        hostile,
        st.tuples(st.just("duplicate"), st.integers(0, 10**6)),
        st.tuples(st.just("ignored"), IGNORED),
        st.tuples(st.just("valid"), st.floats(0, 100_000)),
    )


def _counts(h: dict[str, Any]) -> tuple[Counter[str], Counter[str], int, int, int]:
    ing = h["ingest"]
    return (
        Counter(ing["dead_by_reason"]),
        Counter(h["journal"]["dead_letters"]),
        ing["duplicates"],
        ing["received"],
        ing["accepted"],
    )


def _burst(srv: Server, items: list[tuple[str, Any]]) -> None:
    """Publish one generated burst, then a sentinel; check the server's counters moved exactly."""
    before = _counts(srv.health())
    want: Counter[str] = Counter()
    valid: dict[int, tuple[str, bytes]] = {}
    dups = received = 0
    for kind, what in items:
        if kind == "valid":
            topic, payload, seq = srv.valid(what)
            valid[seq] = (topic, payload)
        elif kind == "duplicate":
            if not srv.sent_valid:
                continue
            topic, payload = srv.sent_valid[what % len(srv.sent_valid)]
            dups += 1
        elif kind == "ignored":
            topic, payload = what
            received -= 1
        else:
            topic, payload = what
            srv.hostile[kind] += 1
            if _subscribed(topic):
                want[_expect(srv.scope, topic, payload).reason] += 1
            else:  # e.g. a hostile site id: the server never receives it
                received -= 1
        srv.pub.publish_raw(topic, payload)
        received += 1
    srv.pub.flush()
    # The sentinel: published after the whole burst is at the broker, journalled within 2 s.
    topic, payload, seq = srv.valid(1.0, sensor="sentinel")
    t0 = time.monotonic()
    srv.pub.publish_raw(topic, payload)
    while not srv.journalled("sentinel", {seq}):
        assert time.monotonic() - t0 < SENTINEL_MAX_S, "ingest stalled: the sentinel took over 2 s"
        time.sleep(0.01)
    srv.sentinel_s = max(srv.sentinel_s, time.monotonic() - t0)
    after = _counts(srv.health())
    got = after[0] - before[0]
    assert got == want, f"dead letters per reason: {got - want} more, {want - got} fewer than sent"
    assert after[1] - before[1] == want, "dead letters per reason (journal totals)"
    assert after[2] - before[2] == dups
    assert after[3] - before[3] == received + 1  # nothing on the unsubscribed topics, + the sentinel
    assert after[4] - before[4] == len(valid) + 1
    srv.sent_valid.extend(valid.values())
    srv.dead.update(want)
    assert srv.journalled("fuzz", set(valid)) == set(valid), "a valid reading was lost"
    srv.stored_seqs |= set(valid)


def test_hostile_input_at_volume(server: Server):
    srv = server
    # Warm up on valid readings (imports, two live analyses), then take the start RSS.
    for runs in (1, 2):
        for i in range(100):
            topic, payload, _ = srv.valid(float(i))
            srv.pub.publish_raw(topic, payload)
            srv.sent_valid.append((topic, payload))
        srv.pub.flush()
        wait_until(lambda runs=runs: srv.health()["analysis"]["runs"] >= runs, 60, f"{runs} live analyses")
    start_mib = _rss_mib(srv.proc.pid)
    started = time.monotonic()

    @given(st.lists(_item(srv.scope), min_size=250, max_size=300))
    # No shrinking: each example runs against the one long-lived server, whose state moves on.
    @settings(
        max_examples=10,
        deadline=None,
        database=None,
        phases=(Phase.generate,),
        suppress_health_check=list(HealthCheck),
    )
    def bursts(items: list[tuple[str, Any]]) -> None:
        _burst(srv, items)

    bursts()
    elapsed_s = time.monotonic() - started
    end_mib = _rss_mib(srv.proc.pid)
    n_hostile = sum(srv.hostile.values())
    print(
        f"\n{n_hostile} hostile messages {dict(srv.hostile)} in {elapsed_s:.1f} s; server RSS "
        f"{start_mib:.0f} -> {end_mib:.0f} MiB; slowest sentinel {srv.sentinel_s * 1000:.0f} ms"
    )
    assert n_hostile >= MIN_HOSTILE
    assert all(srv.hostile[k] > 0 for k in HOSTILE), srv.hostile
    assert end_mib - start_mib <= RSS_GROWTH_MAX_MIB, (start_mib, end_mib)
    # Dead letters are bounded: a payload prefix, rows within the caps, answers in pages.
    with sqlite3.connect(f"file:{srv.journal}?mode=ro", uri=True) as db:
        rows, longest = db.execute("SELECT count(*), max(length(payload)) FROM dead_letters").fetchone()
        assert 0 < rows <= DEAD_ROWS_PER_DAY and longest <= MAX_DEAD_PAYLOAD_BYTES, (rows, longest)
        per_device = db.execute(
            "SELECT max(n) FROM (SELECT count(*) AS n FROM dead_letters GROUP BY day, device)"
        ).fetchone()[0]
    assert per_device <= DEAD_ROWS_PER_DEVICE_DAY
    page = srv.http.get("/api/dead-letters", params={"limit": 10_000})
    assert len(page.content) <= 2**20 + 4096
    doc = page.json()
    assert doc["counts"] == srv.dead and doc["kept"] == rows
    seen = len(doc["dead_letters"])
    while doc["next_before_id"] is not None:
        params = {"limit": 10_000, "before_id": doc["next_before_id"]}
        doc = srv.http.get("/api/dead-letters", params=params).json()
        seen += len(doc["dead_letters"])
    assert seen == rows
    assert b"Traceback" not in srv.log.read_bytes()
