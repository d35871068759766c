"""The container contracts of the platforms, read from the environment each one sets (serve mode).

One image serves them all; which contract applies is told by the variables the platform sets:

- SageMaker: ``SAGEMAKER_BIND_TO_PORT`` (default 8080), the model in ``/opt/ml/model``.
- Vertex AI: ``AIP_HTTP_PORT``, ``AIP_HEALTH_ROUTE``, ``AIP_PREDICT_ROUTE`` (the routes it calls:
  ``{"instances": [...]}`` in, ``{"predictions": [...]}`` out) and ``AIP_STORAGE_URI`` (used
  when it is a local folder; a ``gs://`` URI needs the model baked into the image).
- Cloud Foundry and Knative (KServe's custom containers): ``PORT``.

None of them set: nothing changes. Two of them naming different ports stop the server at start,
naming both variables and their values.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

PORT_VARIABLES = ("SAGEMAKER_BIND_TO_PORT", "AIP_HTTP_PORT", "PORT")
BAKED_MODEL = "/opt/ml/model"


class PlatformError(ValueError):
    """The platform's variables cannot be honoured: the message names them and the fix."""


@dataclass
class Platform:
    """What the environment asks of the server: a port, a repository, extra routes."""

    port: int | None = None
    repository: str | None = None
    routes: dict[str, str] = field(default_factory=dict)  # "health"/"predict" → path
    notes: list[str] = field(default_factory=list)


def from_environment(env: Mapping[str, str] | None = None,
                     repository_given: bool = False) -> Platform:
    """Read the platforms' variables from ``env`` (default ``os.environ``).

    Parameters
    ----------
    repository_given : bool
        ``--model-repository`` was given: it wins over ``AIP_STORAGE_URI``.

    Raises
    ------
    PlatformError
        Two port variables that differ, a port that is not one, a route that is not a path, or a
        ``gs://`` storage URI with no model baked into the image.
    """
    env = os.environ if env is None else env
    platform = Platform()
    ports = {}
    for name in PORT_VARIABLES:
        text = env.get(name, "").strip()
        if text:
            if not (text.isascii() and text.isdigit() and 0 < int(text) < 65536):
                raise PlatformError(f"{name}={text!r} is not a port: set it to a number from 1 "
                                    f"to 65535, or unset it.")
            ports[name] = int(text)
    if len(set(ports.values())) > 1:
        named = " and ".join(f"{k}={v}" for k, v in ports.items())
        raise PlatformError(f"{named} name different ports, and the server listens on one. "
                            f"Unset all but one of them, or give them the same value.")
    if ports:
        platform.port = next(iter(ports.values()))
    for key, name in (("health", "AIP_HEALTH_ROUTE"), ("predict", "AIP_PREDICT_ROUTE")):
        route = env.get(name, "").strip()
        if route:
            if not route.startswith("/") or any(c in route for c in "{}? "):
                raise PlatformError(f"{name}={route!r} is not a route: give a path such as "
                                    f"/v1/endpoints/penguins/deployedModels/1:predict.")
            platform.routes[key] = route
    storage = env.get("AIP_STORAGE_URI", "").strip()
    if storage and not repository_given:
        if storage.startswith("gs://"):
            if not (Path(BAKED_MODEL).is_dir() and any(Path(BAKED_MODEL).iterdir())):
                raise PlatformError(
                    f"AIP_STORAGE_URI={storage} is a Cloud Storage URI, which this server does "
                    f"not download, and no model is baked into the image at {BAKED_MODEL}. "
                    f"Build the image with the model in it (make context puts it there).")
            platform.notes.append(f"AIP_STORAGE_URI={storage}: serving the model baked into "
                                  f"the image at {BAKED_MODEL}")
        else:
            local = storage.removeprefix("file://")
            if not Path(local).is_dir():
                raise PlatformError(f"AIP_STORAGE_URI={storage} is not a folder here: point it "
                                    f"at a model repository, or unset it.")
            platform.repository = local
    return platform
