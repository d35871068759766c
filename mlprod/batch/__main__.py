"""``python -m mlprod.batch``: a batch transform job from the command line (CONTRACTS §10).

Exit status: 0 when every file is written (bad lines included: they are reported, not fatal);
1 when the job cannot run (missing input, unreadable model, unreachable endpoint), with one line
on standard error; 130 after Ctrl-C and 143 after SIGTERM, with a line saying what finished.
"""

from __future__ import annotations

import argparse
import signal
import sys

from mlprod.batch import BatchError, Stopped, transform
from mlprod.batch.job import StopRequest


def _handle_signals(stop: StopRequest) -> dict:
    """On SIGINT or SIGTERM, ask the job to stop at its next safe point (between chunks).

    A second Ctrl-C interrupts at once (Python's own KeyboardInterrupt): a way out of a long wait.
    Returns the handlers replaced, to put back.
    """
    def handler(signum, frame) -> None:
        name = signal.Signals(signum).name
        stop.set(name)
        if signum == signal.SIGINT:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        else:
            signal.signal(signum, signal.SIG_IGN)

    return {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}


def parser() -> argparse.ArgumentParser:
    """The command line of ``python -m mlprod.batch``."""
    p = argparse.ArgumentParser(
        prog="python -m mlprod.batch",
        description="Score files of header-less CSV lines (or JSON Lines): each X gives X.out "
                    "(one answer line per input line, label,<classes>; empty for a bad line) and "
                    "X.errors (<line>: <reason>). Finished files are skipped on a rerun.")
    p.add_argument("--input", required=True, help="a file, or a folder of files")
    p.add_argument("--output", required=True, help="the folder for X.out and X.errors")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--endpoint", metavar="URL",
                       help="call this server's /invocations, e.g. http://127.0.0.1:8000")
    where.add_argument("--model-repository", metavar="PATH",
                       help="score with ONNX Runtime from this repository (e.g. build/models)")
    p.add_argument("--model", metavar="NAME", help="the model (required with --model-repository)")
    p.add_argument("--version", metavar="V",
                   help="a version number or alias; default production, else the latest")
    p.add_argument("--dask", metavar="local|ADDRESS",
                   help="score on Dask: 'local' starts a LocalCluster, or a scheduler address "
                        "such as tcp://127.0.0.1:8786")
    p.add_argument("--dask-workers", type=int, metavar="N",
                   help="workers of the LocalCluster (--dask local); default one per core")
    p.add_argument("--max-payload-mb", type=float, default=6.0,
                   help="largest request in MiB (default 6); in-process and Dask chunks are "
                        "at most this and 1 MiB")
    p.add_argument("--batch-strategy", choices=["MultiRecord", "SingleRecord"],
                   default="MultiRecord",
                   help="many lines per request or ONNX Runtime call (up to 1,000), or one")
    p.add_argument("--content-type", choices=["text/csv", "application/jsonlines"],
                   help="the inputs' format (SageMaker's ContentType); default by suffix: .jsonl, "
                        ".ndjson and .json are JSON Lines, anything else CSV")
    p.add_argument("--join-source", choices=["none", "input"], default="none",
                   help="'input' prefixes each answer with its input line")
    p.add_argument("--concurrency", type=int, metavar="N",
                   help="endpoint: requests in flight (default: the server's "
                        "MaxConcurrentTransforms, at most one per core)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="show a progress bar (default: when standard error is a terminal)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the job; return the exit status."""
    args = parser().parse_args(argv)
    stop = StopRequest()
    previous = _handle_signals(stop)
    try:
        return _main(args, stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _main(args: argparse.Namespace, stop: StopRequest) -> int:
    options = {} if args.concurrency is None else {"concurrency": args.concurrency}
    try:
        summary = transform(
            args.input, args.output, model_repository=args.model_repository, model=args.model,
            version=args.version, endpoint=args.endpoint, dask=args.dask,
            dask_workers=args.dask_workers, max_payload_mb=args.max_payload_mb,
            batch_strategy=args.batch_strategy, join_source=args.join_source,
            progress=args.progress, stop=stop, content_type=args.content_type, **options)
    except BatchError as exc:
        print(f"mlprod.batch: {exc}", file=sys.stderr)
        return 1
    except Stopped as exc:
        print(f"mlprod.batch: {exc}", file=sys.stderr)
        return 143 if exc.signal_name == "SIGTERM" else 130
    except KeyboardInterrupt as exc:  # before the job started: nothing was written
        name = getattr(exc, "signal_name", None) or stop.signal_name or "SIGINT"
        print(f"mlprod.batch: Stopped by {name} before any file was written.", file=sys.stderr)
        return 143 if name == "SIGTERM" else 130
    print(f"mlprod.batch: {summary.line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
