"""Benchmark the reference server against the in-process floor and a bare endpoint, in one run.

``.venv/bin/python benchmarks/bench.py --out build/bench`` (what ``make bench`` runs) writes
``bench.md`` and ``bench.json``. Same model everywhere (penguins version 1, logistic regression);
servers pinned to core 0 (``taskset -c 0``), the load generator to core 1 (``taskset -c 1 wrk
-t1``); any non-2xx answer fails the run. Needs ``wrk`` (``apt-get install -y wrk``).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import online_sweep  # beside this file (python puts the script's folder on sys.path)

from mlprod.files import atomic_write

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BATCH = 1_000


# --- the machine ---------------------------------------------------------------------------
def cpu_busy(seconds: float = 1.0) -> list[float]:
    """Return each core's busy share over ``seconds`` (from /proc/stat), to judge the noise."""
    def sample() -> dict[str, list[int]]:
        lines = Path("/proc/stat").read_text().splitlines()
        return {ln.split()[0]: [int(x) for x in ln.split()[1:]]
                for ln in lines if re.match(r"cpu\d", ln)}

    first = sample()
    time.sleep(seconds)
    second = sample()
    shares = []
    for cpu, after in second.items():
        delta = [a - b for a, b in zip(after, first[cpu], strict=True)]
        idle = delta[3] + delta[4]
        shares.append(round(1 - idle / max(1, sum(delta)), 3))
    return shares


def core_ticks(core: int) -> int:
    """Return the clock ticks core ``core`` has spent busy since boot (/proc/stat)."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{core} "):
            values = [int(x) for x in line.split()[1:]]
            return sum(values) - values[3] - values[4]  # all but idle and iowait
    return 0


def process_ticks(pid: int) -> int:
    """Return the clock ticks process ``pid`` and its waited-for children have used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def versions() -> dict[str, str]:
    """Return the versions of what the figures depend on: the stack and wrk."""
    from importlib.metadata import version

    found = {name: version(name) for name in ("onnxruntime", "numpy", "starlette", "uvicorn",
                                              "uvloop", "httptools", "orjson")}
    banner = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    found["wrk"] = (banner.stdout + banner.stderr).split(" [")[0].removeprefix("wrk ").strip()
    return found


def load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


# --- request bodies ------------------------------------------------------------------------
def frames():
    from mlprod import data

    one = data.split().X_test.head(1).reset_index(drop=True)
    batch = data.synthesize(BATCH, seed=data.SEED)[data.FEATURES]
    return one, batch


def v2_body(frame) -> bytes:
    from mlprod import data
    from mlprod.client import encode_v2

    return json.dumps(encode_v2(frame, data.schema()), separators=(",", ":")).encode()


def split_body(frame) -> bytes:
    from mlprod import data

    rows = frame[data.FEATURES].astype(object).where(frame[data.FEATURES].notna(), None)
    return json.dumps({"dataframe_split": {"columns": data.FEATURES,
                                           "data": rows.values.tolist()}},
                      separators=(",", ":")).encode()


def csv_body(frame) -> bytes:
    from mlprod import data

    return frame[data.FEATURES].to_csv(index=False, header=False).encode()


# --- the in-process floor ------------------------------------------------------------------
def floor(model: Path) -> dict:
    """Time ONNX Runtime's ``run`` on 1 and 1,000 rows in this process, pinned to core 0."""
    import onnxruntime as ort

    from mlprod import data, export

    one, batch = frames()
    affinity = os.sched_getaffinity(0)
    out: dict = {}
    try:
        for threads, cores in ((1, {0}), (2, {0, 1})):
            os.sched_setaffinity(0, cores)
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            session = ort.InferenceSession(str(model), options,
                                           providers=["CPUExecutionProvider"])
            single = export.onnx_inputs(one, data.schema())
            many = export.onnx_inputs(batch, data.schema())
            one_row = _p50_us(lambda s=session, x=single: s.run(None, x), 3000)
            rows = _p50_us(lambda s=session, x=many: s.run(None, x), 300)
            out[f"threads_{threads}"] = {"one_row_p50_us": one_row,
                                         "batch_rows_per_s": BATCH / (rows / 1e6)}
    finally:
        os.sched_setaffinity(0, affinity)
    return out


def _p50_us(call, repeats: int) -> float:
    for _ in range(min(200, repeats)):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        call()
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1000


# --- processes and wrk ---------------------------------------------------------------------
def served(command: list[str], ready_path: str = "/v2/health/ready",
           token: str | None = None, args: tuple[str, ...] = ()):
    """A server started by ``command`` (pinned with taskset), ready within 60 s; ``ready_seconds``."""
    from mlprod.serving import LocalServer

    return LocalServer(command=command, ready_path=ready_path, token=token, args=args,
                       ready_timeout=60)


def check(server, path: str, body: bytes, content_type: str, rows: int) -> None:
    """Send ``body`` once to ``server`` and check a 200 that covers every row."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    headers = {"Content-Type": content_type, "Accept": content_type}
    if server.token:
        headers["Authorization"] = f"Bearer {server.token}"
    connection.request("POST", path, body, headers)
    response = connection.getresponse()
    answer = response.read()
    if response.status != 200:
        raise RuntimeError(f"POST {path} answered {response.status}: {answer[:500]!r}")
    if content_type == "text/csv":  # a header line only on servers of wave 1 (CONTRACTS §5)
        lines = answer.decode().strip().splitlines()
        if lines and lines[0].startswith("label,"):
            lines = lines[1:]
        assert len(lines) == rows, (len(lines), rows)
    else:
        parsed = json.loads(answer)
        count = (len(parsed["predictions"]) if "predictions" in parsed
                 else parsed["outputs"][0]["shape"][0])
        assert count == rows, (count, rows)


def wrk(port: int, path: str, body: bytes, content_type: str, connections: int, seconds: int,
        headers: dict | None = None, cores: str = "1") -> dict:
    """Run ``wrk -t1`` pinned to ``cores``; return req/s and latency percentiles (ms).

    Raises
    ------
    RuntimeError
        If any answer was not 2xx, or wrk reported socket errors.
    """
    text = body.decode()
    if "]==]" in text:
        raise ValueError("The body contains ']==]', which would end the Lua long string.")
    lines = ['wrk.method = "POST"', f'wrk.headers["Content-Type"] = "{content_type}"',
             f'wrk.headers["Accept"] = "{content_type}"']
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in (headers or {}).items()]
    lines.append(f"wrk.body = [==[{text}]==]")  # level-2 long string: JSON may hold "]]"
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("\n".join(lines) + "\n")
    try:
        command = ["taskset", "-c", cores, "wrk", "-t1", f"-c{connections}",
                   f"-d{seconds}s", "--latency", "-s", script.name,
                   f"http://127.0.0.1:{port}{path}"]
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script.name)
    return parse_wrk(out)


def parse_wrk(out: str) -> dict:
    """Read req/s, p50, p99 and the failure counts from wrk's report."""
    def ms(value: str) -> float:
        found = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
        if found is None:
            raise RuntimeError(f"Cannot read the latency {value!r} in wrk's report:\n{out}")
        number, unit = found.groups()
        return float(number) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]

    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       out)
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    if non_2xx or requests == 0:
        raise RuntimeError(f"wrk saw non-2xx answers; the run is void:\n{out}")
    if errors and sum(int(x) for x in errors.groups()) > 0:
        raise RuntimeError(f"wrk saw socket errors; the run is void:\n{out}")
    return {
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)),
        "p99_ms": ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)),
        "requests": requests,
    }


# --- the run -------------------------------------------------------------------------------
def single_model_repository(target: Path) -> Path:
    """Copy penguins version 1 (logistic regression, the production alias) alone into ``target``."""
    from mlprod import quickstart

    source = quickstart.model_repository() / "penguins"
    (target / "penguins").mkdir(parents=True)
    shutil.copytree(source / "1", target / "penguins" / "1")
    for name in ("config.pbtxt",):
        shutil.copy(source / name, target / "penguins" / name)
    (target / "penguins" / "aliases.json").write_text('{"production": 1}')
    return target


def run(out: Path, seconds: int, warmup: int, repeat: int = 1, batch_rows: int = 0,
        turns: int = 5) -> dict:
    from mlprod.serving import server_command

    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed: `apt-get install -y wrk` (taskset is in "
                             f"util-linux). The benchmark needs both.")
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("The benchmark pins the server and wrk to different cores: it needs 2.")
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    stack = contextlib.ExitStack()
    try:
        repo = single_model_repository(work / "models")
        model = repo / "penguins" / "1" / "model.onnx"
        one, batch = frames()
        bodies = {
            "v2": (v2_body(one), v2_body(batch), "application/json"),
            "csv": (csv_body(one), csv_body(batch), "text/csv"),
            "split": (split_body(one), split_body(batch), "application/json"),
            **online_sweep.bodies(),
        }
        report: dict = {"machine": {
            "cpu": cpu_model(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "versions": versions(), "busy_before": cpu_busy(), "load_before": load_average()}}
        report["floor"] = floor(model)

        def measure(server, path: str, kind: str, connections: int,
                    batch_size: int = 1, headers: dict | None = None,
                    cores: str = "1") -> dict:
            return measure_each([(server, path, kind, headers)], connections, batch_size,
                                cores)[0]

        def measure_each(targets: list[tuple], connections: int, batch_size: int = 1,
                         cores: str = "1", rounds: int | None = None) -> list[dict]:
            """``rounds`` (default ``repeat``) rounds of one wrk run on each ``(server, path,
            kind, headers)`` in turn; the best run of each, and every run's req/s in order.
            Taking turns spreads every target over the same minute, so a drift of the
            machine's speed reaches them alike."""
            todo = []
            for server, path, kind, headers in targets:
                single, many, content_type = bodies[kind]
                body = single if batch_size == 1 else many
                check(server, path, body, content_type, batch_size)
                wrk(server.port, path, body, content_type, connections, warmup, headers, cores)
                todo.append((server, path, kind, headers, body, content_type, []))
            for _ in range(rounds or repeat):
                for server, path, _, headers, body, content_type, runs in todo:
                    before = (core_ticks(0), process_ticks(server.process.pid), time.monotonic())
                    run = wrk(server.port, path, body, content_type, connections, seconds,
                              headers, cores)
                    after = (core_ticks(0), process_ticks(server.process.pid), time.monotonic())
                    ticks = os.sysconf("SC_CLK_TCK") * (after[2] - before[2])
                    # Core 0 time spent on anything but the server under test: this run's noise.
                    run["core0_other_share"] = round(max(0.0, (after[0] - before[0])
                                                         - (after[1] - before[1])) / ticks, 3)
                    runs.append(run)
            results = []
            for _, path, kind, _, _, _, runs in todo:
                # The best run is the one least disturbed by other work on the machine.
                result = dict(max(runs, key=lambda r: r["requests_per_s"]))
                result["all_requests_per_s"] = [r["requests_per_s"] for r in runs]
                result["rows_per_s"] = result["requests_per_s"] * batch_size
                result["load"] = load_average()
                print(f"  {path} {kind} rows={batch_size} c={connections}: "
                      f"{result['requests_per_s']:,.0f} req/s, p50 {result['p50_ms']:.3f} ms, "
                      f"p99 {result['p99_ms']:.3f} ms; core 0 busy with other work "
                      f"{result['core0_other_share']:.0%}", flush=True)
                results.append(result)
            return results

        def beside_bare(server, label: str, path: str, kind: str) -> dict:
            """The server's single-row c16 figure, measured taking turns with the bare endpoint's;
            ``bare_beside[label]`` keeps the bare figure and each back-to-back pair's ratio
            (server / bare), which the 0.8x targets take the median of."""
            bare_figure, figure = measure_each([(bare, "/predict", "split", None),
                                                (server, path, kind, None)], 16, rounds=turns)
            report["bare_beside"][label] = {"one_row_c16": bare_figure, "ratios": [
                round(s / b, 4) for b, s in zip(bare_figure["all_requests_per_s"],
                                                 figure["all_requests_per_s"], strict=True)]}
            return figure

        print("bare endpoint", flush=True)
        # --parent-pid (the bare endpoint's third argument too): a killed bench leaves no server.
        bare_cmd = ["taskset", "-c", "0", sys.executable, str(HERE / "bare_endpoint.py"),
                    str(model), "{port}", "{parent_pid}"]
        # The bare endpoint stays up: the 0.8x targets compare runs taken in turn with it, so a
        # drift of the machine's speed during the run does not count as a feature's cost.
        bare = stack.enter_context(served(bare_cmd, "/ready"))
        report["bare_beside"] = {}
        report["bare"] = {
            "ready_s": bare.ready_seconds,
            "one_row_c1": measure(bare, "/predict", "split", 1),
            "one_row_c16": measure(bare, "/predict", "split", 16),
            "batch_c4": measure(bare, "/predict", "split", 4, BATCH),
        }

        infer = "/v2/models/penguins/infer"
        server_cmd = server_command("--model-repository", repo, "--port", "{port}")
        print("server, default configuration", flush=True)
        with served(["taskset", "-c", "0", *server_cmd]) as server:
            report["server"] = {
                "ready_s": server.ready_seconds,
                "v2_one_row_c1": measure(server, infer, "v2", 1),
                "v2_one_row_c16": beside_bare(server, "default configuration", infer, "v2"),
                "v2_batch_c4": measure(server, infer, "v2", 4, BATCH),
                "csv_one_row_c1": measure(server, "/invocations", "csv", 1),
                "csv_one_row_c4": measure(server, "/invocations", "csv", 4),
                "csv_one_row_c16": measure(server, "/invocations", "csv", 16),
                "csv_batch_c4": measure(server, "/invocations", "csv", 4, BATCH),
            }
            # Lesson 07: latency against throughput as the requests grow (on demand vs batch).
            report["online_sweep"] = {
                str(size): measure(server, "/invocations", f"csv_{size}",
                                   online_sweep.CONNECTIONS, size)
                for size in online_sweep.SIZES}
        # Each feature of lessons 06-08 on its own, against the same bare endpoint.
        report["features"] = {}
        routed = work / "routed"
        shutil.copytree(repo, routed)
        (routed / "penguins" / "routing.json").write_text(
            '{"variants": [{"name": "production", "version": "production", "weight": 1}]}')
        features = {
            "routing (one variant)": (server_command("--model-repository", routed, "--port",
                                                     "{port}"), [16]),
            "data capture at 100 %": ([*server_cmd, "--capture-dir", str(work / "capture")],
                                      [16]),
            "dynamic batching, 2 ms": ([*server_cmd, "--max-batch-delay-ms", "2"], [1, 16]),
        }
        for label, (command, concurrencies) in features.items():
            print(f"server with {label} (c16 taking turns with the bare endpoint)", flush=True)
            with served(["taskset", "-c", "0", *command]) as server:
                report["features"][label] = {
                    f"v2_one_row_c{c}": beside_bare(server, label, infer, "v2") if c == 16
                    else measure(server, infer, "v2", c) for c in concurrencies}
        print("server with a bearer token", flush=True)
        with served(["taskset", "-c", "0", *server_cmd], token="bench-token") as server:
            report["server_token"] = {"v2_one_row_c16": measure(
                server, infer, "v2", 16, headers={"Authorization": "Bearer bench-token"})}
        print("server, 2 workers on cores 0-1 (wrk shares core 1)", flush=True)
        with served(["taskset", "-c", "0,1", *server_cmd], args=("--workers", "2")) as server:
            report["server_workers_2"] = {"ready_s": server.ready_seconds,
                                          "v2_one_row_c16": measure(server, infer, "v2", 16)}
        if batch_rows:
            import batch_bench  # beside this file: python puts the script's folder on sys.path

            from mlprod import quickstart

            print(f"batch transform, {batch_rows:,} lines", flush=True)
            report["batch"] = batch_bench.run(batch_rows, work / "batch",
                                              quickstart.model_repository())
        report["machine"]["busy_after"] = cpu_busy()
        report["machine"]["load_after"] = load_average()
        report["settings"] = {"seconds": seconds, "warmup": warmup, "repeat": repeat,
                              "turns": turns,
                              "batch_rows": BATCH, "batch_connections": 4}
        report["targets"] = targets(report)
    finally:
        stack.close()
        shutil.rmtree(work, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    online_sweep.plot(report["online_sweep"], out / "latency-throughput.png")
    _write(out / "bench.json", json.dumps(report, indent=2))
    _write(out / "bench.md", markdown(report))
    return report


def targets(r: dict) -> list[dict]:
    """Check the kit's performance targets for this server against the measured figures.

    The targets are those of the team's performance notes: ratios to the bare endpoint measured
    in the same run (absolute figures do not carry over between machines), and 1 M rows/s.
    """
    s, b, f = r["server"], r["bare"], r["floor"]["threads_1"]
    floor_ms = f["one_row_p50_us"] / 1000
    bare_p50 = b["one_row_c1"]["p50_ms"]
    ratio, how = ratio_to_bare(r, "default configuration", s["v2_one_row_c16"])
    v2_rows = s["v2_batch_c4"]["rows_per_s"]
    csv_rows = s["csv_batch_c4"]["rows_per_s"]
    return [
        {"target": "single-row V2 req/s at c16 >= 0.8x the bare endpoint",
         "measured": f"{ratio:.2f}x ({how})", "met": ratio >= 0.8},
        {"target": "single-row V2 p50 at c1 <= 1.2x the bare endpoint's p50",
         "measured": f"{s['v2_one_row_c1']['p50_ms']:.3f} ms vs {bare_p50:.3f} ms "
                     f"({s['v2_one_row_c1']['p50_ms'] / bare_p50:.2f}x; the in-process floor "
                     f"{floor_ms:.4f} ms)",
         "met": s["v2_one_row_c1"]["p50_ms"] <= 1.2 * bare_p50},
        {"target": "1,000-row requests >= 1 M rows/s over V2 JSON",
         "measured": f"{v2_rows / 1e6:.2f} M rows/s", "met": v2_rows >= 1e6},
        {"target": "SageMaker CSV 1,000-row requests within 2x of V2 JSON",
         "measured": f"{csv_rows / 1e6:.2f} M rows/s ({csv_rows / v2_rows:.2f}x V2)",
         "met": csv_rows >= v2_rows / 2},
        *(feature_target(r, label) for label in r.get("features", {}) if "batching" not in label),
        {"target": "ready <= 2.5x the bare endpoint's start-up (one model)",
         "measured": f"{s['ready_s']:.2f} s vs {b['ready_s']:.2f} s "
                     f"({s['ready_s'] / b['ready_s']:.1f}x)",
         "met": s["ready_s"] <= 2.5 * b["ready_s"]},
    ]


def feature_target(r: dict, label: str) -> dict:
    """The 0.8x target for one feature, against the bare endpoint's runs taken in turn with it."""
    ratio, how = ratio_to_bare(r, label, r["features"][label]["v2_one_row_c16"])
    return {"target": f"with {label}: single-row V2 req/s at c16 >= 0.8x the bare endpoint",
            "measured": f"{ratio:.2f}x ({how})", "met": ratio >= 0.8}


def ratio_to_bare(r: dict, label: str, served: dict) -> tuple[float, str]:
    """The server's single-row c16 req/s over the bare endpoint's, and how it was taken.

    The median of the back-to-back pairs' ratios where the runs took turns (a pair shares the
    machine's speed of that moment); else the best run of each (reports without turns).
    """
    beside = r.get("bare_beside", {}).get(label)
    if beside and beside.get("ratios"):
        best = f"best {served['requests_per_s']:,.0f} vs {beside['one_row_c16']['requests_per_s']:,.0f}"
        return (statistics.median(beside["ratios"]),
                f"median of {len(beside['ratios'])} back-to-back pairs; {best} req/s")
    bare = r["bare"]["one_row_c16"]["requests_per_s"]
    return (served["requests_per_s"] / bare,
            f"{served['requests_per_s']:,.0f} vs {bare:,.0f} req/s")


def markdown(r: dict) -> str:
    m, f = r["machine"], r["floor"]
    stack = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    lines = [
        "# Server benchmark", "",
        f"{m['cpu']}, {m['cpus']} cores, Python {m['python']}; {stack}.", "",
        "Servers pinned to core 0, `wrk -t1` to core "
        f"1; best of {r['settings']['repeat']} runs of {r['settings']['seconds']} s each, after "
        f"{r['settings']['warmup']} s of warm-up; "
        f"1,000-row runs at {r['settings']['batch_connections']} connections. The runs a 0.8x "
        f"target compares take turns ({r['settings'].get('turns', 3)} back-to-back pairs of bare "
        "endpoint then server); the target takes the median of the pairs' ratios, so a drift of "
        "the machine's speed reaches both sides of each ratio alike. "
        f"Other work on the machine: cores busy {m['busy_before']} before and "
        f"{m['busy_after']} after (share of each core over 1 s), load average "
        f"{m['load_before']} → {m['load_after']}.", "",
        "## Targets (the kit's performance goals for this server)", "",
        "| target | measured | met |", "|---|---|---|",
    ]
    lines += [f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else '**no**'} |"
              for t in r["targets"]]
    lines += ["", "## In-process floor (ONNX Runtime `run`)", "",
              "| intra_op_num_threads | one row p50 | 1,000 rows |", "|---|---|---|"]
    for key, v in f.items():
        lines.append(f"| {key.split('_')[1]} | {v['one_row_p50_us']:.1f} µs | "
                     f"{v['batch_rows_per_s'] / 1e6:.2f} M rows/s |")
    lines += ["", "## Over HTTP", "",
              "The last column is the share of core 0 spent on other processes during the run "
              "(the noise; not measured for two workers, which span both cores).", "",
              "| what | rows/request | connections | req/s | rows/s | p50 | p99 | core 0 other |",
              "|---|---|---|---|---|---|---|---|"]
    rows = [("bare endpoint (dataframe_split JSON)", r["bare"], [
        ("one_row_c1", 1, 1), ("one_row_c16", 1, 16), ("batch_c4", BATCH, 4)]),
            ("server, V2 JSON", r["server"], [
                ("v2_one_row_c1", 1, 1), ("v2_one_row_c16", 1, 16), ("v2_batch_c4", BATCH, 4)]),
            ("server, SageMaker CSV", r["server"], [
                ("csv_one_row_c1", 1, 1), ("csv_one_row_c4", 1, 4), ("csv_one_row_c16", 1, 16),
                ("csv_batch_c4", BATCH, 4)]),
            *((f"bare endpoint, in turn with the server ({label})", figures,
               [("one_row_c16", 1, 16)]) for label, figures in r.get("bare_beside", {}).items()),
            *((f"server with {label}, V2 JSON", group,
               [(key, 1, int(key.rsplit("c", 1)[1])) for key in group])
              for label, group in r.get("features", {}).items()),
            ("server with a token, V2 JSON", r["server_token"], [("v2_one_row_c16", 1, 16)]),
            ("server --workers 2 (cores 0-1, wrk shares core 1)", r["server_workers_2"],
             [("v2_one_row_c16", 1, 16)])]
    for label, group, keys in rows:
        for key, size, conns in keys:
            v = group[key]
            noise = "—" if group is r["server_workers_2"] else f"{v['core0_other_share']:.0%}"
            lines.append(f"| {label} | {size:,} | {conns} | {v['requests_per_s']:,.0f} | "
                         f"{v['rows_per_s']:,.0f} | {v['p50_ms']:.3f} ms | {v['p99_ms']:.3f} ms "
                         f"| {noise} |")
    lines += ["", "The bare endpoint parses `dataframe_split` JSON without checking a value and "
              "answers the labels with two headers. The server checks every value, answers labels "
              "and probabilities with `X-Model-Name`, `X-Model-Version` and `X-Request-Id`, and "
              "writes an access-log line per request. With two workers the server spans cores 0-1 "
              "and shares core 1 with wrk: the figure is for 2 cores, no more.", ""]
    lines += ["## Ready after start", "",
              f"- bare endpoint: {r['bare']['ready_s']:.2f} s",
              f"- server: {r['server']['ready_s']:.2f} s",
              f"- server, 2 workers: {r['server_workers_2']['ready_s']:.2f} s", "",
              "Command: `.venv/bin/python benchmarks/bench.py --out build/bench`.", ""]
    lines += [online_sweep.markdown(r["online_sweep"])]
    if "batch" in r:
        import batch_bench

        lines += [batch_bench.markdown(r["batch"])]
    return "\n".join(lines)


def _write(path: Path, text: str) -> None:
    atomic_write(path, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/bench.py", description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "build" / "bench"))
    parser.add_argument("--seconds", type=int, default=4, help="length of each wrk run")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up run before each")
    parser.add_argument("--turns", type=int, default=5,
                        help="back-to-back bare/server pairs behind each 0.8x target")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per measurement; the best is kept (the least disturbed)")
    parser.add_argument("--batch-rows", type=int, default=1_000_000,
                        help="lines of the batch-transform section's file (0 leaves it out)")
    args = parser.parse_args(argv)
    report = run(Path(args.out), args.seconds, args.warmup, args.repeat, args.batch_rows,
                 args.turns)
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
