"""Run a model server as a child process on a free port, wait until it is ready, and always stop it.

:class:`LocalServer` starts ``python -m server`` on 127.0.0.1 (or any command line: the SageMaker
``serve`` mode, a pinned benchmark run, another program), waits until its readiness route answers
200, and stops it on ``with`` exit, on :meth:`LocalServer.stop`, at interpreter exit, and — via
``--parent-pid`` — when the process that started it dies, even by ``kill -9``, so a restarted
notebook kernel leaves no server behind. Its output goes to a log file that :meth:`LocalServer.log`
reads. It is the one launcher of the kit: notebooks, tests and the benchmark use it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path

from mlprod.client import Client

_PORT_ATTEMPTS = 3
_SIGKILL = getattr(signal, "SIGKILL", signal.SIGTERM)  # Windows has no SIGKILL
#: Placeholders a command line or an environment value may hold, filled in at each start.
PORT, PARENT_PID = "{port}", "{parent_pid}"


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def server_command(*arguments: str) -> list[str]:
    """Return ``python -m server <arguments> --parent-pid {parent_pid}``, for ``command=``.

    Examples
    --------
    >>> server_command("serve", "--port", "{port}")[-5:]
    ['serve', '--port', '{port}', '--parent-pid', '{parent_pid}']
    """
    return [sys.executable, "-m", "server", *map(str, arguments), "--parent-pid", PARENT_PID]


class LocalServer:
    """A model server in a child process, for notebooks, tests and the benchmark.

    Use it as a context manager, or call :meth:`start` and :meth:`stop` from notebook cells.

    Parameters
    ----------
    repository : path, optional
        A model repository (``<repo>/<model>/<version>/model.onnx``), e.g.
        ``mlprod.quickstart.model_repository()``. Needed unless ``command`` is given.
    port : int, optional
        Default: a free port picked at start (another one is tried if a process takes it first).
    host : str
        The address to bind; keep 127.0.0.1 so nothing outside this machine can call it.
    token : str, optional
        Require ``Authorization: Bearer <token>`` (``MODEL_SERVER_TOKEN``). None: no token, even
        if ``MODEL_SERVER_TOKEN`` is set in this process's environment (``env`` may still set one).
    args : sequence of str
        Extra command-line arguments, e.g. ``["--workers", "2"]``, after the command.
    ready_timeout : float
        Seconds to wait for readiness before giving up (and stopping the process).
    env : dict, optional
        Extra environment variables for the server.
    command : sequence of str, optional
        The whole command line, for another mode or program: ``{port}`` in it and in ``env``'s
        values becomes the port (so a taken port is retried as for the default command),
        ``{parent_pid}`` this process's id. :func:`server_command` writes one for
        ``python -m server``, e.g. ``server_command("serve", "--port", "{port}")`` (SageMaker
        mode). Default: ``server_command("--model-repository", repository, "--host", host,
        "--port", "{port}")``.
    ready_path : str
        The route that answers 200 once the server is ready.
    cwd : path, optional
        The folder the server runs in; default: this process's.

    Attributes
    ----------
    ready_seconds : float or None
        Seconds from the process's start to its first ready answer, for the latest start.

    Examples
    --------
    >>> with LocalServer(model_repository()) as server:          # doctest: +SKIP
    ...     server.client().predict(rows, model="penguins")
    """

    def __init__(self, repository: str | os.PathLike | None = None, port: int | None = None,
                 host: str = "127.0.0.1", token: str | None = None, args: Sequence[str] = (),
                 ready_timeout: float = 30.0, env: Mapping[str, str] | None = None,
                 command: Sequence[str] | None = None, ready_path: str = "/v2/health/ready",
                 cwd: str | os.PathLike | None = None):
        self.repository = None if repository is None else Path(repository)
        self.host = host
        self.token = token
        self.args = list(args)
        self.ready_timeout = ready_timeout
        self.env = dict(env or {})
        self.command = None if command is None else [str(c) for c in command]
        self.ready_path = ready_path
        self.cwd = cwd
        self.ready_seconds: float | None = None
        self._port = port
        self._started = 0.0
        self._process: subprocess.Popen | None = None
        self._dir: Path | None = None
        self._bound: int | None = None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        where = self.url if self._bound else f"repository={str(self.repository)!r}"
        return f"<LocalServer {where} {state}>"

    @property
    def port(self) -> int | None:
        """The port it listens on once started; before that, the one asked for (None: any)."""
        return self._port if self._bound is None else self._bound

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:<port>``."""
        if self._bound is None:
            raise RuntimeError("This LocalServer has not started yet: call start() first.")
        return f"http://{self.host}:{self._bound}"

    @property
    def process(self) -> subprocess.Popen | None:
        """The server's process (None before start)."""
        return self._process

    @property
    def pid(self) -> int | None:
        """The server's process id (None before start)."""
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def log_path(self) -> Path:
        """The file holding the server's output (standard output and error)."""
        if self._dir is None:
            raise RuntimeError("This LocalServer has not started yet: call start() first.")
        return self._dir / "server.log"

    def log(self) -> str:
        """Return everything the server has written so far (also after it stopped)."""
        if self._dir is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def client(self, **kwargs) -> Client:
        """Return a :class:`~mlprod.client.Client` for this server, with its token."""
        kwargs.setdefault("token", self.token)
        return Client(self.url, **kwargs)

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, wait: bool = True) -> LocalServer:
        """Start the server and, with ``wait``, return once it answers ready.

        Raises
        ------
        FileNotFoundError
            If the repository folder does not exist.
        ValueError
            If ``command`` leaves no place for the port and none is given.
        RuntimeError
            If the server exits or is not ready within ``ready_timeout``; the message holds its log.
        """
        if self.running:
            return self
        command = self._command()
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="mlprod-server-"))
            weakref.finalize(self, shutil.rmtree, self._dir, ignore_errors=True)
        attempts = 1 if self._port is not None or not wait else _PORT_ATTEMPTS
        for attempt in range(attempts):
            port = self._port if self._port is not None else free_port(self.host)
            self._launch(command, port)
            if not wait:
                return self
            try:
                self._wait_ready()
                return self
            except _Exited as exc:
                self.stop()  # reap it, and any worker it left
                taken = "address already in use" in self.log().lower()
                if not (taken and attempt + 1 < attempts):
                    raise RuntimeError(
                        f"The server exited with code {exc.code} before it was ready "
                        f"(port {port}). Its log:\n{self.log()}"
                    ) from None
            except BaseException:  # interrupted, or anything else: leave nothing running
                self.stop()
                raise
        raise AssertionError("unreachable")  # the loop returns or raises

    def _command(self) -> list[str]:
        """Return the command line with its placeholders, checked before anything starts."""
        if self.command is not None:
            said = " ".join(self.command) + " " + " ".join(self.env.values())
            if self._port is None and PORT not in said:
                raise ValueError(
                    f"command={self.command} leaves no place for the port: put '{PORT}' in it "
                    "(or in an env= value), or pass port=."
                )
            return [*self.command, *self.args]
        if self.repository is None or not self.repository.is_dir():
            raise FileNotFoundError(
                f"No model repository at {str(self.repository)!r}. Pass a folder holding "
                "<model>/<version>/model.onnx, e.g. mlprod.quickstart.model_repository()."
            )
        return [*server_command("--model-repository", self.repository, "--host", self.host,
                                "--port", PORT), *self.args]

    def _launch(self, command: list[str], port: int) -> None:
        def fill(text: str) -> str:
            return text.replace(PORT, str(port)).replace(PARENT_PID, str(os.getpid()))

        env = {k: v for k, v in os.environ.items() if k != "MODEL_SERVER_TOKEN"}
        env |= {"PYTHONUNBUFFERED": "1"} | {k: fill(v) for k, v in self.env.items()}
        if self.token is not None:
            env["MODEL_SERVER_TOKEN"] = self.token
        command = [fill(c) for c in command]
        with open(self.log_path, "ab") as log:
            log.write(f"$ {' '.join(command)}\n".encode())
            log.flush()
            # Its own session: stop() can end the whole group (workers too), and a Ctrl-C in the
            # terminal reaches this process, whose exit then stops the server, not both at once.
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, env=env, cwd=self.cwd,
                                             start_new_session=True)
        self._started = time.perf_counter()
        self._bound = port
        atexit.register(self.stop)

    def _wait_ready(self) -> None:
        """Poll readiness; waiting on the process between polls notices an exit at once."""
        deadline = time.monotonic() + self.ready_timeout
        interval = 0.005
        with Client(self.url, retries=0, timeout=2.0, token=self.token) as probe:
            while True:
                code = self._process.poll()
                if code is not None:
                    raise _Exited(code)
                if _answers(probe, self.ready_path):
                    self.ready_seconds = time.perf_counter() - self._started
                    return
                if time.monotonic() > deadline:
                    log = self.log()
                    self.stop()
                    raise RuntimeError(
                        f"The server did not become ready within {self.ready_timeout} s at "
                        f"{self.url}. Its log:\n{log}\nRaise ready_timeout if the machine is busy."
                    )
                try:
                    self._process.wait(timeout=interval)
                except subprocess.TimeoutExpired:
                    pass
                interval = min(interval * 2, 0.025)

    def stop(self, timeout: float = 10.0) -> int | None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout`` seconds), reap it.

        Safe to call twice, or on a server that already exited.

        Returns
        -------
        code : int or None
            The process's exit status (None if it never started).
        """
        atexit.unregister(self.stop)
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            _signal_group(process, signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _signal_group(process, _SIGKILL)
                process.wait()
        # Workers left in the group (if the main process died first) go too.
        _signal_group(process, _SIGKILL)
        return process.returncode


class _Exited(Exception):
    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


def _answers(probe: Client, path: str) -> bool:
    """Return True when ``GET path`` answers 200; a refused connection is not ready yet."""
    try:
        return probe.send("GET", path, check=False).status_code == 200
    except (ConnectionError, TimeoutError):
        return False


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    """Send ``sig`` to the process's group (its own session), or to the process alone."""
    try:
        if hasattr(os, "killpg"):
            os.killpg(process.pid, sig)
        else:  # Windows: no process groups to signal
            process.send_signal(sig)
    except (ProcessLookupError, PermissionError):
        pass
