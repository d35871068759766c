"""python -m mlprod.batch: clear one-line failures, retries, and nothing lost when killed or stopped."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from mlprod import batch, data
from mlprod.batch.__main__ import main
from mlprod.serving import LocalServer, free_port

LINES_PER_FILE = 60_000
FILES = ("a.csv", "b.csv", "c.csv")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Three input files, each long enough that a job can be stopped between them."""
    root = tmp_path_factory.mktemp("in")
    data.write_batch_input(root / FILES[0], LINES_PER_FILE, bad_lines=[5, 50_000])
    for name in FILES[1:]:
        shutil.copy(root / FILES[0], root / name)
    return root


@pytest.fixture(scope="module")
def expected(folder, repository, tmp_path_factory):
    out = tmp_path_factory.mktemp("expected")
    batch.transform(folder, out, model_repository=repository, model="penguins")
    return {p.name: p.read_bytes() for p in out.iterdir()}


def _start(folder, out, repository):
    command = [sys.executable, "-m", "mlprod.batch", "--input", str(folder), "--output", str(out),
               "--model-repository", str(repository), "--model", "penguins",
               "--max-payload-mb", "0.02"]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _watch_until_first_file(process, out, expected) -> None:
    """Poll the output folder: every visible .out is complete; return once the first is there."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        visible = sorted(out.glob("*.out")) if out.exists() else []
        for path in visible:
            assert path.read_bytes() == expected[path.name], f"{path.name} is partial"
        if visible:
            assert len(visible) < len(FILES), "the job finished before it could be stopped"
            return
        time.sleep(0.002)  # polling interval, not a wait for an event
    pytest.fail(f"no .out appeared; the job said: {process.communicate()}")


def test_sigkill_then_rerun_gives_the_same_outputs(folder, repository, expected, tmp_path):
    out = tmp_path / "out"
    process = _start(folder, out, repository)
    _watch_until_first_file(process, out, expected)
    process.kill()
    process.wait()
    finished = sorted(out.glob("*.out"))
    assert len(finished) < len(FILES), "the job ended before the kill: make the files longer"
    assert all(expected[p.name] == p.read_bytes() for p in finished)  # no partial .out
    summary = batch.transform(folder, out, model_repository=repository, model="penguins")
    assert summary.skipped and summary.written
    assert {p.name: p.read_bytes() for p in out.iterdir()} == expected  # no temporary file left


def test_sigterm_stops_cleanly_and_says_what_finished(folder, repository, expected, tmp_path):
    out = tmp_path / "out"
    process = _start(folder, out, repository)
    _watch_until_first_file(process, out, expected)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert stderr.count("\n") == 1 and "Traceback" not in stderr
    assert stderr.startswith("mlprod.batch: Stopped by SIGTERM: finished files: a.csv")
    assert "was not finished and will be redone by a rerun" in stderr
    names = sorted(p.name for p in out.iterdir())
    assert not [n for n in names if n.endswith(".tmp")]  # the unfinished file left nothing
    assert all(expected[p.name] == p.read_bytes() for p in out.iterdir())


def test_a_missing_input_is_one_line_and_no_traceback(repository, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mlprod.batch", "--input", str(tmp_path / "nothing.csv"),
         "--output", str(tmp_path / "out"), "--model-repository", str(repository), "--model",
         "penguins"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "No input at" in result.stderr and "nothing.csv" in result.stderr


def _run_main(capsys, *args) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().err


def test_an_unreachable_endpoint_is_one_line(folder, tmp_path, capsys):
    url = f"http://127.0.0.1:{free_port()}"
    code, err = _run_main(capsys, "--input", str(folder / "a.csv"), "--output",
                          str(tmp_path), "--endpoint", url)
    assert code == 1 and err.count("\n") == 1
    assert url in err and "connection refused" in err
    assert not list(tmp_path.iterdir())


def test_an_unreadable_model_is_one_line(folder, repository, tmp_path, capsys):
    copy = shutil.copytree(repository, tmp_path / "repo")
    model = copy / "penguins" / "1" / "model.onnx"
    model.write_bytes(model.read_bytes()[:100])  # truncated: fails its checksum
    args = ["--input", str(folder / "a.csv"), "--output", str(tmp_path / "out"),
            "--model-repository", str(copy), "--model", "penguins", "--version", "1"]
    code, err = _run_main(capsys, *args)
    assert code == 1 and err.count("\n") == 1 and "Cannot read model 'penguins'" in err
    (model.parent / "model.sha256").write_text(
        __import__("hashlib").sha256(model.read_bytes()).hexdigest() + "\n")
    code, err = _run_main(capsys, *args)  # checksum right, file still broken
    assert code == 1 and err.count("\n") == 1 and "ONNX Runtime cannot load" in err
    code, err = _run_main(capsys, *args[:-2], "--version", "9")
    assert code == 1 and "no version or alias '9'" in err


class _Gate:
    """A proxy in front of a real server that answers chosen statuses to the first POSTs."""

    def __init__(self, target: str, statuses: list[int]):
        self.target = target
        self.statuses = list(statuses)
        self.posts = 0
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def do_GET(self):
                answer = requests.get(gate.target + self.path, timeout=10)
                self._send(answer.status_code, answer.content, answer.headers["Content-Type"])

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                gate.posts += 1
                if gate.statuses:
                    status = gate.statuses.pop(0)
                    error = json.dumps({"error": f"scripted {status}"}).encode()
                    return self._send(status, error, "application/json")
                answer = requests.post(gate.target + self.path, data=body, timeout=10,
                                       headers={k: v for k, v in self.headers.items()})
                self._send(answer.status_code, answer.content, answer.headers["Content-Type"])

            def _send(self, status, body, content_type):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def _small_input(folder, tmp_path):
    source = tmp_path / "rows.csv"
    source.write_bytes(b"".join((folder / "a.csv").read_bytes().splitlines(True)[:1500]))
    return source


def test_503_is_retried_with_backoff(folder, server, repository, tmp_path):
    source = _small_input(folder, tmp_path)
    with _Gate(server.url, [503, 503]) as gate:
        summary = batch.transform(source, tmp_path / "out", endpoint=gate.url, backoff=0.01,
                                  concurrency=1)
    assert gate.posts == 2 + 2  # two refused, then the two requests of 1,000 and 500 lines
    assert summary.rows == 1500
    batch.transform(source, tmp_path / "ref", model_repository=repository, model="penguins")
    assert (tmp_path / "out" / "rows.csv.out").read_bytes() == \
        (tmp_path / "ref" / "rows.csv.out").read_bytes()


@pytest.mark.parametrize("status", [400, 404])
def test_4xx_is_not_retried(folder, server, tmp_path, status):
    source = _small_input(folder, tmp_path)
    with _Gate(server.url, [status] * 10) as gate, \
            pytest.raises(batch.BatchError, match=f"answered {status} scripted {status}. Not "
                                                  "retried"):
        batch.transform(source, tmp_path / "out", endpoint=gate.url, backoff=0.01,
                        concurrency=1)
    assert gate.posts == 1
    assert not list((tmp_path / "out").glob("*.out"))
    assert not os.listdir(tmp_path / "out")  # nor a temporary file


def test_the_endpoint_pins_one_version_when_traffic_is_routed(folder, repository, tmp_path):
    repo = shutil.copytree(repository, tmp_path / "repo")
    (repo / "penguins" / "routing.json").write_text(json.dumps({"variants": [
        {"name": "production", "version": 1, "weight": 50},
        {"name": "candidate", "version": 2, "weight": 50}]}))
    source = _small_input(folder, tmp_path)
    with LocalServer(repo) as routed:
        summary = batch.transform(source, tmp_path / "out", endpoint=routed.url,
                                  max_payload_mb=0.005)  # about 20 requests, each routed anew
    assert summary.backend.endswith("(penguins/1)")
    batch.transform(source, tmp_path / "ref", model_repository=repository, model="penguins",
                    version=1)
    assert (tmp_path / "out" / "rows.csv.out").read_bytes() == \
        (tmp_path / "ref" / "rows.csv.out").read_bytes()
