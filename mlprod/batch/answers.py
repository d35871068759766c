"""The one answer writer every back end uses, and the reader of the server's CSV answers.

An answer line is ``label,p_1,...,p_C`` with the probabilities in the model's class order. Each
probability is written as **the shortest decimal that reads back as the same float32** (ONNX Runtime
computes in float32; orjson's numpy formatting, which the server uses too: ``0.97``, ``1e-7``,
``1.0``). A value read back from the server's text and narrowed to float32 is the value the model
computed, so rewriting it here gives the same bytes as scoring in-process.
"""

from __future__ import annotations

import io
import operator
from dataclasses import dataclass, field

import numpy as np
import orjson
import pandas as pd

from mlprod.batch.lines import Chunk


@dataclass
class Answers:
    """The scores of a chunk's good lines, and its bad lines' reasons.

    ``first_line``, ``n_lines``, ``good`` and ``errors`` are those of the parsed chunk
    (:class:`~mlprod.batch.lines.Rows`); ``labels``
    (str) and ``probabilities`` (float32, one column per class) hold one row per good line;
    ``n_bytes`` is the size of the chunk's input, for progress bars.
    """

    first_line: int
    n_lines: int
    good: np.ndarray
    labels: np.ndarray
    probabilities: np.ndarray
    errors: list[tuple[int, str]] = field(default_factory=list)
    n_bytes: int = 0


@dataclass
class Rendered:
    """A chunk's answer lines, ready to append to ``X.out``, and what to report."""

    text: bytes
    errors: list[tuple[int, str]]
    n_lines: int
    n_good: int
    n_bytes: int = 0


def csv_field(text: str) -> bytes:
    """Quote a CSV field when it holds a comma, a quote or a line end (RFC 4180)."""
    if any(c in text for c in ',"\n\r'):
        text = '"' + text.replace('"', '""') + '"'
    return text.encode()


def header(classes: list[str]) -> bytes:
    """The answer columns, ``label,Adelie,Chinstrap,Gentoo`` (never written to ``X.out``)."""
    return b",".join([b"label", *map(csv_field, classes)])


def number_lines(probabilities: np.ndarray) -> list[bytes]:
    """Format each row of float32 probabilities as ``p_1,...,p_C`` (shortest float32 decimals)."""
    values = np.ascontiguousarray(probabilities, dtype=np.float32)
    if len(values) == 0:
        return []
    if values.ndim != 2 or values.shape[1] == 0:
        raise ValueError(f"probabilities must have shape (n_rows, n_classes); got {values.shape}.")
    text = orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY)
    return text[2:-2].split(b"],[")


def render(answers: Answers, chunk: Chunk | None = None, join_source: bool = False) -> Rendered:
    """Write a chunk's answer lines: one per input line, in order, empty for a bad line.

    Parameters
    ----------
    answers : Answers
        What the model said about the chunk's good lines.
    chunk : Chunk, optional
        The input, needed with ``join_source``.
    join_source : bool
        Prefix each answer with its input line and a comma (``--join-source input``); a bad
        line then gives ``<input line>,``.
    """
    n = answers.n_lines
    labels = answers.labels.tolist()
    prefixes = {value: csv_field(str(value)) + b"," for value in set(labels)}  # labels repeat
    numbers = number_lines(answers.probabilities)
    if len(labels) != len(numbers) or len(labels) != len(answers.good):
        raise ValueError(f"{len(answers.good)} scored lines, {len(labels)} labels and "
                         f"{len(numbers)} rows of probabilities: they must agree.")
    lines = list(map(operator.add, map(prefixes.__getitem__, labels), numbers))
    if len(lines) == n:  # every line scored: the answers are the lines
        out = lines
    else:
        out = [b""] * n
        for i, line in zip(answers.good.tolist(), lines, strict=True):
            out[i] = line
    if join_source:
        if chunk is None:
            raise ValueError("join_source needs the chunk whose lines to join.")
        source = chunk.lines()
        out = [line + b"," + answer for line, answer in zip(source, out, strict=True)]
    text = b"\n".join(out) + b"\n" if n else b""
    return Rendered(text, answers.errors, n, len(answers.good), answers.n_bytes)


def read_csv_answers(body: bytes, classes: list[str], n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Read a ``/invocations`` CSV answer back into labels and float32 probabilities.

    A first line equal to the header (``label,<classes>``) is dropped, so this reads the answers
    of servers that send the header line and of those that send it only on request.

    Raises
    ------
    ValueError
        If the answer does not hold ``n_rows`` lines of ``1 + len(classes)`` fields.
    """
    text = body.replace(b"\r\n", b"\n")
    lines = text.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if lines and lines[0] == header(classes):
        lines = lines[1:]
    if len(lines) != n_rows:
        raise ValueError(f"The endpoint answered {len(lines)} lines for {n_rows} rows; expected one "
                         f"line per row. Its answer starts: {body[:200]!r}.")
    frame = pd.read_csv(io.BytesIO(b"\n".join(lines)), header=None, engine="c", dtype={0: object},
                        keep_default_na=False, skip_blank_lines=False)
    numbers = frame.iloc[:, 1:]
    if (len(frame) != n_rows or numbers.shape[1] != len(classes)
            or not all(kind == "f" for kind in numbers.dtypes.map(lambda d: d.kind))):
        raise ValueError(f"The endpoint's answer lines should hold label,{','.join(classes)} with "
                         f"numbers for the classes; its answer starts: {body[:200]!r}.")
    # pandas reads decimals to the nearest float64; narrowing that to float32 gives back the float32
    # the server wrote (its shortest form), since float64 has over twice float32's precision.
    return frame[0].to_numpy(dtype=object), numbers.to_numpy(dtype=np.float64).astype(np.float32)
