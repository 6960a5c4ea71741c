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
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from twin_server.api import routes
from twin_server.api.app import create_app
from twin_server.api.schemas import AnalysisOut, ShiftReplayOut
from twin_server.ingest.publish import frame_to_wire
from twin_server.settings import Settings
from twin_server.simulate import simulate
from twin_server.site import load_site
from twin_server.store.journal import Journal

ROOT = Path(__file__).resolve().parents[2]
T_ARRIVAL_NS = 1_800_000_000 * 10**9
MODELS = {"replay": ShiftReplayOut, "analysis": AnalysisOut}


def journal_of_shift(d: Path, hours: float, seed: int) -> Any:
    """A journal holding a simulated pilot shift; returns the site."""
    site = load_site(ROOT / "examples" / "pilot_site.yaml")
    journal = Journal(d / "data" / "journal.sqlite")
    readings = frame_to_wire(simulate(site, hours, seed).readings, site)
    journal.write_batch([(r, T_ARRIVAL_NS) for r in readings])
    journal.close()
    return site


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
        # The replay as shipped (serialised, not validated), as before (an untyped dict), and
        # validated through its model; the analysis as shipped (validated) and as before.
        variants = {
            "replay": {
                "shipped": "/api/sites/{site}/shifts/{day}/replay",
                "validated": "/bench/typed/{site}/{day}/replay",
                "before": "/bench/untyped/{site}/{day}/replay",
            },
            "analysis": {
                "shipped": "/api/sites/{site}/shifts/{day}/analysis",
                "before": "/bench/untyped/{site}/{day}/analysis",
            },
        }
        app.add_api_route(
            variants["replay"]["validated"],
            routes.replay_document,
            response_model=ShiftReplayOut,
            response_model_exclude_unset=True,
        )
        for name, fn in (("replay", routes.replay_document), ("analysis", routes.analysis)):
            app.add_api_route(variants[name]["before"], fn, response_model=dict[str, Any])
        with TestClient(app) as client:
            day = client.get(f"/api/sites/{site.site}/shifts").json()[0]["day"]
            print(
                f"pilot shift of {args.hours} h, {args.draws} alternating draws, median ms, ratio to before:"
            )
            for name, paths in variants.items():
                urls = {k: p.format(site=site.site, day=day) for k, p in paths.items()}
                answers = {k: client.get(u) for k, u in urls.items()}  # the first runs the analysis
                assert len({a.content for a in answers.values()}) == 1, name  # the same bytes
                times: dict[str, list[float]] = {k: [] for k in urls}
                for _ in range(args.draws):
                    for k, url in urls.items():
                        t = time.perf_counter()
                        client.get(url)
                        times[k].append(time.perf_counter() - t)
                before = statistics.median(times["before"])
                size_kb = len(answers["before"].content) / 1e3
                for k in urls:
                    m = statistics.median(times[k])
                    print(f"  {name:8s} {size_kb:5.0f} kB  {k:9s} {m * 1e3:7.1f}  ratio {m / before:.2f}")
                # The validation + serialisation step alone, as FastAPI runs it, on the same document.
                doc, kinds = (
                    answers["before"].json(),
                    (TypeAdapter(MODELS[name]), TypeAdapter(dict[str, Any])),
                )
                step: dict[int, list[float]] = {0: [], 1: []}
                for _ in range(args.draws):
                    for i, ta in enumerate(kinds):
                        t = time.perf_counter()
                        ta.dump_json(ta.validate_python(doc), exclude_unset=i == 0)
                        step[i].append(time.perf_counter() - t)
                st, su = statistics.median(step[0]), statistics.median(step[1])
                print(
                    f"  {name:8s} {'':8s} model / dict step alone {st * 1e3:5.1f} / {su * 1e3:5.1f} ms"
                    f"  ratio {st / su:.2f}"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
