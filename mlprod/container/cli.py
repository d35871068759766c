"""``python -m mlprod.container``: write a build context; optionally build, run and prove its image."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import warnings

import mlprod.container.engines as engines
from mlprod.container.context import build_context
from mlprod.container.defaults import DEFAULT_BASE_IMAGE, LOCAL_BASE_IMAGE, ROOT
from mlprod.container.image import build_image
from mlprod.container.proof import prove, summary

NO_ENGINE = (
    "No container engine works on this machine (`docker info` fails, and podman is missing or "
    "`podman info` fails), so the image cannot be built; the build context is written at {out}. "
    "Install Docker (Docker Desktop, or Docker Engine on Linux) and start it; or install podman "
    "— on Debian or Ubuntu, `sudo bash .ci/container-setup.sh` installs podman, runc and "
    "debootstrap and makes the local base image, the way `make test` runs the container proof.")
NO_BASE_IMAGE = (
    "podman has no base image {base}: make it with `sudo bash .ci/container-setup.sh` (Debian "
    "bookworm with its Python 3.11, made locally with debootstrap), or pass --base-image NAME "
    "of a Debian-based image with python3 that podman has.")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mlprod.container",
                                     description="Write the model server's container build "
                                                 "context, and build and prove its image.")
    parser.add_argument("--repository", default=str(ROOT / "build" / "models"))
    parser.add_argument("--out", default=str(ROOT / "build" / "context"))
    parser.add_argument("--model", default=None, help="model to package (default: the only one)")
    parser.add_argument("--wheels", nargs="?", const="yes", default="auto",
                        choices=["auto", "yes", "no"],
                        help="add a wheelhouse so the image builds with no network: auto "
                             "(default) when wheels made here fit the image (Linux x86_64, "
                             "CPython 3.11) and can be fetched; yes: required; no: never")
    parser.add_argument("--base-image", default=None,
                        help=f"BASE_IMAGE for the build (default {DEFAULT_BASE_IMAGE}; "
                             f"{LOCAL_BASE_IMAGE} with podman)")
    parser.add_argument("--image", default=None,
                        help="build the image with this tag (and keep it)")
    parser.add_argument("--prove", action="store_true",
                        help="also run the image, call it, compare with ONNX Runtime and write "
                             "build/proof/container.json")
    parser.add_argument("--engine", choices=["docker", "podman"], default=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Write a build context; optionally build its image, and prove it serves.

    Returns 0 on success, 1 when something fails (the message says what and how to fix it).
    """
    args = _parser().parse_args(argv)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = build_context(args.repository, args.out, args.model,
                                wheels={"auto": "auto", "yes": True, "no": False}[args.wheels],
                                base_image=args.base_image or DEFAULT_BASE_IMAGE)
    except (OSError, ValueError, subprocess.CalledProcessError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for warning in caught:
        print(warning.message, file=sys.stderr)
    wheels = sum(1 for _ in (out / "wheels").glob("*.whl")) if (out / "wheels").is_dir() else 0
    print(f"{out}: context written" + (f", wheelhouse of {wheels} wheels" if wheels else
                                       ", no wheelhouse"))
    if not (args.image or args.prove):
        return 0
    found = args.engine or engines.engine()
    if found == "none":
        print(NO_ENGINE.format(out=out), file=sys.stderr)
        return 1
    base = args.base_image or (LOCAL_BASE_IMAGE if found == "podman" else None)
    try:
        if base == LOCAL_BASE_IMAGE and engines.Engine.detect(found).run(
                "image", "exists", base, check=False).returncode != 0:
            print(NO_BASE_IMAGE.format(base=base), file=sys.stderr)
            return 1
        if args.prove:
            figures = prove(out, engine_name=found, tag=args.image or "mlprod-model-server:proof",
                            base_image=base, keep_image=bool(args.image),
                            out=ROOT / "build" / "proof" / "container.json")
            print(summary(figures))
            if args.image:
                print(f"image {args.image} kept ({found})")
            return 0 if figures["matches_onnxruntime"] else 1
        print(json.dumps(build_image(out, args.image, engine_name=found, base_image=base)))
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0
