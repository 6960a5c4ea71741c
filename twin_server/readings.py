"""Readings table: the contract's CSV (``time,kind,source,channel,value``) in and out.

In memory a recording is a pandas DataFrame in long form with the columns of
:data:`COLUMNS`: ``t`` (float epoch seconds, device time), ``kind``, ``source``, ``channel``,
``value`` (float; NaN for ``zone`` rows) and ``label`` (the zone's machine id or ``"none"``
for ``zone`` rows, else empty). Bad rows are skipped and counted per reason, never fatal;
a file that is not a readings CSV at all raises :class:`ReadingsError`.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from twin_contract import vocabulary as vocab
from twin_server.site import TASKS, Site

__all__ = [
    "COLUMNS",
    "KNOWN_KINDS",
    "LoadedReadings",
    "ReadingsError",
    "empty_readings",
    "load_readings_any",
    "load_readings_csv",
    "validate_readings",
    "write_readings_csv",
]

COLUMNS = ["t", "kind", "source", "channel", "value", "label"]
HEADER = ["time", "kind", "source", "channel", "value"]
#: Contract kinds plus the edge-detected state kinds the project also accepts.
KNOWN_KINDS = vocab.KINDS
_MACHINE_KINDS = tuple(sorted(vocab.MACHINE_KINDS))


class ReadingsError(ValueError):
    """The file is not a readings CSV at all (one line naming the problem)."""


@dataclass
class LoadedReadings:
    """A validated recording and what was rejected from it."""

    frame: pd.DataFrame
    rejected: Counter[str] = field(default_factory=Counter)

    @property
    def rejected_rows(self) -> int:
        """Total rows skipped."""
        return sum(self.rejected.values())


def empty_readings() -> pd.DataFrame:
    """A readings frame with no rows and the right dtypes."""
    return pd.DataFrame(
        {
            "t": pd.Series(dtype="float64"),
            "kind": pd.Series(dtype=object),
            "source": pd.Series(dtype=object),
            "channel": pd.Series(dtype=object),
            "value": pd.Series(dtype="float64"),
            "label": pd.Series(dtype=object),
        }
    )


def load_readings_csv(path: str | Path, site: Site) -> LoadedReadings:
    """Read a readings CSV and validate every row against the site.

    Parameters
    ----------
    path : str or Path
        CSV with header ``time,kind,source,channel,value`` (extra columns are ignored).
    site : Site
        Gives the known machine, receiver and beacon ids.

    Returns
    -------
    LoadedReadings
        Valid rows sorted by time (stable), and rejection counts per reason.

    Raises
    ------
    ReadingsError
        If the file cannot be read or its header is not a readings header.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ReadingsError(f"{p}: cannot read readings file: {exc.strerror or exc}") from None
    if b"\x00" in raw[:65536]:
        raise ReadingsError(f"{p}: not a readings CSV (binary content)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ReadingsError(f"{p}: not a readings CSV (not UTF-8 text)") from None
    return parse_readings_text(text, site, name=str(p))


def parse_readings_text(text: str, site: Site, name: str = "readings") -> LoadedReadings:
    """Parse readings CSV text; see :func:`load_readings_csv`."""
    first, _, _ = text.partition("\n")
    header = [h.strip().lower() for h in next(csv.reader([first.strip("\r")]), [])]
    missing = [h for h in HEADER if h not in header]
    if not first.strip() or missing:
        shown = first.strip()[:80]
        raise ReadingsError(
            f"{name}: not a readings CSV: header must contain {','.join(HEADER)}"
            f" (missing {','.join(missing) or 'header'}; first line {shown!r})"
        )
    data_lines = sum(1 for line in text.splitlines()[1:] if line.strip())
    try:
        table = pd.read_csv(
            io.StringIO(text),
            dtype=str,
            keep_default_na=False,
            on_bad_lines="skip",
            skip_blank_lines=True,
            engine="c",
        )
    except pd.errors.ParserError:
        # e.g. an unterminated quote swallowing the rest of the file: parse line by line
        # so that only the broken lines are lost (and counted).
        table = _parse_lines(text)
    table.columns = [c.strip().lower() for c in table.columns]
    rejected: Counter[str] = Counter()
    # Rows with the wrong number of fields were skipped by the parser: count them.
    if data_lines > len(table):
        rejected["unparseable"] += data_lines - len(table)
    frame = pd.DataFrame(
        {
            "t": pd.to_numeric(table["time"].str.strip(), errors="coerce"),
            "kind": table["kind"].str.strip(),
            "source": table["source"].str.strip(),
            "channel": table["channel"].str.strip(),
            "value": table["value"].str.strip(),
        }
    )
    return validate_readings(frame, site, rejected)


def load_readings_any(path: Path, site: Site) -> LoadedReadings:
    """Load readings from CSV, JSON Lines or Parquet; raise ReadingsError for a non-table."""
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".ndjson", ".parquet"):
        return load_readings_csv(path, site)
    try:
        if suffix == ".parquet":
            table = pd.read_parquet(path)
            rejected: Counter[str] = Counter()
        else:
            rows, rejected = [], Counter()
            for line in path.read_text(encoding="utf-8").splitlines():
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except ValueError:
                    rejected["unparseable"] += 1
                    continue
                if isinstance(obj, dict):
                    rows.append(obj)
                else:
                    rejected["unparseable"] += 1
            table = pd.DataFrame(rows)
    except (OSError, ValueError, ImportError) as exc:
        raise ReadingsError(f"{path}: not a readings table: {exc}") from None
    missing = [c for c in ("time", "kind", "source", "channel", "value") if c not in table.columns]
    if missing and len(table):
        raise ReadingsError(f"{path}: not a readings table (missing {','.join(missing)})")
    if not len(table):
        raise ReadingsError(f"{path}: not a readings table (no rows)")
    frame = pd.DataFrame(
        {
            "t": table["time"],
            "kind": table["kind"].astype(str),
            "source": table["source"].astype(str),
            "channel": table["channel"].fillna("").astype(str),
            "value": table["value"].astype(str),
        }
    )
    return validate_readings(frame, site, rejected)


def _parse_lines(text: str) -> pd.DataFrame:
    """Slow path of :func:`parse_readings_text`: each physical line parsed on its own.

    Lines whose field count differs from the header's, or that the csv module refuses,
    are dropped (the caller counts them as ``unparseable``).
    """
    lines = [line for line in text.splitlines() if line.strip()]
    header = next(csv.reader([lines[0]]))
    rows = []
    for line in lines[1:]:
        try:
            fields = next(csv.reader([line], strict=True))
        except (csv.Error, StopIteration):
            continue
        if len(fields) == len(header):
            rows.append(fields)
    return pd.DataFrame(rows, columns=header, dtype=str)


def validate_readings(
    frame: pd.DataFrame, site: Site, rejected: Counter[str] | None = None
) -> LoadedReadings:
    """Keep the rows that are valid for the site; count the rest per reason.

    ``frame`` has ``t`` (numeric or NaN), ``kind``, ``source``, ``channel`` and ``value``
    (text or numbers; ``zone`` values are machine ids).
    """
    rejected = Counter() if rejected is None else rejected
    n = len(frame)
    t = pd.to_numeric(frame["t"], errors="coerce").to_numpy(dtype="float64")
    kind = frame["kind"].astype(str).to_numpy(dtype=object)
    source = frame["source"].astype(str).to_numpy(dtype=object)
    channel = frame["channel"].astype(str).to_numpy(dtype=object)
    value_text = frame["value"].astype(str).str.strip()
    value = pd.to_numeric(value_text, errors="coerce").to_numpy(dtype="float64")

    ok = np.ones(n, dtype=bool)

    def reject(mask: np.ndarray, reason: str) -> None:
        nonlocal ok
        hit = mask & ok
        count = int(hit.sum())
        if count:
            rejected[reason] += count
            ok &= ~hit

    reject(~np.isfinite(t), "bad_time")
    reject(~np.isin(kind, list(KNOWN_KINDS)), "unknown_kind")
    machines = site.machine_ids
    receivers = [r.id for r in site.receivers]
    beacons = [w.beacon for w in site.workers]
    is_zone = kind == "zone"
    is_machine_kind = np.isin(kind, _MACHINE_KINDS)
    reject(is_machine_kind & ~np.isin(source, machines), "unknown_source")
    reject((kind == "rssi") & ~np.isin(source, receivers), "unknown_receiver")
    reject((kind == "switch") & ~np.isin(channel, list(TASKS[1:])), "unknown_channel")
    reject(np.isin(kind, ["rssi", "zone"]) & ~np.isin(channel, beacons), "unknown_beacon")
    reject(~is_zone & ~np.isfinite(value), "bad_value")
    binary = np.isin(kind, ["switch", "light_state", "pressure_state"])
    reject(binary & ~np.isin(value, [0.0, 1.0]), "bad_value")
    zone_label = value_text.to_numpy(dtype=object)
    reject(is_zone & ~np.isin(zone_label, [*machines, "none"]), "unknown_zone")

    out = pd.DataFrame(
        {
            "t": t[ok],
            "kind": kind[ok],
            "source": source[ok],
            "channel": np.where(np.isin(kind[ok], ["switch", "rssi", "zone"]), channel[ok], ""),
            "value": np.where(is_zone[ok], np.nan, value[ok]),
            "label": np.where(is_zone[ok], zone_label[ok], ""),
        }
    )
    out = out.sort_values("t", kind="stable", ignore_index=True)
    return LoadedReadings(frame=out, rejected=rejected)


def write_readings_csv(frame: pd.DataFrame, path: str | Path) -> None:
    """Write a readings frame as the contract's CSV (time to microseconds).

    Ids never hold commas or quotes (the site model forbids them), so rows are formatted
    directly: about six times faster than ``DataFrame.to_csv`` with per-cell formatters.
    """
    is_zone = (frame["kind"] == "zone").tolist()
    values = [
        label if zone else (f"{v:.6g}" if math.isfinite(v) else "")
        for v, label, zone in zip(frame["value"].tolist(), frame["label"].tolist(), is_zone, strict=True)
    ]
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(",".join(HEADER) + "\n")
        fh.writelines(
            f"{t:.6f},{k},{s},{c},{v}\n"
            for t, k, s, c, v in zip(
                frame["t"].tolist(),
                frame["kind"].tolist(),
                frame["source"].tolist(),
                frame["channel"].tolist(),
                values,
                strict=True,
            )
        )
