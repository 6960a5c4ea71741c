"""Cost of validating big JSON answers through their response models.

Baseline in the same run: the same route function mounted a second time with the untyped
``dict[str, Any]`` response model it had before, requested alternately with the typed one
over the same journal (a simulated pilot shift), so the ratio is what the models add to a
whole request (analysis cached, JSON out). ``/api/sites/{site}/shifts/{day}/replay`` answers
with its document serialised as before (the model only documents it): this bench measures what
validating it would cost, through a copy of the route that validates.

    .venv/bin/python bench/api/bench_response_models.py [--hours 8] [--draws 15]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from twin_server.api import routes
from twin_server.api.app import create_app
from twin_server.api.schemas import AnalysisOut, ShiftReplayOut
from twin_server.ingest.publish import frame_to_wire
from twin_server.readings import load_readings_csv
from twin_server.settings import Settings
from twin_server.site import load_site
from twin_server.store.journal import Journal

ROOT = Path(__file__).resolve().parents[2]
T_ARRIVAL_NS = 1_800_000_000 * 10**9
MODELS = {"replay": ShiftReplayOut, "analysis": AnalysisOut}


def journal_of_shift(d: Path, hours: float, seed: int) -> Any:
    site_path = ROOT / "examples" / "pilot_site.yaml"
    site = load_site(site_path)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "twin_server",
            "simulate",
            "--site",
            str(site_path),
            "--hours",
            str(hours),
            "--seed",
            str(seed),
            "--out",
            str(d / "sim"),
        ],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    loaded = load_readings_csv(d / "sim" / "readings.csv", site)
    journal = Journal(d / "data" / "journal.sqlite")
    journal.write_batch([(r, T_ARRIVAL_NS) for r in frame_to_wire(loaded.frame, site)])
    journal.close()
    return site


def _validated_replay(site: str, request: Request, day: str) -> dict[str, Any]:
    """The replay route's document as a dict, for FastAPI to validate."""
    return json.loads(routes.replay(site, request, day).body)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument("--draws", type=int, default=15)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        site = journal_of_shift(d, args.hours, args.seed)
        app = create_app(Settings(site=site, data_dir=d / "data", broker_host=None))
        app.add_api_route(
            "/bench/typed/{site}/{day}/replay",
            _validated_replay,
            response_model=ShiftReplayOut,
            response_model_exclude_unset=True,
        )
        for name, fn in (("replay", _validated_replay), ("analysis", routes.analysis)):
            app.add_api_route(f"/bench/untyped/{{site}}/{{day}}/{name}", fn, response_model=dict[str, Any])
        with TestClient(app) as client:
            day = client.get(f"/api/sites/{site.site}/shifts").json()[0]["day"]
            print(
                f"pilot shift of {args.hours} h, {args.draws} alternating draws, median ms (typed / untyped):"
            )
            for name in ("replay", "analysis"):
                typed = (
                    f"/bench/typed/{site.site}/{day}/replay"
                    if name == "replay"
                    else f"/api/sites/{site.site}/shifts/{day}/{name}"
                )
                untyped = f"/bench/untyped/{site.site}/{day}/{name}"
                a, b = client.get(typed), client.get(untyped)  # the first runs the analysis
                assert a.status_code == b.status_code == 200 and a.content == b.content, name
                times: dict[str, list[float]] = {typed: [], untyped: []}
                for _ in range(args.draws):
                    for path in (typed, untyped):
                        t = time.perf_counter()
                        client.get(path)
                        times[path].append(time.perf_counter() - t)
                mt, mu = statistics.median(times[typed]), statistics.median(times[untyped])
                print(
                    f"  {name:8s} {len(a.content) / 1e3:8.0f} kB  {mt * 1e3:7.1f} / {mu * 1e3:7.1f}"
                    f"  ratio {mt / mu:.2f}  (whole request)"
                )
                # The validation + serialisation step alone, as FastAPI runs it, on the same document.
                doc, kinds = a.json(), (TypeAdapter(MODELS[name]), TypeAdapter(dict[str, Any]))
                step: dict[int, list[float]] = {0: [], 1: []}
                for _ in range(args.draws):
                    for k, ta in enumerate(kinds):
                        t = time.perf_counter()
                        ta.dump_json(ta.validate_python(doc), exclude_unset=k == 0)
                        step[k].append(time.perf_counter() - t)
                st, su = statistics.median(step[0]), statistics.median(step[1])
                print(
                    f"  {name:8s} {'':11s} {st * 1e3:7.1f} / {su * 1e3:7.1f}  ratio {st / su:.2f}"
                    "  (validation + JSON step alone)"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
