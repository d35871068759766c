"""Run the server: ``python -m server --model-repository PATH`` or ``python -m server serve``."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile

from server import platforms

DESCRIPTION = """Serve the ONNX models of a model repository over the Open Inference Protocol (V2)
and the SageMaker /ping + /invocations contract. `serve` is the container's mode: host 0.0.0.0,
port 8080 or the one the platform sets ($SAGEMAKER_BIND_TO_PORT, Vertex AI's $AIP_HTTP_PORT,
Cloud Foundry's and Knative's $PORT), repository /opt/ml/model (or a local $AIP_STORAGE_URI), and
Vertex AI's $AIP_HEALTH_ROUTE and $AIP_PREDICT_ROUTE served when set."""


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line; ``serve`` switches the defaults to the SageMaker ones."""
    parser = argparse.ArgumentParser(prog="python -m server", description=DESCRIPTION)
    parser.add_argument("mode", nargs="?", choices=["serve"],
                        help="SageMaker mode (the container's command)")
    parser.add_argument("--model-repository", help="repository root (<model>/<version>/model.onnx)")
    parser.add_argument("--host", help="address to bind (default 127.0.0.1; serve: 0.0.0.0)")
    parser.add_argument("--port", type=int, help="port (default 8000; serve: 8080)")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes (default 1; serve: $SAGEMAKER_MODEL_SERVER_WORKERS)")
    parser.add_argument("--default-model", help="model /invocations serves when none is named")
    parser.add_argument("--max-body-bytes", type=int,
                        help="larger request bodies get a 413 (default 6291456; serve: "
                             "$SAGEMAKER_MAX_PAYLOAD_IN_MB if set)")
    parser.add_argument("--parent-pid", type=int, help="exit when this process is gone")
    parser.add_argument("--no-access-log", action="store_true", help="turn the access log off")
    parser.add_argument("--threads", type=int, default=1,
                        help="ONNX Runtime threads per call (default 1)")
    parser.add_argument("--model-control", choices=["none", "poll", "explicit"],
                        help="explicit: models can be loaded and unloaded over HTTP "
                             "(/v2/repository/models/<name>/load), one worker only; poll: every "
                             "worker re-reads changed model folders (versions, aliases.json, "
                             "routing.json) every --repository-poll-secs; none: the models "
                             "found at start are served as they are (default: explicit with "
                             "one worker, poll with more; serve: none)")
    parser.add_argument("--read-timeout-secs", type=float, default=5.0,
                        help="close a connection whose request (head or body) is incomplete and "
                             "has sent no byte for this long (default 5)")
    parser.add_argument("--limit-concurrency", type=int, default=1000,
                        help="at most this many connections and requests at once; beyond it, "
                             "503 with Retry-After (default 1000)")
    parser.add_argument("--capture-dir",
                        help="record a sample of answered inference requests here, in SageMaker "
                             "Model Monitor's layout (<dir>/<model>/<variant>/YYYY/MM/DD/HH/)")
    parser.add_argument("--capture-percent", type=float, default=None,
                        help="the share of answered requests captured, 0 to 100 (default 100 "
                             "when --capture-dir is given)")
    parser.add_argument("--max-batch-delay-ms", type=float, default=0.0,
                        help="dynamic batching: gather concurrent requests to one model version "
                             "for up to this long and score them in one call (default 0: off)")
    parser.add_argument("--repository-poll-secs", type=float, default=1.0,
                        help="seconds between two reads of the repository under "
                             "--model-control poll (default 1)")
    args = parser.parse_args(argv)
    serve = args.mode == "serve"
    args.platform_routes = {}
    platform = None
    if serve:  # the platforms' variables (SageMaker, Vertex AI, Cloud Foundry, Knative)
        try:
            platform = platforms.from_environment(repository_given=args.model_repository
                                                  is not None)
        except platforms.PlatformError as exc:
            parser.error(str(exc))
        args.platform_routes = platform.routes
        for note in platform.notes:
            print(f"note: {note}", file=sys.stderr)
    if args.model_repository is None:
        if not serve:
            parser.error("--model-repository is required (or run `python -m server serve`)")
        args.model_repository = platform.repository or platforms.BAKED_MODEL
    if args.host is None:
        args.host = "0.0.0.0" if serve else "127.0.0.1"
    if args.port is None:
        args.port = (platform.port or 8080) if serve else 8000
    if args.workers is None:
        args.workers = _env_number(parser, "SAGEMAKER_MODEL_SERVER_WORKERS", 1, int) if serve else 1
    if args.model_control is None:
        args.model_control = "none" if serve else "explicit" if args.workers == 1 else "poll"
    if args.model_control == "explicit" and args.workers > 1:
        parser.error(f"--model-control explicit with --workers {args.workers}: a load would "
                     f"reach only the worker that got it. Use --model-control poll, so every "
                     f"worker re-reads the repository (every --repository-poll-secs)")
    if not 0 < args.read_timeout_secs < float("inf"):
        parser.error(f"--read-timeout-secs {args.read_timeout_secs}: give a positive number of "
                     f"seconds, e.g. 5")
    if args.capture_percent is None:
        args.capture_percent = 100.0 if args.capture_dir else 0.0
    if not 0 <= args.capture_percent <= 100:
        parser.error(f"--capture-percent {args.capture_percent}: give a share from 0 to 100")
    if args.capture_percent > 0 and not args.capture_dir:
        parser.error("--capture-percent needs --capture-dir DIR: where the records go")
    if not 0 <= args.max_batch_delay_ms <= 1000:
        parser.error(f"--max-batch-delay-ms {args.max_batch_delay_ms}: give 0 (off) to 1000")
    if args.limit_concurrency < 1:
        parser.error(f"--limit-concurrency {args.limit_concurrency}: give at least 1")
    if not args.repository_poll_secs > 0 or args.repository_poll_secs == float("inf"):
        parser.error(f"--repository-poll-secs {args.repository_poll_secs}: give a positive "
                     f"number of seconds, e.g. 1")
    if args.max_body_bytes is None:
        megabytes = _env_number(parser, "SAGEMAKER_MAX_PAYLOAD_IN_MB", 6, float) if serve else 6
        args.max_body_bytes = int(megabytes * 1_048_576)
    if not 0 <= args.port <= 65535:
        parser.error(f"port {args.port}: give a number from 0 to 65535")
    if args.max_body_bytes < 1:
        parser.error(f"--max-body-bytes {args.max_body_bytes}: give at least 1 byte")
    if args.workers < 1:
        parser.error(f"--workers {args.workers}: give at least 1")
    return args


def _env_number(parser: argparse.ArgumentParser, name: str, default: float, kind: type):
    """Read a number from the environment; a value that is not one stops with a usage error."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not value > 0 or value != value or value == float("inf"):
        parser.error(f"{name}={text!r} is not a positive {kind.__name__}: set it to a "
                     f"number like {default}, or unset it")
    return value


def main(argv: list[str] | None = None) -> int:
    """Start uvicorn with the app; return the exit status."""
    args = parse(argv)
    metrics_dir = None
    if args.workers > 1:
        # prometheus-client's multiprocess mode: each worker writes its values to files in one
        # folder, and a scrape sums them. Set before prometheus_client is first imported.
        metrics_dir = tempfile.mkdtemp(prefix="mlprod-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        return _serve(args)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from server import parent
    from server.app import OPTIONS_ENV, create_app
    from server.httpproto import READ_TIMEOUT_ENV, BoundedHttpTools
    from server.repository import RepositoryError

    if args.parent_pid is not None:
        try:
            parent.watch(args.parent_pid)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    options = {"repository": args.model_repository, "default_model": args.default_model,
               "max_body_bytes": args.max_body_bytes, "access_log": not args.no_access_log,
               "intra_op_num_threads": args.threads, "model_control": args.model_control,
               "repository_poll_secs": args.repository_poll_secs,
               "capture_dir": args.capture_dir, "capture_percent": args.capture_percent,
               "max_batch_delay_ms": args.max_batch_delay_ms,
               "platform_routes": args.platform_routes}
    settings = {"host": args.host, "port": args.port, "loop": "uvloop", "http": BoundedHttpTools,
                "limit_concurrency": args.limit_concurrency, "access_log": False,
                "server_header": False, "log_level": "info", "timeout_graceful_shutdown": 25}
    os.environ[READ_TIMEOUT_ENV] = str(args.read_timeout_secs)  # every worker reads it
    try:
        # Built here even with several workers, so a bad repository fails before any fork.
        app = create_app(**options)
    except (RepositoryError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.workers == 1:
        # uvicorn drains in-flight requests on SIGTERM, then re-raises the signal; this handler
        # receives it, so a graceful stop exits 0 (as with several workers).
        signal.signal(signal.SIGTERM, lambda signum, frame: None)
        uvicorn.run(app, **settings)
    else:
        # Each worker process builds its own app (and sessions) from the same options; the
        # parent's copy only validated the repository, so it is not kept for the server's life.
        del app
        os.environ[OPTIONS_ENV] = json.dumps(options)
        uvicorn.run("server.app:create_app_from_env", factory=True, workers=args.workers,
                    **settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
