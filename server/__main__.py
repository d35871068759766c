"""Run the server: ``python -m server --model-repository PATH`` or ``python -m server serve``."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys

DESCRIPTION = """Serve the ONNX models of a model repository over the Open Inference Protocol (V2)
and the SageMaker /ping + /invocations contract. `serve` is the SageMaker mode: host 0.0.0.0,
port $SAGEMAKER_BIND_TO_PORT (default 8080), repository /opt/ml/model."""


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
    args = parser.parse_args(argv)
    serve = args.mode == "serve"
    if args.model_repository is None:
        if not serve:
            parser.error("--model-repository is required (or run `python -m server serve`)")
        args.model_repository = "/opt/ml/model"
    if args.host is None:
        args.host = "0.0.0.0" if serve else "127.0.0.1"
    if args.port is None:
        args.port = int(os.environ.get("SAGEMAKER_BIND_TO_PORT", 8080)) if serve else 8000
    if args.workers is None:
        args.workers = int(os.environ.get("SAGEMAKER_MODEL_SERVER_WORKERS", 1)) if serve else 1
    if args.max_body_bytes is None:
        megabytes = os.environ.get("SAGEMAKER_MAX_PAYLOAD_IN_MB") if serve else None
        args.max_body_bytes = int(float(megabytes) * 1_048_576) if megabytes else 6_291_456
    if args.workers < 1:
        parser.error(f"--workers {args.workers}: give at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Start uvicorn with the app; return the exit status."""
    args = parse(argv)
    import uvicorn

    from server import parent
    from server.app import OPTIONS_ENV, create_app
    from server.repository import RepositoryError

    if args.parent_pid is not None:
        try:
            parent.watch(args.parent_pid)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    options = {"repository": args.model_repository, "default_model": args.default_model,
               "max_body_bytes": args.max_body_bytes, "access_log": not args.no_access_log,
               "intra_op_num_threads": args.threads}
    settings = {"host": args.host, "port": args.port, "loop": "uvloop", "http": "httptools",
                "access_log": False, "server_header": False, "log_level": "info",
                "timeout_graceful_shutdown": 25}
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
        # Each worker process builds its own app (and sessions) from the same options.
        os.environ[OPTIONS_ENV] = json.dumps(options)
        uvicorn.run("server.app:create_app_from_env", factory=True, workers=args.workers,
                    **settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
