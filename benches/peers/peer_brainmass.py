"""W1 with brainmass, the way its documentation and its own Simulator run a model.

One `brainmass.MontbrioPazoRoxinStep` node vectorised over all 16,384 runs
(in_size = 16384, eta / J / delta given as per-run arrays), float64
(`brainstate.environ.set(precision=64)`), dt in `brainstate.environ.context`,
and one `brainstate.transform.jit`-compiled function that advances the node with
`brainstate.transform.for_loop` over the steps (the loop of brainmass.Simulator.run,
without recording a trajectory: 10,000 x 16,384 f64 would be 1.3 GB per variable).
The step also accumulates sum(r), sum(v) for the run means, like mpr-sweep's
summary. The state after 9,999 steps is kept as well (one extra copy, once) so that
bench.py can tell settled runs from ringing ones.

With --precision 32 the same run is made at brainmass's default precision: float32,
JAX's x64 mode off (`brainstate.environ.set(precision=32)`), parameters and state
cast to float32 by JAX. An information row: mpr-sweep computes in f64.

Units: delta in Hz is 1000 x the paper's delta at tau = 1 ms (docs/model.md,
"Mapping to brainmass"); r in Hz.

Noise: brainmass's noise_v is a `brainmass.GaussianNoise` whose N(0, s) sample is
added to v_inp every step. Matching mpr-sweep's white noise sigma at this one dt
needs s = sigma * tau / sqrt(dt) (docs/model.md): 0.5 / sqrt(0.01) = 5. The two definitions
differ (v_inp is multiplied by dt * phi1(2 v dt) inside the exp-Euler step, not by
sqrt(dt)), so noisy results are compared only statistically.

Usage (called by bench.py):
    python peer_brainmass.py --sigma S [--precision 64|32] --repeats 3 --out F.npz
Thread count is set from outside (taskset / XLA_FLAGS); see bench.py.
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np

import w1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, required=True, help="recorded only")
    ap.add_argument("--sigma", type=float, default=0.0, help="mpr-sweep white-noise sigma on v")
    ap.add_argument("--precision", type=int, choices=(64, 32), default=64,
                    help="float bits: 64 (as mpr-sweep) or 32 (brainmass's default)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--check-reference", default=None,
                    help="tests/data/cases.json: reproduce its exp_euler cases first")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.check_reference and a.precision != 64:
        ap.error("--check-reference compares to f64 references: it needs --precision 64")

    t0 = time.perf_counter()
    import braintools
    import brainunit as u
    import jax
    import jax.numpy as jnp

    import brainmass
    import brainstate

    brainstate.environ.set(precision=a.precision)
    jax_events = {}

    def on_duration(event, duration, **kw):
        if event.startswith("/jax/core/compile/"):
            key = event.rsplit("/", 1)[-1]
            jax_events[key] = jax_events.get(key, 0.0) + duration

    jax.monitoring.register_event_duration_secs_listener(on_duration)
    t_import = time.perf_counter() - t0
    assert jax.config.jax_enable_x64 == (a.precision == 64)

    dt = w1.DT_MS * u.ms

    ref_check = None
    if a.check_reference:
        ref_check = check_reference(a.check_reference, brainmass, brainstate, braintools, u, jnp)

    eta, J, delta = w1.grid()
    n = eta.size
    noise_v = None
    if a.sigma:
        s = a.sigma * w1.TAU_MS / math.sqrt(w1.DT_MS)
        noise_v = brainmass.GaussianNoise(n, sigma=s)
    node = brainmass.MontbrioPazoRoxinStep(
        n,
        tau=w1.TAU_MS * u.ms,
        eta=eta,
        J=J,
        delta=delta * 1000.0 * u.Hz,
        init_r=braintools.init.Constant(w1.R0_HZ * u.Hz),
        init_v=braintools.init.Constant(w1.V0),
        noise_v=noise_v,
        method="exp_euler",
    )
    brainstate.random.seed(2026)

    with brainstate.environ.context(dt=dt):
        brainstate.nn.init_all_states(node)
        # init_state() makes *new* State objects, which a compiled function does not
        # see: later runs reset the values of the states the function was traced with.
        r_init, v_init = node.r.value, node.v.value
        sum_r = brainstate.ShortTermState(jnp.zeros(n) * u.Hz)
        sum_v = brainstate.ShortTermState(jnp.zeros(n))

        def step(i):
            with brainstate.environ.context(i=i, t=i * dt):
                node.update()
                sum_r.value = sum_r.value + node.r.value
                sum_v.value = sum_v.value + node.v.value

        @brainstate.transform.jit
        def simulate():
            brainstate.transform.for_loop(step, np.arange(w1.N_STEPS - 1))
            r_prev, v_prev = node.r.value, node.v.value
            step(w1.N_STEPS - 1)
            return (node.r.value, node.v.value, r_prev, v_prev,
                    sum_r.value / w1.N_STEPS, sum_v.value / w1.N_STEPS)

        def one_run():
            node.r.value, node.v.value = r_init, v_init
            sum_r.value = jnp.zeros(n) * u.Hz
            sum_v.value = jnp.zeros(n)
            out = jax.block_until_ready(simulate())
            r_f, v_f, r_p, v_p, r_m, v_m = out
            hz = lambda q: np.asarray(u.get_magnitude(q.to(u.Hz)))
            return dict(r_final=hz(r_f), v_final=np.asarray(v_f), r_prev=hz(r_p),
                        v_prev=np.asarray(v_p), r_mean=hz(r_m), v_mean=np.asarray(v_m))

        # The first call traces and compiles (and runs once); it is not timed as a run.
        jax_events.clear()
        t0 = time.perf_counter()
        res = one_run()
        first_s = time.perf_counter() - t0
        compile_events = dict(jax_events)
        times, cpu = [], []
        for _ in range(a.repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            res = one_run()
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)

    info = {
        "tool": "brainmass" if a.precision == 64 else "brainmass, float32",
        "precision": a.precision,
        "dtype_r": str(res["r_final"].dtype),
        "threads": a.threads,
        "sigma": a.sigma,
        "brainmass_noise_std_on_v_inp": (a.sigma * w1.TAU_MS / math.sqrt(w1.DT_MS)) if a.sigma else 0.0,
        "times_s": times,
        "cpu_s": cpu,
        "first_call_s": first_s,
        # JAX's own record of tracing, lowering and XLA compilation in the first call
        # (a direct measurement; first call minus best call says the same, noisily).
        "compile_s": sum(compile_events.values()),
        "jax_compile_events_s": compile_events,
        "first_minus_best_s": first_s - min(times),
        "import_s": t_import,
        "jax_devices": [str(d) for d in jax.devices()],
        "affinity": sorted(os.sched_getaffinity(0)),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "reference_check": ref_check,
    }
    np.savez(a.out, **res, info=json.dumps(info))
    print(json.dumps(info), file=sys.stderr)


def check_reference(path, brainmass, brainstate, braintools, u, jnp):
    """Re-run the exp_euler cases of tests/data/cases.json (made with brainmass 0.1.1)
    with the installed brainmass, the way they were made (update() once per step),
    and return the max relative difference of the final state from the recorded one."""
    with open(path) as f:
        cases = json.load(f)["cases"]
    worst = 0.0
    names = []
    for name, c in cases.items():
        if c.get("method") != "exp_euler" or c.get("tau_ms") != 1.0:
            continue
        node = brainmass.MontbrioPazoRoxinStep(
            1, tau=c["tau_ms"] * u.ms, eta=c["eta"], J=c["J"], delta=c["delta_Hz"] * u.Hz,
            init_r=braintools.init.Constant(c["r0_Hz"] * u.Hz),
            init_v=braintools.init.Constant(c["v0"]))
        with brainstate.environ.context(dt=c["dt_ms"] * u.ms):
            brainstate.nn.init_all_states(node)
            r_inp = c.get("r_inp_Hz", 0.0) * u.Hz
            v_inp = c.get("v_inp", 0.0)

            def step(i):
                node.update(r_inp, v_inp)

            @brainstate.transform.jit
            def run():
                brainstate.transform.for_loop(step, np.arange(c["n_steps"]))
                return node.r.value, node.v.value

            r, v = run()
        r = float(u.get_magnitude(r.to(u.Hz))[0])
        v = float(np.asarray(v)[0])
        for got, want in ((r, c["final_r_Hz"]), (v, c["final_v"])):
            worst = max(worst, abs(got - want) / max(abs(want), 1e-300))
        names.append(name)
    return {"cases": names, "max_rel_diff_final": worst}


if __name__ == "__main__":
    main()
