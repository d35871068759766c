"""The files shipped in mlprod/templates/container/, and how their ``{{placeholders}}`` are filled."""

from __future__ import annotations

import re
from importlib import resources

_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
#: The templates a build context holds (``dockerignore`` is written as ``.dockerignore``).
CONTEXT_TEMPLATES = ("Dockerfile", "dockerignore", "docker-compose.yml", "k8s/deployment.yaml",
                     "k8s/service.yaml", "k8s/hpa.yaml", "k8s/inferenceservice.yaml")


def template(name: str) -> str:
    """Return the text of a template shipped in mlprod/templates/container/."""
    file = "Dockerfile.in" if name == "Dockerfile" else name
    return (resources.files("mlprod") / "templates" / "container" / file).read_text()


def render(text: str, values: dict[str, object]) -> str:
    """Replace each ``{{name}}`` in ``text`` with ``values[name]``.

    Raises
    ------
    KeyError
        If a placeholder has no value, naming it.
    """
    def value(match: re.Match) -> str:
        if match.group(1) not in values:
            raise KeyError(f"Template placeholder {{{{{match.group(1)}}}}} has no value; "
                           f"given: {sorted(values)}.")
        return str(values[match.group(1)])

    return _PLACEHOLDER.sub(value, text)


def k8s_name(model: str) -> str:
    """Return a Kubernetes object name (DNS-1123 label) for a model's server."""
    name = re.sub(r"[^a-z0-9-]+", "-", model.lower()).strip("-")[:50] or "model"
    return f"{name}-server"
