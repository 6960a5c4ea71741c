"""``python -m twin_server analyze --site SITE.yaml --readings READINGS.csv --out RESULT.json``.

Implements docs/analyze-contract.md: bad rows are skipped and counted (``rejected_rows`` and,
per reason, ``rejected_by_reason``); a readings file that is not a readings table at all,
or a site file that does not validate, ends with exit code 2 and one line on stderr.
Readings may also be JSON Lines (``.jsonl``) or Parquet (``.parquet``, if pyarrow is
installed) with the same columns.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from twin_server.readings import ReadingsError, load_readings_any
from twin_server.site import SiteError, load_site

EXIT_BAD_INPUT = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``analyze`` command."""
    parser.add_argument("--site", required=True, help="site YAML file")
    parser.add_argument("--readings", required=True, help="readings CSV (or .jsonl / .parquet)")
    parser.add_argument("--out", required=True, help="result JSON to write")
    parser.add_argument(
        "--switch-free",
        action="store_true",
        help="ignore switch rows and infer the three switch tasks from other sensors",
    )
    parser.add_argument(
        "--clock-offset",
        action="append",
        default=[],
        metavar="SOURCE=SECONDS",
        help="add SECONDS to the timestamps of SOURCE (repeatable)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def _offsets(items: list[str]) -> dict[str, float]:
    out = {}
    for item in items:
        source, sep, value = item.partition("=")
        try:
            out[source.strip()] = float(value)
        except ValueError:
            raise ValueError(f"--clock-offset {item!r}: expected SOURCE=SECONDS") from None
        if not sep or not source.strip():
            raise ValueError(f"--clock-offset {item!r}: expected SOURCE=SECONDS")
    return out


def run(args: argparse.Namespace) -> int:
    """Run the analysis; returns the exit code."""
    from twin_server.analysis import AnalysisParams, analyze
    from twin_server.analysis.survey import SurveyError, survey_map

    def say(msg: str) -> None:
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    try:
        site = load_site(args.site)
    except SiteError as exc:
        print(f"error: invalid site: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        offsets = _offsets(args.clock_offset)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    t0 = time.perf_counter()
    try:
        loaded = load_readings_any(Path(args.readings), site)
    except ReadingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if loaded.rejected_rows:
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(loaded.rejected.items()))
        say(f"analyze: skipped {loaded.rejected_rows} bad row(s) ({reasons})")
    try:
        smap = survey_map(site, Path(args.site).resolve().parent, say=say)
    except SurveyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    params = AnalysisParams(switch_free=args.switch_free, clock_offsets_s=offsets, survey_map=smap)
    result = analyze(loaded.frame, site, rejected_rows=loaded.rejected_rows, params=params, progress=say)
    result.extra["rejected_by_reason"] = dict(sorted(loaded.rejected.items()))
    try:
        result.write(args.out)
    except OSError as exc:
        print(f"error: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    say(f"analyze: wrote {args.out} ({len(loaded.frame)} readings, {time.perf_counter() - t0:.2f} s)")
    return 0
