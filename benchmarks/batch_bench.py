"""Benchmark batch transform file to file: in-process, through the endpoint, on Dask (1 and 2 workers).

All on the same rows (``mlprod.data.write_batch_input``, seeded, 10 bad lines), each job a fresh
``python -m mlprod.batch`` process timed from its start to its exit (process start included),
against ONNX Runtime alone on 1,000-row batches of the same rows in this process: the reference
of issue 11's targets (in-process >= 0.1x, endpoint >= 0.03x). Every back end's ``.out`` must be
the same bytes (and ``.errors`` too), or the run fails.

``.venv/bin/python benchmarks/batch_bench.py --rows 1000000 --out build/bench`` writes
``batch.json`` and ``batch.md``; ``benchmarks/bench.py`` (``make bench``) runs it too.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlprod.files import atomic_write

ROOT = Path(__file__).resolve().parent.parent
ORT_BATCH = 1_000


def ort_feeds(path: Path, model: Path) -> tuple:
    """The ONNX Runtime session and the feeds of the file's good rows (built once, not timed)."""
    from mlprod.batch import lines, scoring

    loaded = scoring.load_model(model.parent.parent.parent, model.parent.parent.name,
                                int(model.parent.name))
    feeds = [lines.parse(chunk, loaded.features).feed
             for chunk in lines.read_chunks(path, 1 << 20)]
    return scoring.session_for(loaded), feeds


def ort_alone(session, feeds: list, repeats: int = 2) -> float:
    """Rows/s of ONNX Runtime ``run`` on 1,000-row batches of the feeds (best of repeats)."""
    best = 0.0
    for _ in range(repeats):
        rows = 0
        start = time.perf_counter()
        for feed in feeds:
            n = len(next(iter(feed.values())))
            for i in range(0, n, ORT_BATCH):
                session.run(["label", "probabilities"], {k: v[i:i + ORT_BATCH]
                                                         for k, v in feed.items()})
            rows += n
        best = max(best, rows / (time.perf_counter() - start))
    return best


def job(args: list[str], out: Path) -> dict:
    """Run one ``python -m mlprod.batch`` process; return its wall time and summary line."""
    command = [sys.executable, "-m", "mlprod.batch", "--output", str(out), "--no-progress", *args]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
    outputs = sorted(out.glob("*.out")) + sorted(out.glob("*.errors"))
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in outputs)).hexdigest()
    return {"seconds": round(seconds, 3), "summary": done.stdout.strip(), "sha256": digest}


def run(rows: int, work: Path, repository: Path) -> dict:
    """Measure every back end on one generated file of ``rows`` lines; return the report."""
    from mlprod import data
    from mlprod.serving import LocalServer

    source = work / "in" / "rows.csv"
    bad = [1 + i * (rows // 10) for i in range(10)] if rows >= 10 else []
    data.write_batch_input(source, rows, bad_lines=bad)
    model = repository / "penguins" / "1" / "model.onnx"
    session, feeds = ort_feeds(source, model)
    report: dict = {"rows": rows, "bad_lines": len(bad), "cpus": os.cpu_count(),
                    "load_before": os.getloadavg()[0]}
    local = ["--input", str(source), "--model-repository", str(repository), "--model", "penguins",
             "--version", "1"]
    jobs = {"in-process": local}
    for workers in (1, 2):
        jobs[f"dask, {workers} worker{'s' if workers > 1 else ''}"] = [
            *local, "--dask", "local", "--dask-workers", str(workers)]
    results = {}
    # ONNX Runtime alone is timed right before each job, so each ratio compares figures taken
    # under the same load (other work on the machine changes both alike).
    for name, args in jobs.items():
        print(f"batch: {name}", flush=True)
        reference = ort_alone(session, feeds)
        results[name] = job(args, work / name.replace(" ", "-").replace(",", ""))
        results[name]["ort_alone_rows_per_s"] = round(reference)
    print("batch: endpoint", flush=True)
    with LocalServer(repository) as server:
        reference = ort_alone(session, feeds)
        results["endpoint"] = job(["--input", str(source), "--endpoint", server.url,
                                   "--model", "penguins", "--version", "1"], work / "endpoint")
        results["endpoint"]["ort_alone_rows_per_s"] = round(reference)
    for result in results.values():
        result["rows_per_s"] = round(rows / result["seconds"])
        result["x_ort_alone"] = round(result["rows_per_s"] / result["ort_alone_rows_per_s"], 4)
    report["jobs"] = results
    report["load_after"] = os.getloadavg()[0]
    digests = {r["sha256"] for r in results.values()}
    report["identical_outputs"] = len(digests) == 1
    if len(digests) != 1:
        raise SystemExit(f"The back ends wrote different .out files: {results}")
    inproc, endpoint = results["in-process"], results["endpoint"]
    report["targets"] = [
        {"target": "in-process >= 0.1x ONNX Runtime alone (1,000-row batches), file to file, "
                   "process start included",
         "measured": f"{inproc['x_ort_alone']:.3f}x", "met": inproc["x_ort_alone"] >= 0.1},
        {"target": "endpoint >= 0.03x ONNX Runtime alone",
         "measured": f"{endpoint['x_ort_alone']:.3f}x", "met": endpoint["x_ort_alone"] >= 0.03},
    ]
    return report


def markdown(r: dict) -> str:
    """The batch section of the benchmark report."""
    out = ["## Batch transform, file to file", "",
           f"{r['rows']:,} lines ({r['bad_lines']} bad) on {r['cpus']} cores; each job is a fresh "
           f"`python -m mlprod.batch` process timed from start to exit, right after ONNX Runtime "
           f"alone on 1,000-row batches of the same rows (its figure in the table). Load average "
           f"{r['load_before']:.1f} before, {r['load_after']:.1f} after. All "
           f"`.out` and `.errors` files byte-identical: {'yes' if r['identical_outputs'] else '**no**'}.", "",
           "| back end | seconds | rows/s | ORT alone, rows/s | × ORT alone | job's own summary |",
           "|---|---|---|---|---|---|"]
    for name, v in r["jobs"].items():
        out.append(f"| {name} | {v['seconds']:.2f} | {v['rows_per_s']:,} | "
                   f"{v['ort_alone_rows_per_s']:,} | {v['x_ort_alone']:.3f} "
                   f"| {v['summary'].removeprefix('mlprod.batch: ')} |")
    out += ["", "| target | measured | met |", "|---|---|---|"]
    out += [f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else '**no**'} |"
            for t in r["targets"]]
    out += ["", f"Command: `.venv/bin/python benchmarks/batch_bench.py --rows {r['rows']} "
                f"--out build/bench`.", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/batch_bench.py", description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--out", default=str(ROOT / "build" / "bench"))
    args = parser.parse_args(argv)
    from mlprod import quickstart

    with tempfile.TemporaryDirectory(prefix="batch-bench-") as work:
        report = run(args.rows, Path(work), quickstart.model_repository())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "batch.json", json.dumps(report, indent=2))
    atomic_write(out / "batch.md", markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
