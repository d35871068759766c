"""Print the parity and speed tables of the three paths: ``python -m mlprod.export``."""

from __future__ import annotations

import argparse
import tempfile

import pandas as pd

from mlprod import data, export, quickstart

MODELS = {
    "tuned": quickstart.tuned_pipeline,
    "logistic": quickstart.trained_pipeline,
    "forest": lambda: quickstart.trained_pipeline(_forest()),
}


def _forest():
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=50, random_state=data.SEED)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlprod.export", description=__doc__)
    parser.add_argument("--model", choices=list(MODELS), default="tuned")
    parser.add_argument("--batch-rows", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=25)
    args = parser.parse_args(argv)
    split = data.split()
    pipeline = MODELS[args.model]()
    with tempfile.TemporaryDirectory(prefix="mlprod-export-") as workdir:
        models = export.build_paths(pipeline, split.X_test, workdir)
        parity = export.parity_table(pipeline, split.X_test, models)
        speed = export.speed_table(pipeline, split.X_test, models[export.PATHS["onnx"]],
                                   models[export.PATHS["c"]], batch_rows=args.batch_rows,
                                   repeats=args.repeats)
    with pd.option_context("display.width", 160, "display.max_columns", 20,
                           "display.float_format", "{:.3g}".format):
        print(f"{type(pipeline[-1]).__name__}: parity on {len(split.X_test)} held-out rows")
        print(parity.drop(columns="note").to_string())
        for title, note in parity["note"].items():
            if note:
                print(f"  {title}: {note}")
        print(f"\nspeed: medians of {args.repeats} repeats, batch of {args.batch_rows:,} rows")
        print(speed.to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
