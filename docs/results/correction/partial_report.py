"""Report of a partly finished bench run (the runner writes report.md only at the end): rows so far, in suite order."""
import json, sys, time
from pathlib import Path
from analogdiff.bench.suite import load_suite, unit_row_ids
from analogdiff.bench.results import ResultStore
from analogdiff.bench.report import write_report
from analogdiff.bench.figures import suite_figures

out, suite = Path(sys.argv[1]), load_suite(Path(sys.argv[2]))
store = ResultStore(out)
units = suite.units()
order = [r for u in units for r in (unit_row_ids(store, u) or [])]
rows = store.write_tables(order)
walls = [json.loads(l)["wall_s"] for l in open(out / "timings.jsonl")]
meta = {"suite": suite.name, "runs": len(units), "ran": len(rows), "wall_s": float(sys.argv[3]),
        "pool": "Dask LocalCluster, 3 single-threaded workers, on the shared 2-core machine (load average ~30)",
        "machine": "shared 2-core session machine", "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "partial": f"{len(rows)} of {len(units)} units finished before the session's deadline"}
(out / "run.json").write_text(json.dumps(meta, indent=1) + "\n")
figs = suite_figures(rows, out / "figures", token_rate_per_s=suite.token_rate_per_s,
                     headline_drift_time_s=suite.headline_drift_time_s, headline_steps=suite.headline_steps)
print(write_report(suite, rows, out, meta, figs), len(rows), "rows")
