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

Usage (called by bench.py):
    python peer_numba.py --threads K --sigma S [--method exp_euler|euler] --repeats 3 --out F.npz
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


def build(numba, method, noisy):
    from numba import njit, prange

    euler = method == "euler"

    @njit(parallel=True, fastmath=True)
    def sweep(eta, J, delta, tau, r0_khz, v0, dt, n_steps, sigma, out):
        # out[:, 0..5] = r_final_hz, v_final, r_prev_hz, v_prev, r_mean_hz, v_mean
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
            sr = np.zeros(BLOCK)
            sv = np.zeros(BLOCK)
            c_r = np.empty(BLOCK)  # delta / (pi tau^2)
            c_v = np.empty(BLOCK)  # eta
            c_j = np.empty(BLOCK)  # J tau
            for i in range(m):
                r[i] = r0_khz
                v[i] = v0
                c_r[i] = delta[lo + i] / (math.pi * tau * tau)
                c_v[i] = eta[lo + i]
                c_j[i] = J[lo + i] * tau
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
                    sr[i] += rn
                    sv[i] += vn
            for i in range(m):
                out[lo + i, 0] = r[i] * 1000.0
                out[lo + i, 1] = v[i]
                out[lo + i, 4] = sr[i] * 1000.0 / n_steps
                out[lo + i, 5] = sv[i] / n_steps

    return sweep


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--sigma", type=float, default=0.0)
    ap.add_argument("--method", choices=("exp_euler", "euler"), default="exp_euler")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    t0 = time.perf_counter()
    import numba

    numba.set_num_threads(a.threads)
    t_import = time.perf_counter() - t0

    eta, J, delta = w1.grid()
    out = np.empty((eta.size, 6))

    # One-off JIT compile: compile by calling on a tiny problem (numba compiles
    # per argument types, not sizes), timed separately.
    t0 = time.perf_counter()
    sweep = build(numba, a.method, a.sigma != 0.0)
    small = np.empty((4, 6))
    sweep(eta[:4].copy(), J[:4].copy(), delta[:4].copy(), w1.TAU_MS, w1.R0_HZ / 1000.0,
          w1.V0, w1.DT_MS, 2, a.sigma, small)
    compile_s = time.perf_counter() - t0

    times = []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        sweep(eta, J, delta, w1.TAU_MS, w1.R0_HZ / 1000.0, w1.V0, w1.DT_MS, w1.N_STEPS,
              a.sigma, out)
        times.append(time.perf_counter() - t0)

    info = {
        "tool": "numba",
        "threads": a.threads,
        "sigma": a.sigma,
        "method": a.method,
        "times_s": times,
        "compile_s": compile_s,
        "import_s": t_import,
        "numba_threads": numba.get_num_threads(),
        "threading_layer": numba.threading_layer(),
        "svml": bool(numba.config.USING_SVML),
        "block": BLOCK,
    }
    np.savez(a.out, r_final=out[:, 0], v_final=out[:, 1], r_prev=out[:, 2], v_prev=out[:, 3],
             r_mean=out[:, 4], v_mean=out[:, 5], info=json.dumps(info))
    print(json.dumps(info), file=sys.stderr)


if __name__ == "__main__":
    main()
