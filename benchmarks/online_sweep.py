"""The on-demand side of lesson 07's comparison: latency against throughput as requests grow.

``benchmarks/bench.py`` sends SageMaker CSV requests of 1, 10, 100, 1,000 and 10,000 rows to
``/invocations`` at 4 connections and records req/s, rows/s, p50 and p99 for each size; this
module builds those bodies, writes the report's table and draws the plot
(``latency-throughput.png``: p50 and p99 latency against rows/s, one point per request size).
"""

from __future__ import annotations

from pathlib import Path

SIZES = (1, 10, 100, 1_000, 10_000)
CONNECTIONS = 4


def bodies(sizes: tuple[int, ...] = SIZES) -> dict[str, tuple[bytes, bytes, str]]:
    """CSV request bodies of each size, keyed ``csv_<rows>`` (the bench's ``bodies`` format)."""
    from mlprod import data

    frame = data.synthesize(max(sizes), seed=data.SEED)[data.FEATURES]
    out = {}
    for size in sizes:
        body = frame.head(size).to_csv(index=False, header=False).encode()
        out[f"csv_{size}"] = (body, body, "text/csv")
    return out


def markdown(sweep: dict[str, dict]) -> str:
    """The report's table: one line per request size."""
    lines = ["## Latency against throughput (on demand, SageMaker CSV)", "",
             f"`/invocations` with requests of {', '.join(f'{s:,}' for s in SIZES)} rows at "
             f"{CONNECTIONS} connections, server on core 0; plot: `latency-throughput.png`.", "",
             "| rows/request | req/s | rows/s | p50 | p99 |", "|---|---|---|---|---|"]
    for size in SIZES:
        v = sweep[str(size)]
        lines.append(f"| {size:,} | {v['requests_per_s']:,.0f} | {v['rows_per_s']:,.0f} | "
                     f"{v['p50_ms']:.3f} ms | {v['p99_ms']:.3f} ms |")
    return "\n".join(lines + [""])


def plot(sweep: dict[str, dict], path: Path) -> Path:
    """Draw p50 and p99 latency against rows/s, one labelled point per request size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [sweep[str(s)]["rows_per_s"] for s in SIZES]
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, style in (("p50_ms", "o-"), ("p99_ms", "s--")):
        ax.plot(rows, [sweep[str(s)][key] for s in SIZES], style, label=key.split("_")[0])
    for size, x, y in zip(SIZES, rows, (sweep[str(s)]["p50_ms"] for s in SIZES), strict=True):
        label = f"{size:,} row{'' if size == 1 else 's'}"
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(4, -12), fontsize=8)
    ax.set(xscale="log", yscale="log", xlabel="throughput (rows/s)", ylabel="latency (ms)",
           title=f"/invocations, {CONNECTIONS} connections: bigger requests, more rows/s")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
