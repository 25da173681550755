"""The network row of the peers comparison: mpr-sweep against brainmass 0.1.1's `Network`.

On the connectome that `sweeps/network/fetch_connectome.py` writes (N = 80), with the
model of peer_brainmass_network.py (diffusive coupling on r, speed 20 mm/ms, history =
the initial rates, exp_euler, dt 0.01 ms, f64, no noise, J 15, delta 1 = 1000 Hz,
tau 1 ms, r0 100 Hz, v0 -2), this script:

  1. agreement: runs the --k x --eta points (default 2 x 2) for --check-steps steps
     (2,000 = 20 ms) with both tools and asserts that every node's final r_hz and v agree
     within 1e-9 * max(1, |x|) (the same algorithm); exits 1 otherwise, naming the worst
     node;
  2. timing: mpr-sweep end to end (process start to Parquet in place, --quiet) on
     --time-k x --time-eta (default 4 x 4 = 16 runs) for --time-steps (20,000) steps,
     wall time and the child's CPU time (getrusage); brainmass on --peer-k x --peer-eta
     for --peer-steps, its compiled function as peer_brainmass_network.py times it
     (compile excluded; its cost per step does not depend on the point or the number of
     steps). 1 thread: both pinned with `taskset -c 0`; 2 threads: unpinned, mpr-sweep
     --threads 2, brainmass with XLA's defaults. Best of --repeats each;
  3. prints a markdown table (ns per node-step per core = wall x threads / node-steps,
     and the ratio brainmass / mpr-sweep) and writes it to WORK/network.md and every
     number to WORK/network.json.

    target/peers-venv/bin/python benches/peers/network.py      # after run.sh made the venv
    bash benches/peers/run.sh --network                         # venv, build, this script
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from bench import cpu_idle, machine, versions, wait_quiet
from peer_brainmass_network import floats

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
TOL = 1e-9          # scaled by max(1, |x|): the same algorithm in both tools


def csv_floats(xs):
    return ",".join(repr(x) for x in xs)


def write_spec(path, a, ks, etas, steps):
    """mpr-sweep's spec for the network model of peer_brainmass_network.py (JSON is YAML)."""
    spec = {
        "name": "peers-network",
        "model": {"tau_ms": a.tau_ms, "eta": etas, "J": a.J, "delta": a.delta},
        "network": {
            "weights": str((a.data / "weights.txt").resolve()),
            "tract_lengths_mm": str((a.data / "tract_lengths.txt").resolve()),
            "speed_mm_per_ms": a.speed_mm_per_ms,
            "coupling": "diffusive",
            "k": ks,
        },
        "init": {"r_hz": a.r0_hz, "v": a.v0},
        "simulation": {"method": "exp_euler", "dt_ms": a.dt_ms,
                       "duration_ms": round(steps * a.dt_ms, 12)},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec, indent=1))
    return spec


def run_mpr(binary, spec, out, threads, pin):
    """One end-to-end run; returns (wall s, CPU s of the child: user + system)."""
    cmd = (["taskset", "-c", "0"] if pin else []) + [
        str(binary), "run", str(spec), "--out", str(out), "--overwrite", "--quiet",
        "--threads", str(threads)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def mpr_finals(out):
    """{(k, eta): (r_hz_final[N], v_final[N])} from DIR/summary and DIR/nodes."""
    summary = pq.read_table(sorted((out / "summary").glob("*.parquet"))).to_pandas()
    nodes = pq.read_table(sorted((out / "nodes").glob("*.parquet")),
                          columns=["run_id", "node", "r_hz_final", "v_final"]).to_pandas()
    finals = {}
    for run_id, k, eta in summary[["run_id", "k", "eta"]].itertuples(index=False):
        rows = nodes[nodes["run_id"] == run_id].sort_values("node")
        finals[(float(k), float(eta))] = (rows["r_hz_final"].to_numpy(float),
                                          rows["v_final"].to_numpy(float))
    return finals


def run_peer(py, a, ks, etas, steps, threads, pin, repeats, out, extra=()):
    cmd = (["taskset", "-c", "0"] if pin else []) + [
        str(py), str(HERE / "peer_brainmass_network.py"), "--data", str(a.data),
        "--k", csv_floats(ks), f"--eta={csv_floats(etas)}", "--J", repr(a.J),
        "--delta", repr(a.delta), "--tau-ms", repr(a.tau_ms), "--r0-hz", repr(a.r0_hz),
        f"--v0={a.v0!r}", "--speed-mm-per-ms", repr(a.speed_mm_per_ms),
        "--dt-ms", repr(a.dt_ms), "--steps", str(steps), "--repeats", str(repeats),
        "--threads", str(threads), "--out", str(out), *extra]
    p = subprocess.run(cmd, check=False, cwd=HERE, capture_output=True, text=True)
    sys.stderr.write(p.stderr)
    if p.returncode != 0:
        sys.stderr.write(p.stdout)
        raise SystemExit(f"peer_brainmass_network.py failed (exit {p.returncode})")
    return json.loads(out.read_text())


def agreement(a, work):
    """Both tools on the --k x --eta points for --check-steps; the worst scaled difference."""
    spec = write_spec(work / "network-check.json", a, a.k, a.eta, a.check_steps)
    out = work / "network-check-mpr"
    run_mpr(a.bin, work / "network-check.json", out, 2, pin=False)
    mpr = mpr_finals(out)
    extra = ["--check-reference", str(a.check_reference)] if a.check_reference else []
    peer = run_peer(a.py, a, a.k, a.eta, a.check_steps, 2, False, 1,
                    work / "network-check-brainmass.json", extra)
    worst = {"scaled_diff": 0.0}
    points = []
    for p in peer["points"]:
        key = (p["k"], p["eta"])
        if key not in mpr:
            raise SystemExit(f"mpr-sweep has no run at k {key[0]}, eta {key[1]}")
        r_m, v_m = mpr[key]
        r_b, v_b = np.array(p["r_final_hz"]), np.array(p["v_final"])
        if r_m.shape != r_b.shape:
            raise SystemExit(f"k {key[0]} eta {key[1]}: {r_m.size} nodes in mpr-sweep, "
                             f"{r_b.size} in brainmass")
        point_worst = 0.0
        for var, m, b in (("r_hz", r_m, r_b), ("v", v_m, v_b)):
            d = np.abs(m - b) / np.maximum(1.0, np.abs(b))
            d = np.where(np.isfinite(m) & np.isfinite(b), d, np.inf)
            i = int(np.argmax(d))
            point_worst = max(point_worst, float(d[i]))
            if d[i] >= worst["scaled_diff"]:
                worst = {"scaled_diff": float(d[i]), "k": key[0], "eta": key[1], "var": var,
                         "node": i, "mpr_sweep": float(m[i]), "brainmass": float(b[i])}
        points.append({"k": key[0], "eta": key[1], "max_scaled_diff": point_worst,
                       "r_hz_range": [float(r_b.min()), float(r_b.max())]})
    return {"steps": a.check_steps, "points": points, "worst": worst, "tolerance": TOL,
            "nodes_compared": sum(len(p["r_final_hz"]) for p in peer["points"]),
            "reference_check": peer["reference_check"], "spec": spec,
            "ok": worst["scaled_diff"] <= TOL}


def load_now():
    return list(os.getloadavg())


def timing(a, work, n):
    spec_path = work / "network-time.json"
    write_spec(spec_path, a, a.time_k, a.time_eta, a.time_steps)
    node_steps = len(a.time_k) * len(a.time_eta) * n * a.time_steps
    have_taskset = shutil.which("taskset") is not None
    rows = []
    for threads in (1, 2):
        pin = threads == 1 and have_taskset
        idle = wait_quiet(a.quiet_wait)
        load = load_now()
        walls, cpus = [], []
        for _ in range(a.repeats):
            w, c = run_mpr(a.bin, spec_path, work / "network-time-mpr", threads, pin)
            walls.append(w)
            cpus.append(c)
        mpr = {"tool": "mpr-sweep", "threads": threads, "pinned": pin, "idle_pct": idle,
               "loadavg": load, "times_s": walls, "cpu_times_s": cpus,
               "node_steps": node_steps,
               "ns_per_node_step_per_core": min(walls) * threads / node_steps * 1e9,
               "cpu_ns_per_node_step": min(cpus) / node_steps * 1e9}
        idle = wait_quiet(a.quiet_wait)
        load = load_now()
        peer = run_peer(a.py, a, a.peer_k, a.peer_eta, a.peer_steps, threads, pin, a.repeats,
                        work / f"network-time-brainmass-{threads}t.json")
        bm = {"tool": "brainmass", "threads": threads, "pinned": pin, "idle_pct": idle,
              "loadavg": load, "node_steps_per_call": n * a.peer_steps,
              "points": [{k: p[k] for k in ("k", "eta", "times_s", "cpu_times_s",
                                             "compile_s", "ns_per_node_step_per_core",
                                             "cpu_ns_per_node_step")}
                         for p in peer["points"]],
              "ns_per_node_step_per_core": peer["best_ns_per_node_step_per_core"],
              "cpu_ns_per_node_step": min(p["cpu_ns_per_node_step"] for p in peer["points"]),
              "versions": peer["versions"]}
        rows.append({"threads": threads, "mpr_sweep": mpr, "brainmass": bm,
                     "ratio": bm["ns_per_node_step_per_core"] / mpr["ns_per_node_step_per_core"],
                     "cpu_ratio": bm["cpu_ns_per_node_step"] / mpr["cpu_ns_per_node_step"]})
        print(f"{threads} thread(s): mpr-sweep {mpr['ns_per_node_step_per_core']:.2f}, "
              f"brainmass {bm['ns_per_node_step_per_core']:.1f} ns per node-step per core",
              file=sys.stderr)
    return rows


def report(a, n, edges, agr, rows):
    w = agr["worst"]
    lines = [
        (f"## Network: N = {n} connectome ({edges} edges), mpr-sweep vs brainmass "
        f"{rows[0]['brainmass']['versions']['brainmass']}"),
        "",
        (f"Diffusive coupling on r, speed {a.speed_mm_per_ms:g} mm/ms, history = initial "
        f"rates, exp_euler, dt {a.dt_ms:g} ms, f64, no noise; J {a.J:g}, delta {a.delta:g}, "
        f"tau {a.tau_ms:g} ms, r0 {a.r0_hz:g} Hz, v0 {a.v0:g}."),
        "",
        ("| threads | mpr-sweep ns/node-step/core | (CPU ns/node-step) | brainmass "
        "ns/node-step/core | (CPU ns/node-step) | brainmass / mpr-sweep | (CPU) "
        "| load avg (1 min) |"),
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        m, b = r["mpr_sweep"], r["brainmass"]
        lines.append(
            f"| {r['threads']}{' (taskset -c 0)' if m['pinned'] else ''} "
            f"| {m['ns_per_node_step_per_core']:.2f} | {m['cpu_ns_per_node_step']:.2f} "
            f"| {b['ns_per_node_step_per_core']:.1f} | {b['cpu_ns_per_node_step']:.1f} "
            f"| {r['ratio']:.1f}x | {r['cpu_ratio']:.1f}x "
            f"| {m['loadavg'][0]:.2f} / {b['loadavg'][0]:.2f} |")
    lines += [
        "",
        (f"mpr-sweep: end to end (process start to Parquet in place), "
        f"{len(a.time_k)} k x {len(a.time_eta)} eta = {len(a.time_k) * len(a.time_eta)} runs "
        f"x {a.time_steps:,} steps; brainmass: its compiled function (compile excluded), "
        f"{len(a.peer_k) * len(a.peer_eta)} point(s) x {a.peer_steps:,} steps, one Network "
        f"per point. Best of {a.repeats}. ns per node-step per core = wall x threads / "
        "node-steps; CPU = user + system time of the process (all its threads) / node-steps, "
        "less sensitive to other load on a shared machine. Load average: before mpr-sweep's "
        "/ brainmass's timing."),
        "",
        (f"**Agreement** ({len(agr['points'])} points x {n} nodes, {agr['steps']:,} steps): "
        f"max |mpr-sweep - brainmass| / max(1, |x|) over every node's final r_hz and v = "
        f"{w['scaled_diff']:.3g} (tolerance {TOL:g}; worst: {w.get('var')} of node "
        f"{w.get('node')} at k {w.get('k')}, eta {w.get('eta')}): "
        f"{'ok' if agr['ok'] else 'FAILED'}."),
    ]
    if agr["reference_check"]:
        rc = agr["reference_check"]
        lines.append(f"brainmass reference {Path(rc['reference']).name}: max rel diff "
                     f"{rc['max_rel_diff']:.3g} ({'ok' if rc['ok'] else 'FAILED'}).")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", type=Path, default=REPO / "target" / "release" / "mpr-sweep")
    ap.add_argument("--py", type=Path, default=REPO / "target" / "peers-venv" / "bin" / "python",
                    help="python with brainmass 0.1.1 (run.sh's venv)")
    ap.add_argument("--work", type=Path, default=REPO / "target" / "peers")
    ap.add_argument("--data", type=Path, default=REPO / "sweeps" / "network" / "data",
                    help="weights.txt and tract_lengths.txt (fetch_connectome.py)")
    ap.add_argument("--k", type=floats, default=[0.5, 1.0], help="agreement: k values")
    ap.add_argument("--eta", type=floats, default=[-5.0, -4.5],
                    help="agreement: eta values (write --eta=-5,-4.5)")
    ap.add_argument("--check-steps", type=int, default=2000)
    ap.add_argument("--check-reference", type=Path, default=None, metavar="REF.json",
                    help="brainmass network reference case the peer reproduces first (1e-12)")
    ap.add_argument("--time-k", type=floats, default=[0.25, 0.5, 0.75, 1.0])
    ap.add_argument("--time-eta", type=floats, default=[-5.0, -4.75, -4.5, -4.25])
    ap.add_argument("--time-steps", type=int, default=20000, help="mpr-sweep's timed steps")
    ap.add_argument("--peer-k", type=floats, default=[0.5, 1.0])
    ap.add_argument("--peer-eta", type=floats, default=[-5.0])
    ap.add_argument("--peer-steps", type=int, default=5000, help="brainmass's timed steps")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quiet-wait", type=float, default=30.0,
                    help="wait up to this many s for idle CPUs before each timing")
    ap.add_argument("--no-timing", action="store_true", help="only the agreement check")
    ap.add_argument("--J", type=float, default=15.0)
    ap.add_argument("--delta", type=float, default=1.0, help="the paper's delta (x 1000 = Hz)")
    ap.add_argument("--tau-ms", type=float, default=1.0)
    ap.add_argument("--r0-hz", type=float, default=100.0)
    ap.add_argument("--v0", type=float, default=-2.0)
    ap.add_argument("--speed-mm-per-ms", type=float, default=20.0)
    ap.add_argument("--dt-ms", type=float, default=0.01)
    a = ap.parse_args()
    if min(a.check_steps, a.time_steps, a.peer_steps, a.repeats) < 1:
        ap.error("--check-steps, --time-steps, --peer-steps and --repeats must be >= 1")
    for path in (a.bin, a.py):
        if not path.exists():
            ap.error(f"{path} does not exist (run benches/peers/run.sh, or give --bin / --py)")
    for name in ("weights.txt", "tract_lengths.txt"):
        if not (a.data / name).exists():
            ap.error(f"{a.data / name} does not exist: run "
                     "python3 sweeps/network/fetch_connectome.py")
    a.work.mkdir(parents=True, exist_ok=True)

    W = np.loadtxt(a.data / "weights.txt")
    n = W.shape[0]
    edges = int(np.count_nonzero(W[~np.eye(n, dtype=bool)]))

    agr = agreement(a, a.work)
    w = agr["worst"]
    print(f"agreement: max scaled difference {w['scaled_diff']:.3g} over "
          f"{agr['nodes_compared']} nodes (tolerance {TOL:g})", file=sys.stderr)
    if not agr["ok"]:
        print(f"FAILED: {w}", file=sys.stderr)
    rows = [] if a.no_timing or not agr["ok"] else timing(a, a.work, n)
    result = {"machine": machine(), "versions": versions(a.bin), "N": n, "edges": edges,
              "agreement": agr, "timing": rows, "loadavg_end": load_now(),
              "cpu_idle_pct_end": cpu_idle(1.0)}
    (a.work / "network.json").write_text(json.dumps(result, indent=1))
    if rows:
        md = report(a, n, edges, agr, rows)
        (a.work / "network.md").write_text(md)
        print(md)
    print(f"wrote {a.work / 'network.json'}", file=sys.stderr)
    if not agr["ok"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
