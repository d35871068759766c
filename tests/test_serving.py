"""mlprod.serving.LocalServer: start, readiness, log, and no server process left behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from mlprod import quickstart, serving
from mlprod.serving import LocalServer


def alive(pid: int) -> bool:
    """Return True while ``pid`` runs; a zombie (exited, not yet reaped) counts as gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def wait_gone(pid: int, seconds: float = 30.0) -> bool:
    """Return True once ``pid`` is gone; False if it still runs after ``seconds``."""
    deadline = time.monotonic() + seconds
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_start_serve_stop(repository):
    server = LocalServer(repository)
    with pytest.raises(RuntimeError, match="not started yet"):
        server.url  # noqa: B018
    server.start()
    try:
        assert server.running and alive(server.pid)
        assert server.url.startswith("http://127.0.0.1:")
        with server.client() as client:
            assert client.health() is True
            assert client.models() == [quickstart.MODEL_NAME]
        assert "--parent-pid" in server.log() and "Uvicorn running" in server.log()
    finally:
        server.stop()
    assert not server.running
    assert not alive(server.pid)
    assert "Finished server process" in server.log()  # the log outlives the process
    server.stop()  # twice is fine


def test_context_manager_stops_the_server_when_the_body_raises(repository):
    pid = None
    with pytest.raises(KeyError, match="boom"), LocalServer(repository) as server:
        pid = server.pid
        assert alive(pid)
        raise KeyError("boom")
    assert pid is not None and not alive(pid)


def test_a_server_that_exits_reports_its_log(tmp_path):
    with pytest.raises(FileNotFoundError, match="No model repository"):
        LocalServer(tmp_path / "absent").start()
    server = LocalServer(tmp_path)  # a folder with no model: the server refuses to start
    with pytest.raises(RuntimeError, match="exited with code") as info:
        server.start()
    assert "No model in repository" in str(info.value)
    assert not server.running


def test_a_server_not_ready_in_time_is_stopped(repository):
    server = LocalServer(repository, ready_timeout=0.0)
    with pytest.raises(RuntimeError, match="did not become ready within 0.0 s"):
        server.start()
    assert not server.running and not alive(server.pid)


def test_an_interrupted_start_leaves_no_server(repository, monkeypatch):
    def interrupt(client, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(serving.Client, "send", interrupt)
    server = LocalServer(repository)
    with pytest.raises(KeyboardInterrupt):
        server.start()
    assert server.pid is not None and not alive(server.pid)


def test_a_taken_port_is_reported_or_replaced(repository, monkeypatch):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        port = taken.getsockname()[1]
        with pytest.raises(RuntimeError, match="exited with code") as info:
            LocalServer(repository, port=port).start()
        assert "address already in use" in str(info.value).lower()

        picks = iter([port, serving.free_port()])
        monkeypatch.setattr(serving, "free_port", lambda host: next(picks))
        with LocalServer(repository) as server:  # no port asked: it tries another
            assert urlsplit(server.url).port != port
            assert server.client().health()


def test_a_command_line_gets_its_port_and_parent_pid(repository, tmp_path):
    """The SageMaker mode, its port in the environment: {port} is filled in at each start."""
    command = serving.server_command("serve", "--model-repository", repository)
    with LocalServer(command=command, env={"SAGEMAKER_BIND_TO_PORT": "{port}"},
                     cwd=tmp_path) as server:
        assert server.client().ping()
        assert f"--parent-pid {os.getpid()}" in server.log()
        if Path("/proc").is_dir():
            assert Path(f"/proc/{server.pid}/cwd").resolve() == tmp_path.resolve()
        assert 0 < server.ready_seconds < 60
    assert server.stop() == 0  # the exit status, also when asked again


def test_a_command_without_a_place_for_the_port_is_refused():
    with pytest.raises(ValueError, match=r"no place for the port: put '\{port\}'"):
        LocalServer(command=serving.server_command("serve")).start()


def test_start_without_waiting_returns_at_once(repository):
    server = LocalServer(repository, args=["--workers", "0"])  # refused by the server
    server.start(wait=False)
    try:
        assert server.process.wait(30) == 2
    finally:
        server.stop()


def test_token_none_ignores_a_token_in_the_environment(repository, monkeypatch):
    monkeypatch.setenv("MODEL_SERVER_TOKEN", "inherited")
    with LocalServer(repository) as server, server.client() as client:
        assert client.metadata(quickstart.MODEL_NAME)["name"] == quickstart.MODEL_NAME


CHILD = textwrap.dedent("""
    import atexit, os, sys
    from mlprod.serving import LocalServer
    server = LocalServer(sys.argv[1])
    # Registered first, so it runs last: after LocalServer's own exit handler.
    atexit.register(lambda: print("running at exit:", server.running, flush=True))
    server.start()
    print(server.pid, flush=True)
    if sys.argv[2] == "wait":
        sys.stdin.read()  # until killed
""")


def start_child(repository: Path, mode: str) -> tuple[subprocess.Popen, int]:
    """Run a Python process that opens a LocalServer; return it and the server's pid."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(repository), mode],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = child.stdout.readline()
    assert line.strip().isdigit(), f"the child printed {line!r}"
    return child, int(line)


def test_server_exits_when_its_parent_is_killed(repository):
    child, pid = start_child(repository, "wait")
    try:
        assert alive(pid)
        child.send_signal(signal.SIGKILL)  # no atexit, no cleanup: only --parent-pid is left
        child.wait()
        assert wait_gone(pid), f"server {pid} still runs after its parent was killed"
    finally:
        child.kill()
        child.wait()
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_server_stops_at_interpreter_exit(repository):
    child, pid = start_child(repository, "exit")  # never calls stop()
    assert child.wait(timeout=60) == 0
    assert child.stdout.read() == "running at exit: False\n"
    assert not alive(pid)
