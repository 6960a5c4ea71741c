"""Can any forecast of a run's end beat the naive median by 30 % where runs are independent?

On the shops whose runs are drawn each on its own (the scenario family's ``lognormal`` shops
and the demo's pilot), the simulator draws every run length from one clipped log-normal
distribution, whatever came before. The best any forecast can do there, knowing only how long
the run has gone on, is the median of that distribution conditioned on the time elapsed. This
*oracle* knows the simulator's exact distribution. Scored on the backtest's own run-end
forecasts (same minutes, same truth, same naive baselines; binned by the oracle's own median
lead time as the backtest bins the forecast), it bounds what the forecast can reach there.

Run after the backtest (it reads the backtest's cache):
``.venv/bin/python bench/forecast/oracle.py [--cache DIR]``
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import statistics
import sys
from pathlib import Path

from scipy.stats import norm

sys.path.insert(0, str(Path(__file__).resolve().parent))

from backtest import BINS, _bin, _params_key
from data import REPORT_SHOPS, demo_shop, family_shop

from twin_server.forecast.model import ForecastParams


def conditional_median_s(
    elapsed_s: float, median_min: float, sigma: float, lo_min: float, hi_min: float
) -> float:
    """Median run length (s) of ``clip(median * exp(sigma Z), lo, hi)`` given it exceeds ``elapsed_s``."""
    e = elapsed_s / 60.0
    surv = 1.0 if e < lo_min else 1.0 - norm.cdf(math.log(max(e, 1e-9) / median_min) / sigma)
    if e >= hi_min or surv <= 0.0:
        return elapsed_s
    x = median_min * math.exp(sigma * norm.ppf(1.0 - surv / 2.0))
    return 60.0 * max(e, min(max(x, lo_min), hi_min))


def table(rows: list[dict], params) -> list[str]:
    scored = []
    for r in rows:
        if r["event"] != "run_end" or r["status"] != "ok" or r["naive_med"] is None:
            continue
        t, y = r["t"], r["truth"]
        oracle = r["since"] + conditional_median_s(
            t - r["since"], params.run_median_min, params.run_sigma, params.run_min_min, params.run_max_min
        )
        oracle = max(oracle, t)
        scored.append(
            {
                "bin": _bin((oracle - t) / 60.0),
                "oracle": abs(oracle - y) / 60.0,
                "model": abs(r["p50"] - y) / 60.0 if r["p50"] is not None else math.nan,
                "med": abs(r["naive_med"] - y) / 60.0,
                "el": abs(r["naive_el"] - y) / 60.0,
            }
        )
    out = [
        "| horizon (oracle's median lead) | forecasts | MAE oracle | MAE naive median | MAE naive elapsed "
        "| oracle vs best naive |",
        "|---|---|---|---|---|---|",
    ]
    for label, _, _ in BINS:
        sel = [x for x in scored if x["bin"] == label]
        if not sel:
            continue
        o = statistics.fmean(x["oracle"] for x in sel)
        best = min(statistics.fmean(x["med"] for x in sel), statistics.fmean(x["el"] for x in sel))
        out.append(
            f"| {label} min | {len(sel)} | {o:.1f} | {statistics.fmean(x['med'] for x in sel):.1f} | "
            f"{statistics.fmean(x['el'] for x in sel):.1f} | {100 * (o / best - 1):+.0f} % |"
        )
    o = statistics.fmean(x["oracle"] for x in scored)
    med = statistics.fmean(x["med"] for x in scored)
    el = statistics.fmean(x["el"] for x in scored)
    out.append(
        f"| all | {len(scored)} | {o:.1f} | {med:.1f} | {el:.1f} "
        f"| {100 * (o / med - 1):+.0f} % vs naive median |"
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "twin-forecast-bench"))
    parser.add_argument("--history", type=int, default=12)
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--key", default=None, help="the backtest cache's key (default: this code's)")
    args = parser.parse_args()
    cache, key = Path(args.cache), args.key or _params_key(ForecastParams())
    out = ["## The oracle on independent runs (end of the current run)", ""]
    shops = [family_shop(s) for s in REPORT_SHOPS]
    groups = [(s.name, s.params, f"bt-{s.name}") for s in shops if s.world == "lognormal"]
    groups.append(("demo journals", demo_shop().params, "bt-demo"))
    for name, params, prefix in groups:
        rows = []
        for k in range(args.history, args.history + args.days):
            f = cache / f"{prefix}-{k:02d}-{key}.json.gz"
            if f.exists():
                with gzip.open(f, "rt") as fh:
                    rows += json.load(fh)["rows"]
        if not rows:
            continue
        out += [
            f"### {name} (runs: log-normal, median {params.run_median_min:.0f} min, log-sd "
            f"{params.run_sigma:.2f}, clipped to {params.run_min_min:.0f}-{params.run_max_min:.0f} min)",
            "",
        ]
        out += [*table(rows, params), ""]
    print("\n".join(out))


if __name__ == "__main__":
    main()
