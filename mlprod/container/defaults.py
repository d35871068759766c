"""Where the container code finds the kit's files, and what the image is: base images, Python, port."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
#: The course's lock, which constrains the server's.
LOCK = ROOT / "requirements.lock"
#: The server's direct requirements, and uv's lock of them (``make lock`` writes it).
SERVER_REQUIREMENTS = ROOT / "requirements-server.in"
SERVER_LOCK = ROOT / "requirements-server.lock"
#: The server package copied into the image.
SERVER = ROOT / "server"
DEFAULT_BASE_IMAGE = "python:3.11-slim-bookworm"
LOCAL_BASE_IMAGE = "localhost/py-base:bookworm"
# The image's Python and platform, for which a wheelhouse is fetched: both base images above are
# Debian bookworm (glibc 2.36) with CPython 3.11, on the machine's architecture.
IMAGE_PYTHON = (3, 11)
IMAGE_GLIBC_MINOR = 36
PYTHON_311_BASE = re.compile(r"(docker\.io/)?(library/)?python:3\.11(\.\d+)?(-slim)?"
                             r"(-bookworm|-trixie)?")
#: The port the server listens on in the image (SageMaker's).
PORT = 8080
