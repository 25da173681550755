"""The W1 workload, shared by the peers and bench.py.

eta linspace(-10, 0, 64) x J linspace(0, 30, 64) x delta [0.5, 1, 2, 4] (the paper's
dimensionless delta) = 16,384 runs; tau 1 ms; r0 = 100 Hz, v0 = -2; dt 0.01 ms for
100 ms (10,000 steps), no transient; exp_euler; f64. Runs are in mpr-sweep's run_id order:
row-major over the axes in spec order (eta slowest, delta fastest), as
benches/w1.yaml enumerates them.
"""

import numpy as np

TAU_MS = 1.0
R0_HZ = 100.0
V0 = -2.0
DT_MS = 0.01
DURATION_MS = 100.0
TRANSIENT_MS = 0.0  # statistics over every post-step state
N_STEPS = 10_000
NOISE_SIGMA = 0.5  # mpr-sweep white noise on v, 1/sqrt(ms)

ETA = np.linspace(-10.0, 0.0, 64)
J = np.linspace(0.0, 30.0, 64)
DELTA = np.array([0.5, 1.0, 2.0, 4.0])
N_RUNS = ETA.size * J.size * DELTA.size


def grid():
    """(eta, J, delta) per run, in run_id order, as contiguous f64 arrays."""
    e, j, d = np.meshgrid(ETA, J, DELTA, indexing="ij")
    return (np.ascontiguousarray(e.ravel()), np.ascontiguousarray(j.ravel()),
            np.ascontiguousarray(d.ravel()))
