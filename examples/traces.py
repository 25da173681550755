"""Plot r_hz(t) and v(t) of a few traced runs of a sweep.

The input is any result directory with traces, for example the quickstart's (which traces
runs 0, 50, 100, ..., 400):

    mpr-sweep run sweeps/quickstart.yaml --out results/quickstart
    python examples/traces.py results/quickstart traces.png             # up to 5 traced runs
    python examples/traces.py results/quickstart traces.png 0 200 400   # these runs

Each run is labelled with its run_id and the parameters that vary across the sweep,
taken from the summary (joined on run_id).
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: draw to a file, never to a window

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow.dataset as ds  # noqa: E402

DEFAULT_RUNS = 5
# Columns of the summary that are not parameters.
NOT_PARAMS = {
    "run_id",
    "point_id",
    "replicate",
    "diverged",
    "diverged_at_ms",
    "fp_settled",
    "dt_stable",
    "dt_stable_max_ms",
    "steps",
    "rejected_steps",
    "stop_reason",
    "stopped_at_ms",
    "fp_count",
}
NOT_PARAM_PREFIXES = ("r_hz_", "v_", "fp_")


def traced_run_ids(results_dir):
    """The sorted run ids present in RESULTS_DIR/traces."""
    table = ds.dataset(Path(results_dir) / "traces", format="parquet").to_table(columns=["run_id"])
    return np.unique(table["run_id"].to_numpy())


def load_traces(results_dir, run_ids):
    """The trace rows of ``run_ids`` (read with a filter, so big trace sets stay cheap)."""
    dataset = ds.dataset(Path(results_dir) / "traces", format="parquet")
    table = dataset.to_table(filter=ds.field("run_id").isin(list(run_ids)))
    return table.to_pandas().sort_values(["run_id", "t_ms"])


def run_labels(results_dir, run_ids):
    """'run 17: eta=-5, J=10' for each run, naming the parameters that vary."""
    summary = pd.read_parquet(Path(results_dir) / "summary")
    params = [
        c
        for c in summary.columns
        if c not in NOT_PARAMS and not c.startswith(NOT_PARAM_PREFIXES) and summary[c].nunique() > 1
    ]
    rows = summary.set_index("run_id").loc[list(run_ids), params]
    return {
        rid: f"run {rid}"
        + (": " if params else "")
        + ", ".join(f"{p}={row[p]:.4g}" for p in params)
        for rid, row in rows.iterrows()
    }


def draw(results_dir, run_ids, out_png):
    traces = load_traces(results_dir, run_ids)
    labels = run_labels(results_dir, run_ids)
    fig, (ax_r, ax_v) = plt.subplots(2, 1, figsize=(8, 6), sharex=True, constrained_layout=True)
    for rid, g in traces.groupby("run_id"):
        ax_r.plot(g.t_ms, g.r_hz, lw=1, label=labels[rid])
        ax_v.plot(g.t_ms, g.v, lw=1)
    ax_r.set_ylabel("r (Hz)")
    ax_v.set_ylabel("v")
    ax_v.set_xlabel("t (ms)")
    ax_r.legend(fontsize=8, loc="best")
    fig.savefig(out_png, dpi=120)
    plt.close(fig)


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        print("usage: traces.py RESULTS_DIR OUT.png [RUN_IDS...]", file=sys.stderr)
        return 2
    results_dir, out_png = argv[1], argv[2]
    if not (Path(results_dir) / "traces").is_dir():
        print(
            f"traces.py: no traces in {results_dir} (the spec needs output.traces)", file=sys.stderr
        )
        return 2
    available = traced_run_ids(results_dir)
    if len(argv) > 3:
        try:
            run_ids = [int(a) for a in argv[3:]]
        except ValueError:
            print(f"traces.py: run ids must be integers, got {argv[3:]}", file=sys.stderr)
            return 2
        missing = sorted(set(run_ids) - set(available.tolist()))
        if missing:
            shown = ", ".join(str(i) for i in available[:20])
            print(
                f"traces.py: runs {missing} have no trace; traced: {shown}"
                + (", ..." if len(available) > 20 else ""),
                file=sys.stderr,
            )
            return 2
    else:  # spread DEFAULT_RUNS picks over the traced runs
        picks = np.unique(np.linspace(0, len(available) - 1, DEFAULT_RUNS).round().astype(int))
        run_ids = available[picks].tolist()
    draw(results_dir, run_ids, out_png)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
