"""Draw the bistable wedge of the Montbrió–Pazó–Roxin model from a bistability sweep.

The input is the result directory of sweeps/bistability.yaml (or of any sweep that runs
an eta x J map from two initial states, one low and one high, as that file does):

    mpr-sweep run sweeps/bistability.yaml --out results/bistability
    python examples/bistability_map.py results/bistability bistability.png

A point is drawn as bistable where the run started low and the run started high end
apart, |r_high - r_low| > 0.1 r_high in r_hz_final (the test at the end of
sweeps/bistability.yaml). Over it go the analytic saddle-node curves that bound the wedge
(Montbrió, Pazó & Roxin 2015; tau drops out, inputs must be zero), parametrised by x > 0:

    J = 2 pi^2 x + delta^2 / (2 pi^2 x^3),   eta = -pi^2 x^2 - 3 delta^2 / (4 pi^2 x^2)

meeting at the cusp eta = -sqrt(3) delta, J = 4 sqrt(2) pi sqrt(delta) / 3^(3/4).
One panel per value of delta in the sweep.
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: draw to a file, never to a window

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

THRESHOLD = 0.1  # relative: high-rate foci near eta = 0 may still ring slightly


def load_summary(results_dir):
    """The summary of every part in RESULTS_DIR/summary, as a pandas DataFrame."""
    return pd.read_parquet(Path(results_dir) / "summary")


def bistable_maps(summary):
    """(low, high, bistable): r_hz_final from the low and high start, J x eta, and the mask.

    ``summary`` holds one delta. The low start is the smaller init_r_hz, the high start
    the larger; with replicates only replicate 0 is used.
    """
    d = summary[summary.replicate == 0]
    starts = np.sort(d.init_r_hz.unique())
    if len(starts) != 2:
        raise ValueError(
            f"expected runs from exactly two initial rates, found {len(starts)}: {starts[:5]}"
        )
    low = d[d.init_r_hz == starts[0]].pivot(index="J", columns="eta", values="r_hz_final")
    high = d[d.init_r_hz == starts[1]].pivot(index="J", columns="eta", values="r_hz_final")
    bistable = (high - low).abs() > THRESHOLD * high  # False where a run diverged (NaN)
    return low, high, bistable


def saddle_node_curve(delta, n=4000):
    """The saddle-node bifurcation curve (eta, J) for one delta, both branches."""
    x = np.geomspace(1e-3, 10.0, n) * max(delta, 1e-12) ** 0.5
    j = 2 * np.pi**2 * x + delta**2 / (2 * np.pi**2 * x**3)
    eta = -(np.pi**2) * x**2 - 3 * delta**2 / (4 * np.pi**2 * x**2)
    return eta, j


def cusp(delta):
    return -np.sqrt(3) * delta, 4 * np.sqrt(2) * np.pi * np.sqrt(delta) / 3**0.75


def draw(summary, out_png):
    deltas = np.sort(summary.delta.unique())
    inputs_zero = (summary.input_v == 0).all() and (summary.input_r_hz == 0).all()
    fig, axes = plt.subplots(
        1, len(deltas), figsize=(5.5 * len(deltas), 4.5), squeeze=False, constrained_layout=True
    )
    for ax, delta in zip(axes[0], deltas):
        low, high, bistable = bistable_maps(summary[summary.delta == delta])
        etas, js = bistable.columns.to_numpy(), bistable.index.to_numpy()
        mesh = ax.pcolormesh(
            etas,
            js,
            np.log10(high.to_numpy().clip(min=1e-3)),
            shading="nearest",
            cmap="viridis",
        )
        fig.colorbar(mesh, ax=ax, label="log10 r_hz_final, high start (Hz)")
        ax.contourf(
            etas,
            js,
            bistable.to_numpy().astype(float),
            levels=[0.5, 1.5],
            colors="none",
            hatches=["////"],
        )
        ax.contour(
            etas,
            js,
            bistable.to_numpy().astype(float),
            levels=[0.5],
            colors="white",
            linewidths=1.0,
        )
        if inputs_zero:
            ce, cj = saddle_node_curve(delta)
            ax.plot(ce, cj, color="red", lw=1.5, label="saddle-node (analytic)")
            ax.plot(*cusp(delta), "o", color="red", ms=4)
            ax.legend(loc="upper left", fontsize=8)
        ax.set_xlim(etas.min(), etas.max())
        ax.set_ylim(js.min(), js.max())
        ax.set_xlabel("eta")
        ax.set_ylabel("J")
        ax.set_title(
            f"delta = {delta:g}: {int(bistable.to_numpy().sum())} of {bistable.size} "
            "points bistable (hatched)",
            fontsize=10,
        )
    fig.savefig(out_png, dpi=120)
    plt.close(fig)


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        print("usage: bistability_map.py RESULTS_DIR OUT.png", file=sys.stderr)
        return 2
    results_dir, out_png = argv[1], argv[2]
    if not (Path(results_dir) / "summary").is_dir():
        print(f"bistability_map.py: no summary in {results_dir}", file=sys.stderr)
        return 2
    try:
        draw(load_summary(results_dir), out_png)
    except ValueError as e:
        print(f"bistability_map.py: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
