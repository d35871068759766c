"""The shadow log: what a model's shadow version answered, recorded and never returned.

One line per shadowed request in the server's log, after the request's own answer was sent::

    2026-12-01T10:00:00.123Z shadow {"request_id": "…", "model": "penguins", "variant":
        "production", "version": 1, "shadow_version": 3, "labels": ["Adelie"], "error": null}

``mlprod.rollout.shadow_records`` reads these lines back, to compare the shadow's labels with
the answers production gave (joined on the request id, which every answer carries as
``X-Request-Id``).
"""

from __future__ import annotations

import orjson

from server.accesslog import AccessLog
from server.repository import ModelVersion


class ShadowLog:
    """Record shadow results through the server's batched log writer.

    Parameters
    ----------
    log : AccessLog
        The writer (the access log, or one of its own when the access log is off).
    """

    def __init__(self, log: AccessLog):
        self.log = log

    def write(self, request_id: bytes, served: ModelVersion, variant: str,
              shadow: ModelVersion, outputs: list | None, error: str | None) -> None:
        """Record one shadow scoring: the labels it gave (or its error) beside what was served."""
        labels = None
        if outputs is not None and "label" in shadow.output_names:
            labels = outputs[shadow.output_names.index("label")].ravel().tolist()
        record = {"request_id": request_id.decode("latin-1"), "model": served.name,
                  "variant": variant, "version": served.version,
                  "shadow_version": shadow.version, "labels": labels, "error": error}
        self.log.event("shadow", orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY).decode())
