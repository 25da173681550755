"""W1 with numba, written the way a skilled numba user would.

f64 throughout; runs are split into blocks of BLOCK runs, each block keeps its
state in small local arrays with the time loop outside and a loop over the
block's lanes inside, and `prange` spreads the blocks over the threads;
`fastmath=True`. The exp_euler lane loop stays scalar: it calls libm's expm1,
and the PyPI llvmlite has no SVML vector library (numba.config.USING_SVML is
False even with intel-cmplr-lib-rt installed). The step is mpr-sweep's /
brainstate's exponential Euler exactly as docs/model.md states it:

    A = 2 v / tau,  phi1(z) = expm1(z) / z (phi1(0) = 1)
    r' = r + dt phi1(A dt) (delta / (pi tau^2) + 2 r v / tau)
    v' = v + dt phi1(A dt) (v^2 + eta + J tau r - (pi tau r)^2) / tau   [+ sigma sqrt(dt) xi]

or, with --method euler, mpr-sweep's forward Euler: the same with phi1 = 1. The
method and whether there is noise are compile-time constants of the kernel (numba
freezes closure variables): the deterministic Euler kernel has no call and no
branch in its lane loop, which LLVM vectorises (AVX-512 where the CPU has it; a
runtime `if sigma != 0.0` there would keep it scalar, as `inspect_asm` shows).

r is integrated in kHz (1/ms) and reported in Hz. With noise, xi comes from
numba's per-thread NumPy generator (not reproducible across thread counts; the
noise definition is mpr-sweep's Wiener increment).

What the kernel keeps per run: by default the lean set a comparison needs (final
and previous state, the means as plain sums). With --stats it keeps what
mpr-sweep's summary keeps (docs/output.md), the way mpr-sweep computes it
(src/integrate/moments.rs): over the post-step states of steps first_stat_step ..
n_steps (t >= transient_ms; W1 has none, so all 10,000), sums shifted by the
window's first sample (mean = s + S1/n, std = sqrt(max(S2/n - (S1/n)^2, 0)), ddof 0),
min and max of r and of v; and over every step the divergence check: a run stays
alive while |r| (kHz) and |v| are below 1e300 (NaN compares false), and the count of
alive steps gives diverged_at_ms. Also a compile-time choice, so the Euler lane
loop stays branch-free and vectorised.

Usage (called by bench.py):
    python peer_numba.py --threads K --sigma S [--method exp_euler|euler] [--stats] \
        --repeats 3 --out F.npz
Writes the per-run summary (run_id order) and the timings to F.npz.
"""

import argparse
import json
import math
import sys
import time

import numpy as np

import w1

BLOCK = 64
DIVERGED = 1e300  # mpr-sweep's bound on |r| (kHz) and |v| (src/integrate/mod.rs)

# Columns of the output array: the lean kernel writes the first six, --stats all.
COLUMNS = ("r_final", "v_final", "r_prev", "v_prev", "r_mean", "v_mean",
           "r_std", "v_std", "r_min", "r_max", "v_min", "v_max", "finite_steps")
LEAN_COLUMNS = 6


def build(numba, method, noisy, stats):
    from numba import njit, prange

    euler = method == "euler"

    @njit(parallel=True, fastmath=True)
    def sweep(eta, J, delta, tau, r0_khz, v0, dt, n_steps, first_stat_step, sigma, out):
        # out[:, j] = COLUMNS[j], r in Hz
        n = eta.size
        nblocks = (n + BLOCK - 1) // BLOCK
        inv_tau = 1.0 / tau
        pi_tau = math.pi * tau
        noise_amp = sigma * math.sqrt(dt)
        for b in prange(nblocks):
            lo = b * BLOCK
            m = min(BLOCK, n - lo)
            r = np.empty(BLOCK)
            v = np.empty(BLOCK)
            c_r = np.empty(BLOCK)  # delta / (pi tau^2)
            c_v = np.empty(BLOCK)  # eta
            c_j = np.empty(BLOCK)  # J tau
            # Lean: plain sums of r and v. Stats: sums of x - shift and (x - shift)^2,
            # min, max; alive / finite for the divergence check.
            sr = np.zeros(BLOCK)
            sv = np.zeros(BLOCK)
            qr = np.zeros(BLOCK)
            qv = np.zeros(BLOCK)
            shr = np.empty(BLOCK)
            shv = np.empty(BLOCK)
            lor = np.empty(BLOCK)
            hir = np.empty(BLOCK)
            lov = np.empty(BLOCK)
            hiv = np.empty(BLOCK)
            alive = np.ones(BLOCK, dtype=np.int64)
            finite = np.zeros(BLOCK, dtype=np.int64)
            for i in range(m):
                r[i] = r0_khz
                v[i] = v0
                c_r[i] = delta[lo + i] / (math.pi * tau * tau)
                c_v[i] = eta[lo + i]
                c_j[i] = J[lo + i] * tau
                shr[i] = lor[i] = hir[i] = r0_khz
                shv[i] = lov[i] = hiv[i] = v0
            for k in range(n_steps):
                if k == n_steps - 1:
                    for i in range(m):
                        out[lo + i, 2] = r[i] * 1000.0
                        out[lo + i, 3] = v[i]
                for i in range(m):
                    rr = r[i]
                    vv = v[i]
                    if euler:
                        h = dt
                    else:
                        z = 2.0 * vv * inv_tau * dt
                        if z == 0.0:
                            ph = 1.0
                        else:
                            ph = math.expm1(z) / z
                        h = dt * ph
                    pr = pi_tau * rr
                    fr = c_r[i] + 2.0 * rr * vv * inv_tau
                    fv = (vv * vv + c_v[i] + c_j[i] * rr - pr * pr) * inv_tau
                    rn = rr + h * fr
                    vn = vv + h * fv
                    if noisy:
                        vn += noise_amp * np.random.standard_normal()
                    r[i] = rn
                    v[i] = vn
                    if stats:
                        dr = rn - shr[i]
                        dv = vn - shv[i]
                        sr[i] += dr
                        qr[i] += dr * dr
                        sv[i] += dv
                        qv[i] += dv * dv
                        lor[i] = min(lor[i], rn)
                        hir[i] = max(hir[i], rn)
                        lov[i] = min(lov[i], vn)
                        hiv[i] = max(hiv[i], vn)
                        alive[i] &= (abs(rn) < DIVERGED) & (abs(vn) < DIVERGED)
                        finite[i] += alive[i]
                    else:
                        sr[i] += rn
                        sv[i] += vn
                if stats and k + 1 == first_stat_step:
                    # The window opens: this step's state is the shift and first sample;
                    # what the lane loop summed before is dropped.
                    for i in range(m):
                        shr[i] = lor[i] = hir[i] = r[i]
                        shv[i] = lov[i] = hiv[i] = v[i]
                        sr[i] = qr[i] = sv[i] = qv[i] = 0.0
            for i in range(m):
                out[lo + i, 0] = r[i] * 1000.0
                out[lo + i, 1] = v[i]
                if stats:
                    count = n_steps + 1 - first_stat_step
                    mr = sr[i] / count
                    mv = sv[i] / count
                    out[lo + i, 4] = (shr[i] + mr) * 1000.0
                    out[lo + i, 5] = shv[i] + mv
                    out[lo + i, 6] = math.sqrt(max(qr[i] / count - mr * mr, 0.0)) * 1000.0
                    out[lo + i, 7] = math.sqrt(max(qv[i] / count - mv * mv, 0.0))
                    out[lo + i, 8] = lor[i] * 1000.0
                    out[lo + i, 9] = hir[i] * 1000.0
                    out[lo + i, 10] = lov[i]
                    out[lo + i, 11] = hiv[i]
                    out[lo + i, 12] = finite[i]
                else:
                    out[lo + i, 4] = sr[i] * 1000.0 / n_steps
                    out[lo + i, 5] = sv[i] / n_steps

    return sweep


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--sigma", type=float, default=0.0)
    ap.add_argument("--method", choices=("exp_euler", "euler"), default="exp_euler")
    ap.add_argument("--stats", action="store_true",
                    help="keep mpr-sweep's statistics (std, min, max, divergence) too")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    t0 = time.perf_counter()
    import numba

    numba.set_num_threads(a.threads)
    t_import = time.perf_counter() - t0

    eta, J, delta = w1.grid()
    width = len(COLUMNS) if a.stats else LEAN_COLUMNS
    out = np.empty((eta.size, width))
    # mpr-sweep's first_stat_step = max(transient_ms / dt_ms, 1): W1 has no transient,
    # so the statistics start with the first step.
    first_stat_step = max(round(w1.TRANSIENT_MS / w1.DT_MS), 1)

    # One-off JIT compile: compile by calling on a tiny problem (numba compiles
    # per argument types, not sizes), timed separately.
    t0 = time.perf_counter()
    sweep = build(numba, a.method, a.sigma != 0.0, a.stats)
    small = np.empty((4, width))
    sweep(eta[:4].copy(), J[:4].copy(), delta[:4].copy(), w1.TAU_MS, w1.R0_HZ / 1000.0,
          w1.V0, w1.DT_MS, 2, 1, a.sigma, small)
    compile_s = time.perf_counter() - t0

    times, cpu = [], []
    for _ in range(a.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        sweep(eta, J, delta, w1.TAU_MS, w1.R0_HZ / 1000.0, w1.V0, w1.DT_MS, w1.N_STEPS,
              first_stat_step, a.sigma, out)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)

    info = {
        "tool": "numba, same statistics" if a.stats else "numba",
        "threads": a.threads,
        "sigma": a.sigma,
        "method": a.method,
        "stats": a.stats,
        "first_stat_step": first_stat_step,
        "times_s": times,
        "cpu_s": cpu,
        "compile_s": compile_s,
        "import_s": t_import,
        "numba_threads": numba.get_num_threads(),
        "threading_layer": numba.threading_layer(),
        "svml": bool(numba.config.USING_SVML),
        "block": BLOCK,
    }
    np.savez(a.out, **{c: out[:, j] for j, c in enumerate(COLUMNS[:width])},
             info=json.dumps(info))
    print(json.dumps(info), file=sys.stderr)


if __name__ == "__main__":
    main()
