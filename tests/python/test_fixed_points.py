"""A pivot of a summary column over two axes, checked against the analytic fixed point.

Deterministic runs from one fixed initial state (0.1 Hz, v = -2) over eta x J, all in the
monostable region (J < 7.8, below the cusp), so every run ends on the single stable node.
With tau = 1 ms and no inputs a fixed point has r = 1000 x (Hz), x a positive root of

    pi^2 x^4 - J x^3 - eta x^2 - delta^2 / (4 pi^2) = 0,   v = -delta / (2 pi x).
"""

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pytest

from conftest import run_sweep, write_spec

ETA = [-10.0, -8.0, -6.0, -4.0, -2.0]
J = [0.0, 2.0, 4.0, 6.0]
DELTA = 1.0
SPEC = f"""\
name: python-fixed-points
model:
  tau_ms: 1.0
  eta: {ETA}
  J: {J}
  delta: {DELTA}
init:
  r_hz: 0.1
  v: -2.0
simulation:
  dt_ms: 0.01
  duration_ms: 60
  transient_ms: 50
"""


def analytic_rate_hz(eta, j, delta=DELTA):
    """The rates (Hz) of all fixed points: 1000 x for the positive real roots x."""
    roots = np.roots([np.pi**2, -j, -eta, 0.0, -(delta**2) / (4 * np.pi**2)])
    real = roots[np.abs(roots.imag) < 1e-12].real
    return np.sort(1000.0 * real[real > 0])


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    base = tmp_path_factory.mktemp("fixed-points")
    out = run_sweep(write_spec(base / "fp.yaml", SPEC), base / "out")
    return pd.read_parquet(out / "summary")


def test_pivot_shape_and_axes(summary):
    rmap = summary.pivot(index="J", columns="eta", values="r_hz_final")
    assert rmap.shape == (len(J), len(ETA))
    assert list(rmap.index) == J and list(rmap.columns) == ETA
    assert rmap.notna().all().all()
    # point ids are row-major with the first axis (eta) slowest
    ids = summary.pivot(index="J", columns="eta", values="point_id")
    expected = np.arange(len(ETA))[None, :] * len(J) + np.arange(len(J))[:, None]
    assert np.array_equal(ids.to_numpy(), expected)


def test_known_point_eta_minus10_j0(summary):
    [r] = analytic_rate_hz(-10.0, 0.0)
    # J = 0: a quadratic in x^2, solved in closed form as a cross-check of numpy.roots
    x2 = (-10.0 + np.sqrt(100.0 + 1.0)) / (2 * np.pi**2)  # pi^2 y^2 + 10 y - 1/(4 pi^2) = 0
    assert r == pytest.approx(1000.0 * np.sqrt(x2), rel=1e-12)
    row = summary[(summary.eta == -10.0) & (summary.J == 0.0)].iloc[0]
    assert row.fp_count == 1
    assert row.fp_r_hz_low == pytest.approx(r, rel=1e-9)
    assert row.fp_v_low == pytest.approx(-DELTA / (2 * np.pi * r / 1000.0), rel=1e-9)
    assert pd.isna(row.fp_r_hz_high)
    assert row.r_hz_final == pytest.approx(r, rel=1e-9)
    assert row.fp_settled == "low"


def test_pivoted_map_matches_the_analytic_fixed_points(summary):
    final = summary.pivot(index="J", columns="eta", values="r_hz_final")
    fp_low = summary.pivot(index="J", columns="eta", values="fp_r_hz_low")
    std = summary.pivot(index="J", columns="eta", values="r_hz_std")
    for j in J:
        for eta in ETA:
            [r] = analytic_rate_hz(eta, j)  # monostable: exactly one positive root
            assert fp_low.loc[j, eta] == pytest.approx(r, rel=1e-9), (eta, j)
            assert final.loc[j, eta] == pytest.approx(r, rel=1e-9), (eta, j)
            assert std.loc[j, eta] < 1e-6 * r, (eta, j)
    assert (summary.fp_count == 1).all()
    assert (summary.fp_settled == "low").all()
    # the rate rises with eta and with J
    assert (np.diff(final.to_numpy(), axis=1) > 0).all()
    assert (np.diff(final.to_numpy(), axis=0) > 0).all()


def test_same_map_from_polars_and_duckdb(summary, tmp_path_factory):
    # The same pivot through the other two libraries' own operations.
    expected = summary.pivot(index="J", columns="eta", values="r_hz_final")
    df = pl.from_pandas(summary)
    p = df.pivot(on="eta", index="J", values="r_hz_final").sort("J")
    assert p.shape == (len(J), len(ETA) + 1)
    assert np.array_equal(p["J"].to_numpy(), np.array(J))
    assert np.array_equal(p.drop("J").to_numpy(), expected.to_numpy())
    d = duckdb.sql(
        "SELECT J, list(r_hz_final ORDER BY eta) AS row FROM summary GROUP BY J ORDER BY J"
    ).fetchall()
    assert [j for j, _ in d] == J
    assert np.array_equal(np.array([row for _, row in d]), expected.to_numpy())
