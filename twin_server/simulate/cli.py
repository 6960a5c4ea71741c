"""``python -m twin_server simulate``: write a simulated shift's readings.csv and truth.json."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from twin_server.readings import write_readings_csv
from twin_server.site import SiteError, load_site, parse_site

from .core import simulate
from .params import SimParams
from .site_gen import synthetic_site_dict

__all__ = ["add_arguments", "parse_param", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``simulate`` command."""
    parser.add_argument("--site", type=Path, help="site YAML (or use --machines/--workers)")
    parser.add_argument("--machines", type=int, help="generate a synthetic site with this many machines")
    parser.add_argument("--workers", type=int, help="workers of the synthetic site (default 2)")
    parser.add_argument("--hours", type=float, default=8.0, help="length of the simulated window (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument(
        "--start",
        type=float,
        help="window start, epoch seconds (default: the shift start on 2023-02-06, site time)",
    )
    parser.add_argument("--forgotten-share", type=float, help="share of forgotten presses (default 0.05)")
    parser.add_argument("--clock-offset-sd", type=float, help="sd of per-device clock offsets, s (default 0)")
    parser.add_argument("--no-locator", action="store_true", help="no commercial-locator zone rows")
    parser.add_argument("--no-rssi", action="store_true", help="no BLE RSSI rows")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set any simulator parameter (docs/simulator.md), e.g. lag_median_s=25 "
        "or walk_speed_mps=0.9,1.1; repeatable",
    )


def parse_param(params: SimParams, text: str) -> SimParams:
    """Apply one ``NAME=VALUE`` override (YAML value; ``a,b`` for a range) to ``params``."""
    name, sep, raw = text.partition("=")
    name = name.strip().replace("-", "_")
    known = {f.name: f for f in dataclasses.fields(SimParams)}
    if not sep or name not in known or name == "tasks":
        raise ValueError(
            f"--param {text!r}: expected NAME=VALUE with NAME one of the parameters in docs/simulator.md"
        )
    current = getattr(params, name)
    try:
        value: Any = yaml.safe_load(f"[{raw}]" if "," in raw and not raw.strip().startswith("[") else raw)
        if isinstance(current, bool):
            if not isinstance(value, bool):
                raise TypeError
        elif isinstance(current, str):
            value = str(value)
        elif isinstance(current, tuple):
            value = tuple(float(v) for v in value)
            if len(value) != 2 or value[0] > value[1]:
                raise ValueError
        else:
            value = float(value)
    except (TypeError, ValueError, yaml.YAMLError):
        raise ValueError(f"--param {text!r}: bad value for {name} (default {current!r})") from None
    try:
        return dataclasses.replace(params, **{name: value})
    except ValueError as exc:
        raise ValueError(f"--param {text!r}: {exc}") from None


def run(args: argparse.Namespace) -> int:
    """Simulate and write ``readings.csv``, ``truth.json`` (and ``site.yaml`` for synthetic sites)."""
    began = time.perf_counter()
    params = SimParams()
    try:
        for text in args.param:
            params = parse_param(params, text)
        if args.forgotten_share is not None:
            if not 0 <= args.forgotten_share <= 1:
                raise ValueError("--forgotten-share must be between 0 and 1")
            params = dataclasses.replace(params, forgotten_share=args.forgotten_share)
        if args.clock_offset_sd is not None:
            if args.clock_offset_sd < 0:
                raise ValueError("--clock-offset-sd must be >= 0")
            params = dataclasses.replace(params, clock_offset_sd_s=args.clock_offset_sd)
        params = dataclasses.replace(
            params, locator=params.locator and not args.no_locator, rssi=params.rssi and not args.no_rssi
        )
        if not (args.hours > 0 and math.isfinite(args.hours)):
            raise ValueError("--hours must be a positive number")
        if args.start is not None and not math.isfinite(args.start):
            raise ValueError("--start must be a finite epoch time in seconds")
    except ValueError as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 2
    site_doc = None
    try:
        if args.machines is not None:
            if args.site is not None:
                raise SiteError(["give either --site or --machines/--workers, not both"], "simulate")
            site_doc = synthetic_site_dict(args.machines, 2 if args.workers is None else args.workers)
            site = parse_site(site_doc, "synthetic site")
        elif args.site is not None:
            site = load_site(args.site)
        else:
            raise SiteError(["--site or --machines is required"], "simulate")
    except (SiteError, ValueError) as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 2
    sim = simulate(site, hours=args.hours, seed=args.seed, start=args.start, params=params)
    out: Path = args.out
    # Recorded so that ``evaluate`` finds the site for its baselines without being told; a
    # generated site lies next to the truth, so the output is the same wherever it is written.
    site_file = "site.yaml" if site_doc is not None else str(Path(args.site).resolve())
    sim.truth.extra["simulation"]["site_file"] = site_file
    try:
        out.mkdir(parents=True, exist_ok=True)
        if site_doc is not None:
            (out / "site.yaml").write_text(yaml.safe_dump(site_doc, sort_keys=False, allow_unicode=True))
        write_readings_csv(sim.readings, out / "readings.csv")
        sim.truth.write(out / "truth.json")
    except OSError as exc:
        print(f"simulate: cannot write to {out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    presses = sim.facts["presses"]
    summary = {
        "readings": len(sim.readings),
        "tasks": len(sim.truth.tasks),
        "presses_forgotten": f"{presses['forgotten']}/{presses['expected']}",
        "seconds": round(time.perf_counter() - began, 2),
    }
    print(f"simulate: wrote {out / 'readings.csv'} and {out / 'truth.json'} " + json.dumps(summary))
    return 0
