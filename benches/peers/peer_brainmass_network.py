"""A whole-brain MPR network with brainmass 0.1.1, the way its users build one, timed.

One `brainmass.Network(brainmass.MontbrioPazoRoxinStep(N, ...), conn=W,
coupling='diffusive', coupled_var='r', k=k, distance=D, speed=s, delay_init=r0)` per
(k, eta) point, float64, exp_euler, no noise, on the connectome that
`sweeps/network/fetch_connectome.py` writes (weights.txt, tract_lengths.txt in mm). As in
peer_brainmass.py the network is advanced by one `brainstate.transform.jit`-compiled
function that runs `brainstate.transform.for_loop` over the steps (brainmass.Simulator's
loop, without recording a trajectory); the first call (tracing + XLA compilation + one
run) is reported apart, then the best of `--repeats` calls is the run time. Every state
(r, v, the delay buffer and its write pointer) is reset to its initial value before each
call.

brainmass has no batch over parameter points (Simulator's `batch_size` batches initial
conditions only; k is one coupling parameter), so, as a brainmass user would, the script
builds one Network per (k, eta) point: each point compiles once.

Model as mpr-sweep's network spec writes it: coupling into dr/dt (Hz/ms)
k * sum_j W_ij (r_j(t - d_ij) - r_i(t)), delays d_ij = ceil(length_ij / speed / dt) steps,
history = the initial state (delay_init = r0). dt is set globally before the Network is
built (brainmass turns delays into steps at construction). delta in Hz = 1000 x the
paper's delta at tau = 1 ms.

    target/peers-venv/bin/python benches/peers/peer_brainmass_network.py \\
        --k 0,0.5,1 --eta=-5,-4 --steps 20000 --threads 1 --out target/peers/net.json
    taskset -c 0 ... --threads 1     # one core
    ... --check-reference /work/shared/reference/brainmass-0.1.1-network/ref_b.json

`--check-reference REF.json` first runs the reference case REF.json / REF.csv
(every step of r and v, written by brainmass 0.1.1) through the same build and step
functions as the timed runs and fails (exit 1) unless every value agrees within
1e-12 * max(1, |ref|). The thread count is set from outside (taskset / XLA_FLAGS);
`--threads` is recorded and used for ns per node-step per core = time x threads /
(N x steps); the process's CPU time per node-step (all threads) is reported beside it,
which says less about a shared machine's other load than the wall time does.
"""

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
REF_TOL = 1e-12


def floats(text):
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}")


def load_matrix(path):
    path = Path(path)
    if path.suffix == ".npy":
        m = np.load(path)
    else:
        m = np.loadtxt(path, delimiter="," if path.suffix == ".csv" else None)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        sys.exit(f"{path}: expected an N x N matrix, got shape {m.shape}")
    return np.asarray(m, dtype=np.float64)


class Peer:
    """brainmass and its dependencies, imported once (the import is slow)."""

    def __init__(self, dt_ms):
        t0 = time.perf_counter()
        import braintools
        import brainunit as u
        import jax

        import brainmass
        import brainstate

        self.braintools, self.u, self.jax = braintools, u, jax
        self.brainmass, self.brainstate = brainmass, brainstate
        brainstate.environ.set(precision=64)
        assert jax.config.jax_enable_x64
        self.dt = dt_ms * u.ms
        # Network.__init__ turns delays into steps with the global dt: set it first.
        brainstate.environ.set(dt=self.dt)
        self.compile_events = {}

        def on_duration(event, duration, **kw):
            if event.startswith("/jax/core/compile/"):
                key = event.rsplit("/", 1)[-1]
                self.compile_events[key] = self.compile_events.get(key, 0.0) + duration

        jax.monitoring.register_event_duration_secs_listener(on_duration)
        self.import_s = time.perf_counter() - t0

    def build(self, W, D, speed, k, eta, J, delta_hz, tau_ms, r0, v0, coupling):
        """The network, its states initialised; r0, v0 are (N,) arrays."""
        u, bm, init = self.u, self.brainmass, self.braintools.init
        n = W.shape[0]
        node = bm.MontbrioPazoRoxinStep(
            n, tau=tau_ms * u.ms, eta=eta, J=J, delta=delta_hz * u.Hz,
            init_r=init.Constant(r0 * u.Hz), init_v=init.Constant(v0), method="exp_euler")
        net = bm.Network(node, conn=W, coupling=coupling, coupled_var="r", k=k,
                         distance=D, speed=speed, delay_init=r0)
        self.brainstate.nn.init_all_states(net)
        return net

    def runner(self, net, steps, record):
        """A function that resets every state of `net` to its initial value, runs `steps`
        compiled steps and returns (r_hz, v) at the end, or every step if `record`."""
        bs, u, jax = self.brainstate, self.u, self.jax
        dt = self.dt
        states = list(bs.graph.states(net).values())
        initial = [s.value for s in states]
        node = net.node

        def step(i):
            with bs.environ.context(i=i, t=i * dt):
                net.update()
            if record:
                return node.r.value, node.v.value

        @bs.transform.jit
        def simulate():
            out = bs.transform.for_loop(step, np.arange(steps))
            return out if record else (node.r.value, node.v.value)

        def run():
            for s, v in zip(states, initial):
                s.value = v
            r, v = jax.block_until_ready(simulate())
            return np.asarray(u.get_magnitude(r.to(u.Hz))), np.asarray(v)

        return run

    def delay_buffer_length(self, net):
        for path, s in self.brainstate.graph.states(net).items():
            if path[-1] == "history":
                return int(s.value.shape[0])
        return 1


def check_reference(peer, ref_json):
    """Run brainmass's reference case through `Peer.build` / `Peer.runner` and compare
    every step with the recorded trajectory."""
    ref_json = Path(ref_json)
    c = json.loads(ref_json.read_text())
    if c["dt_ms"] * peer.u.ms != peer.dt:
        sys.exit(f"{ref_json}: dt_ms {c['dt_ms']} differs from --dt-ms")
    W = np.array(c["W"], dtype=np.float64)
    D = None if c["distance_mm"] is None else np.array(c["distance_mm"], dtype=np.float64)
    r0 = np.array(c["r0_hz"], dtype=np.float64)
    v0 = np.array(c["v0"], dtype=np.float64)
    if c["method"] != "exp_euler" or c["coupled_var"] != "r" or c["history_hz"] != c["r0_hz"]:
        sys.exit(f"{ref_json}: only exp_euler, coupled_var r, history = r0 cases are supported")
    net = peer.build(W, D, c["speed_mm_per_ms"], c["k"], c["eta"], c["J"], c["delta_hz"],
                     c["tau_ms"], r0, v0, c["coupling"])
    L = peer.delay_buffer_length(net)
    r, v = peer.runner(net, c["steps"], record=True)()
    # Rows: step 0 = initial state, step n = after n updates.
    r = np.vstack([r0, r])
    v = np.vstack([v0, v])
    worst, rows = 0.0, 0
    with open(ref_json.with_name(c["csv"])) as f:
        for row in csv.DictReader(f):
            s, i = int(row["step"]), int(row["node"])
            for got, want in ((r[s, i], float(row["r_hz"])), (v[s, i], float(row["v"]))):
                worst = max(worst, abs(got - want) / max(1.0, abs(want)))
            rows += 1
    ok = rows == (c["steps"] + 1) * c["N"] and worst <= REF_TOL and L == c["buffer_length"]
    return {"reference": str(ref_json), "rows": rows, "max_rel_diff": worst,
            "buffer_length": L, "expected_buffer_length": c["buffer_length"],
            "tolerance": REF_TOL, "ok": ok}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=REPO / "sweeps" / "network" / "data",
                    help="folder with weights.txt and tract_lengths.txt (fetch_connectome.py)")
    ap.add_argument("--k", type=floats, default=[0.5], help="global coupling(s), comma-separated")
    ap.add_argument("--eta", type=floats, default=[-5.0],
                    help="eta value(s), comma-separated; write --eta=-5,-4 (leading minus)")
    ap.add_argument("--J", type=float, default=15.0)
    ap.add_argument("--delta", type=float, default=1.0, help="the paper's delta (x 1000 = Hz)")
    ap.add_argument("--tau-ms", type=float, default=1.0)
    ap.add_argument("--r0-hz", type=float, default=100.0)
    ap.add_argument("--v0", type=float, default=-2.0)
    ap.add_argument("--speed-mm-per-ms", type=float, default=20.0)
    ap.add_argument("--coupling", choices=["diffusive", "additive"], default="diffusive")
    ap.add_argument("--dt-ms", type=float, default=0.01)
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, required=True,
                    help="recorded; set by taskset / XLA_FLAGS")
    ap.add_argument("--check-reference", default=None, metavar="REF.json",
                    help="reproduce a brainmass network reference case first (1e-12)")
    ap.add_argument("--out", type=Path, required=True, help="results JSON")
    a = ap.parse_args()
    if a.steps < 1 or a.repeats < 1 or a.threads < 1:
        ap.error("--steps, --repeats and --threads must be >= 1")

    peer = Peer(a.dt_ms)
    ref = None
    if a.check_reference:
        ref = check_reference(peer, a.check_reference)
        print(f"reference {ref['reference']}: {ref['rows']} rows, max rel diff "
              f"{ref['max_rel_diff']:.3g} (tolerance {REF_TOL:g}), buffer length "
              f"{ref['buffer_length']}: {'ok' if ref['ok'] else 'FAILED'}", file=sys.stderr)
        if not ref["ok"]:
            sys.exit(1)

    W = load_matrix(a.data / "weights.txt")
    D = load_matrix(a.data / "tract_lengths.txt")
    n = W.shape[0]
    if D.shape != W.shape:
        sys.exit(f"tract_lengths.txt is {D.shape}, weights.txt {W.shape}")
    r0 = np.full(n, a.r0_hz)
    v0 = np.full(n, a.v0)
    points = []
    for k in a.k:
        for eta in a.eta:
            net = peer.build(W, D, a.speed_mm_per_ms, k, eta, a.J, a.delta * 1000.0,
                             a.tau_ms, r0, v0, a.coupling)
            run = peer.runner(net, a.steps, record=False)
            peer.compile_events.clear()
            t0 = time.perf_counter()
            run()
            first_s = time.perf_counter() - t0
            compile_s = sum(peer.compile_events.values())
            times, cpu_times = [], []
            for _ in range(a.repeats):
                t0, c0 = time.perf_counter(), time.process_time()
                r, v = run()
                times.append(time.perf_counter() - t0)
                cpu_times.append(time.process_time() - c0)
            best = min(times)
            p = {
                "k": k, "eta": eta, "steps": a.steps,
                "buffer_length": peer.delay_buffer_length(net),
                "times_s": times, "cpu_times_s": cpu_times,
                "first_call_s": first_s, "compile_s": compile_s,
                "ns_per_node_step_per_core": best * a.threads / (n * a.steps) * 1e9,
                "cpu_ns_per_node_step": min(cpu_times) / (n * a.steps) * 1e9,
                "r_final_hz": r.tolist(), "v_final": v.tolist(),
            }
            points.append(p)
            print(f"k {k:g} eta {eta:g}: best {best:.3f} s of {a.repeats}, compile "
                  f"{compile_s:.2f} s, {p['ns_per_node_step_per_core']:.1f} ns per node-step "
                  f"per core ({p['cpu_ns_per_node_step']:.1f} CPU ns); "
                  f"r final {np.min(r):.4g}..{np.max(r):.4g} Hz", file=sys.stderr)

    jax = peer.jax
    off = ~np.eye(n, dtype=bool)
    delay_steps = np.ceil(D / a.speed_mm_per_ms / a.dt_ms)
    result = {
        "tool": "brainmass",
        "versions": {m: __import__(m).__version__ for m in
                     ("brainmass", "brainstate", "brainunit", "braintools", "jax", "numpy")},
        "model": {"J": a.J, "delta": a.delta, "delta_hz": a.delta * 1000.0, "tau_ms": a.tau_ms,
                  "r0_hz": a.r0_hz, "v0": a.v0, "method": "exp_euler", "dt_ms": a.dt_ms,
                  "coupling": a.coupling, "coupled_var": "r", "history": "r0",
                  "speed_mm_per_ms": a.speed_mm_per_ms},
        "data": str(a.data), "N": n, "edges": int(np.count_nonzero(W[off])),
        "max_delay_steps": int(delay_steps[off].max()),
        "threads": a.threads,
        "affinity": sorted(os.sched_getaffinity(0)),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "jax_devices": [str(d) for d in jax.devices()],
        "import_s": peer.import_s,
        "best_ns_per_node_step_per_core": min(p["ns_per_node_step_per_core"] for p in points),
        "reference_check": ref,
        "points": points,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {a.out}: N {n}, {len(points)} point(s), best "
          f"{result['best_ns_per_node_step_per_core']:.1f} ns per node-step per core",
          file=sys.stderr)


if __name__ == "__main__":
    main()
