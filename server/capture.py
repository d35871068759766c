"""Data capture in SageMaker Model Monitor's format and layout, written off the request path.

``--capture-dir DIR --capture-percent P``: that share of answered inferences (2xx) is recorded,
one JSON line per request, under ``DIR/<model>/<variant>/YYYY/MM/DD/HH/<file>.jsonl``::

    {"captureData": {"endpointInput": {"observedContentType": "text/csv", "mode": "INPUT",
                                       "data": "39.1,18.7,...", "encoding": "CSV"},
                     "endpointOutput": {"observedContentType": "text/csv; charset=utf-8",
                                        "mode": "OUTPUT", "data": "Adelie,...", "encoding": "CSV"}},
     "eventMetadata": {"eventId": "…", "inferenceId": "…", "inferenceTime": "2026-…Z"},
     "eventVersion": "0"}

A request only appends a tuple; a task formats and writes the records every second (in a
thread, so the event loop never waits on the disk) and at shutdown, so a clean stop (SIGTERM)
loses none. A full disk or an unwritable folder is logged once and counted in
``mlprod_capture_errors_total``; it never fails a request.
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import sys
import time
import uuid
from pathlib import Path

import orjson


class Capture:
    """Collect sampled request/response pairs and write them in batches.

    Parameters
    ----------
    folder : path
        The capture root.
    percent : float
        The share of answered requests to record, 0 to 100.
    on_error : callable, optional
        Called with the number of records lost when a write fails (the metrics counter).
    interval : float
        Seconds between writes.
    """

    def __init__(self, folder: str | os.PathLike, percent: float, on_error=None,
                 interval: float = 1.0):
        self.folder = Path(folder)
        self.share = percent / 100
        self.on_error = on_error
        self.interval = interval
        self._records: list[tuple] = []
        self._file = f"{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        self._reported = False

    def sample(self) -> bool:
        """Return whether to record this request (``percent`` % of them, at random)."""
        return self.share >= 1 or random.random() < self.share

    def add(self, model: str, variant: str, inference_id: bytes | None, input_type: bytes,
            input_body: bytes, output_type: bytes, output_body: bytes) -> None:
        """Keep one request/response pair to write later (the request path's only cost)."""
        self._records.append((time.time(), model, variant, inference_id, input_type,
                              input_body, output_type, output_body))

    async def run(self) -> None:
        """Write what was collected every ``interval`` seconds, until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            records, self._records = self._records, []
            if records:
                await asyncio.to_thread(self.write, records)

    def flush(self) -> None:
        """Write everything collected now (at shutdown)."""
        records, self._records = self._records, []
        if records:
            self.write(records)

    def write(self, records: list[tuple]) -> None:
        """Append ``records`` to their hourly files; on failure, log once and count the loss."""
        files: dict[tuple[str, str, str], list[bytes]] = {}
        ids = os.urandom(16 * len(records))  # one system call for every eventId
        second, stamp, hour = -1, "", ""
        for i, record in enumerate(records):
            when, model, variant = record[:3]
            if int(when) != second:  # strftime once per second of records, not per record
                second = int(when)
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
                hour = stamp[:13].replace("-", "/").replace("T", "/")
            files.setdefault((model, variant, hour), []).append(
                _line(record, str(uuid.UUID(bytes=ids[16 * i:16 * i + 16], version=4)), stamp))
        for (model, variant, hour), lines in files.items():
            path = self.folder / model / variant / hour / self._file
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                with open(path, "ab") as out:
                    out.write(b"".join(lines))
            except OSError as exc:
                if self.on_error is not None:
                    self.on_error(len(lines))
                if not self._reported:
                    self._reported = True
                    print(f"capture: cannot write {path} ({exc.strerror or exc}); records are "
                          f"dropped and counted in mlprod_capture_errors_total. Free space or "
                          f"make --capture-dir writable.", file=sys.stderr, flush=True)


def _line(record: tuple, event_id: str, stamp: str) -> bytes:
    """One capture record as a JSON line; ``stamp`` is its second, ``%Y-%m-%dT%H:%M:%S`` (UTC)."""
    when, _, _, inference_id, input_type, input_body, output_type, output_body = record
    metadata = {"eventId": event_id,
                "inferenceTime": f"{stamp}.{int(when * 1000) % 1000:03d}Z"}
    if inference_id:
        metadata["inferenceId"] = inference_id.decode("latin-1")
    return orjson.dumps({
        "captureData": {"endpointInput": _side(input_type, input_body, "INPUT"),
                        "endpointOutput": _side(output_type, output_body, "OUTPUT")},
        "eventMetadata": metadata, "eventVersion": "0"}) + b"\n"


def _side(content_type: bytes, body: bytes, mode: str) -> dict:
    media = content_type.decode("latin-1")
    encoding = "CSV" if "csv" in media else "JSON" if "json" in media or not media else "BASE64"
    if encoding != "BASE64":
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            encoding = "BASE64"
    if encoding == "BASE64":
        text = base64.b64encode(body).decode()
    return {"observedContentType": media or "application/json", "mode": mode, "data": text,
            "encoding": encoding}
