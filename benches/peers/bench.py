"""W1 against its peers: mpr-sweep (release binary), brainmass (JAX) and numba.

Run through benches/peers/run.sh, which makes the virtual environment and builds the
binary. This script, in one session:
  1. checks that benches/w1.yaml and w1-euler.yaml are W1 and that the installed
     brainmass reproduces the brainmass 0.1.1 reference cases in tests/data/cases.json;
  2. times W1 and W1 + white noise on v with each tool at 1 and 2 threads, and W1 with
     forward Euler with mpr-sweep and numba, best of --repeats (peers: JIT compile
     excluded and reported separately; mpr-sweep: end to end, process start to Parquet
     closed); on the deterministic workloads also numba keeping mpr-sweep's statistics
     ("numba, same statistics"), and on W1 brainmass at its default float32;
  3. checks that the deterministic results agree (asserts; for forward Euler also that
     the same runs diverge in both tools), that numba's statistics match mpr-sweep's
     summary columns (asserts), reports brainmass float32's agreement (asserting only a
     sanity bound) and compares the noisy ones statistically (reported, not asserted:
     the noise definitions differ);
  4. prints a markdown table, and writes it with all numbers to --work.

Threads: "1" rows run pinned to one core (`taskset -c 0`) for every tool, so that no
tool uses the second core behind our back (XLA has no thread-count switch of its own
that covers everything); "2" rows run unpinned: mpr-sweep --threads 2, numba with
2 threads, brainmass with XLA's defaults (all cores).
"""

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

import w1

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
REFERENCE_VERSIONS = {"brainmass": "0.1.1", "brainstate": "0.5.4", "brainunit": "0.5.2",
                      "jax": "0.10.2"}
SETTLED_REL = 1e-6      # a run is settled when its last step changed r and v by <= this
TOL = {"brainmass": 1e-9, "numba": 1e-6}
# numba's statistics against mpr-sweep's summary columns, settled runs: the same sums in
# another order (fastmath); std (from shifted sums of squares) loses a few more digits
# where the run's spread is small next to its distance from the shift.
STATS = ("r_mean", "r_std", "r_min", "r_max", "v_mean", "v_std", "v_min", "v_max")
STAT_TOL = {"mean": 1e-10, "std": 1e-8, "min": 1e-10, "max": 1e-10}
F32_SANITY = 1e-2       # brainmass float32 vs mpr-sweep (f64): reported, bounded only


def sh(cmd):
    return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()


def machine():
    model = ""
    for line in sh("lscpu").splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    flags = sh("grep -m1 '^flags' /proc/cpuinfo")
    simd = [f for f in ("avx2", "fma", "avx512f") if f" {f}" in flags]
    return {"cpu": model, "cores": os.cpu_count(), "simd": simd,
            "kernel": platform.release(), "python": platform.python_version()}


def versions(binary):
    v = {}
    for pkg in ("brainmass", "brainstate", "brainunit", "braintools", "jax", "jaxlib", "numba",
                "llvmlite", "numpy", "pyarrow"):
        try:
            v[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            v[pkg] = None
    v["mpr-sweep"] = sh(f"{binary} --version").replace("mpr-sweep ", "")
    v["rustc"] = sh("rustc --version")
    return v


def loadavg():
    return os.getloadavg()[0]


def cpu_idle(seconds):
    """Percentage of all CPUs idle over `seconds` (from /proc/stat)."""
    def read():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
        return sum(v), v[3] + v[4]
    t0, i0 = read()
    time.sleep(seconds)
    t1, i1 = read()
    return 100.0 * (i1 - i0) / max(t1 - t0, 1)


def wait_quiet(max_wait, idle_pct=90.0, sample=2.0):
    """On a shared machine: wait (at most max_wait s) until the CPUs are idle; return
    the idle percentage last measured (None when not waiting)."""
    if max_wait <= 0:
        return None
    deadline = time.monotonic() + max_wait
    while True:
        idle = cpu_idle(sample)
        if idle >= idle_pct or time.monotonic() >= deadline:
            return idle


def children_cpu_s():
    """User + system CPU seconds of the waited-for child processes so far."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


# --------------------------------------------------------------------------- tools

def run_mpr(binary, spec, out, threads, repeats, pin):
    """Best-of-`repeats` end-to-end time; returns times and the summary (run_id order)."""
    cmd = ([] if not pin else ["taskset", "-c", "0"]) + [
        str(binary), "run", str(spec), "--out", str(out), "--overwrite", "--quiet",
        "--threads", str(threads)]
    times, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), children_cpu_s()
        subprocess.run(cmd, check=True)
        times.append(time.perf_counter() - t0)
        cpu.append(children_cpu_s() - c0)
    parts = sorted((out / "summary").glob("part-*.parquet"))
    table = pq.read_table(parts)
    meta = pq.read_schema(parts[0]).metadata or {}
    s = table.to_pandas().sort_values("run_id").reset_index(drop=True)
    assert (s["run_id"].to_numpy() == np.arange(w1.N_RUNS)).all()
    res = {
        "r_final": s["r_hz_final"].to_numpy(float, na_value=np.nan),
        "v_final": s["v_final"].to_numpy(float, na_value=np.nan),
        "diverged": s["diverged"].to_numpy(bool),
        "diverged_at_ms": s["diverged_at_ms"].to_numpy(float, na_value=np.nan),
    }
    for key in STATS:
        res[key] = s[key.replace("r_", "r_hz_")].to_numpy(float, na_value=np.nan)
    info = {"tool": "mpr-sweep", "threads": threads, "times_s": times, "cpu_s": cpu,
            "compile_s": None,
            "isa": meta.get(b"mpr_sweep.isa", b"?").decode()}
    return res, info, s


def run_peer(py, script, threads, sigma, repeats, out, pin, extra=()):
    env = dict(os.environ)
    env["NUMBA_NUM_THREADS"] = str(threads)
    cmd = ([] if not pin else ["taskset", "-c", "0"]) + [
        str(py), str(HERE / script), "--threads", str(threads), "--sigma", str(sigma),
        "--repeats", str(repeats), "--out", str(out), *extra]
    p = subprocess.run(cmd, env=env, cwd=HERE, capture_output=True, text=True)
    if p.returncode != 0:
        sys.stderr.write(p.stdout + p.stderr)
        raise SystemExit(f"{script} failed (exit {p.returncode})")
    d = np.load(out)
    info = json.loads(str(d["info"]))
    res = {k: d[k].astype(float) for k in d.files if k != "info"}
    return res, info


# --------------------------------------------------------------------------- checks

def rel(a, b):
    return np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), 1e-300)


def check_w1_spec(binary, spec, method, summary):
    plan = json.loads(sh(f"{binary} plan {spec} --json"))
    assert plan["runs"] == w1.N_RUNS and plan["steps_per_run"] == w1.N_STEPS, plan
    assert plan["method"] == method and plan["dt_ms"] == w1.DT_MS, plan
    eta, J, delta = w1.grid()
    for col, want in (("eta", eta), ("J", J), ("delta", delta)):
        got = summary[col].to_numpy(float)
        assert np.max(np.abs(got - want)) <= 1e-15 * 30, col
    for col, want in (("tau_ms", w1.TAU_MS), ("init_r_hz", w1.R0_HZ), ("init_v", w1.V0),
                      ("dt_ms", w1.DT_MS), ("input_r_hz", 0.0), ("input_v", 0.0)):
        assert (summary[col].to_numpy(float) == want).all(), col
    return f"{spec.relative_to(REPO)} is W1: 64 x 64 x 4 runs, 10,000 steps of 0.01 ms, " \
           f"{method}, tau 1 ms, r0 100 Hz, v0 -2, no input; its eta/J/delta equal numpy's " \
           "linspace"


def finite_and_settled(results):
    """Runs finite (final r, v, mean r) in every tool of `results`, and of those the runs
    settled in every peer (the last step changed r and v by <= SETTLED_REL)."""
    finite = np.ones(w1.N_RUNS, bool)
    for res in results:
        for k in ("r_final", "v_final", "r_mean"):
            finite &= np.isfinite(res[k])
    settled = finite.copy()
    for res in results:
        if "r_prev" in res:
            settled &= (rel(res["r_final"], res["r_prev"]) <= SETTLED_REL)
            settled &= (rel(res["v_final"], res["v_prev"]) <= SETTLED_REL)
    return finite, settled


def agreement(mpr, peers):
    """Deterministic W1: max relative differences of each peer from mpr-sweep."""
    finite, settled = finite_and_settled([mpr, *peers.values()])
    out = {"runs": w1.N_RUNS, "finite": int(finite.sum()), "settled": int(settled.sum()),
           "excluded": int(w1.N_RUNS - settled.sum()), "peers": {}}
    for name, res in peers.items():
        d = {}
        for k in ("r_final", "v_final", "r_mean", "v_mean"):
            x = rel(mpr[k], res[k])
            d[k] = {"settled_max": float(np.max(x[settled])),
                    "all_finite_max": float(np.max(x[finite]))}
        d["max_final_settled"] = max(d["r_final"]["settled_max"], d["v_final"]["settled_max"])
        d["max_final_all_finite"] = max(d["r_final"]["all_finite_max"],
                                        d["v_final"]["all_finite_max"])
        d["tol"] = TOL[name]
        d["ok"] = d["max_final_settled"] < TOL[name]
        out["peers"][name] = d
    agree = finite.copy()
    for res in peers.values():
        agree &= (rel(mpr["r_final"], res["r_final"]) <= 1e-6)
        agree &= (rel(mpr["v_final"], res["v_final"]) <= 1e-6)
    out["all_within_1e-6"] = int(agree.sum())
    return out


def stats_agreement(mpr, peer):
    """numba with mpr-sweep's statistics against mpr-sweep's summary columns: the runs
    finished in both (not diverged) and settled in numba are asserted against STAT_TOL;
    the same runs must diverge, at the same step."""
    peer_div = peer["finite_steps"] < w1.N_STEPS
    same_div = bool((peer_div == mpr["diverged"]).all())
    at_ms = (peer["finite_steps"] + 1) * w1.DT_MS
    same_at = same_div and bool(np.all(np.abs(at_ms[peer_div] - mpr["diverged_at_ms"][peer_div])
                                       <= 1e-9 * at_ms[peer_div]))
    finished, settled = finite_and_settled([mpr, peer])
    finished &= ~mpr["diverged"] & ~peer_div
    settled &= finished
    out = {"finished": int(finished.sum()), "settled": int(settled.sum()),
           "diverged": int(mpr["diverged"].sum()), "same_diverged": same_div,
           "same_diverged_at": same_at, "stats": {}}
    within = finished.copy()
    for key in (*STATS, "r_final", "v_final"):
        x = rel(mpr[key], peer[key])
        tol = STAT_TOL.get(key.split("_")[1], TOL["numba"])
        out["stats"][key] = {"settled_max": float(np.max(x[settled], initial=0.0)),
                             "all_finished_max": float(np.max(x[finished], initial=0.0)),
                             "tol": tol}
        out["stats"][key]["ok"] = out["stats"][key]["settled_max"] < tol
        within &= x <= 1e-6
    out["all_within_1e-6"] = int(within.sum())
    out["ok"] = same_at and all(d["ok"] for d in out["stats"].values())
    return out


def stats_table(sa):
    """The markdown table of a stats_agreement() result, one row per statistic."""
    lines = [("| statistic | max rel. diff, settled runs | tolerance | max rel. diff, all "
              "finished runs | pass |"), "|---|--:|--:|--:|---|"]
    for key, d in sa["stats"].items():
        col = key.replace("r_", "r_hz_")
        lines.append(f"| {col} | {d['settled_max']:.2e} | {d['tol']:g} | "
                     f"{d['all_finished_max']:.2e} | {'yes' if d['ok'] else 'NO'} |")
    return lines


def f32_agreement(mpr, f32, settled):
    """brainmass float32 against mpr-sweep (f64): on the runs the f64 comparison found
    settled (and finite in float32), and on every run finite in both."""
    finite = np.ones(w1.N_RUNS, bool)
    for res in (mpr, f32):
        for k in ("r_final", "v_final", "r_mean"):
            finite &= np.isfinite(res[k])
    settled = settled & finite
    out = {"settled": int(settled.sum()), "finite": int(finite.sum())}
    for key in ("r_final", "v_final", "r_mean", "v_mean"):
        x = rel(mpr[key], f32[key])
        out[key] = {"settled_max": float(np.max(x[settled])),
                    "settled_median": float(np.median(x[settled])),
                    "all_finite_max": float(np.max(x[finite]))}
    out["sanity_bound"] = F32_SANITY
    out["ok"] = max(out[k]["settled_max"] for k in ("r_final", "v_final")) < F32_SANITY
    return out


def divergence(results):
    """Runs that blew up, per tool: mpr-sweep's `diverged` column (it stops such a run);
    numba with the statistics: its own count of steps below 1e300, as mpr-sweep's; for
    a lean peer, a non-finite final state or mean (it integrates on into inf and NaN)."""
    runs = {}
    for name, res in results.items():
        if "diverged" in res:
            runs[name] = res["diverged"]
        elif "finite_steps" in res:
            runs[name] = res["finite_steps"] < w1.N_STEPS
        else:
            runs[name] = ~np.logical_and.reduce(
                [np.isfinite(res[k]) for k in ("r_final", "v_final", "r_mean", "v_mean")])
    first = next(iter(runs.values()))
    return {"diverged": {name: int(d.sum()) for name, d in runs.items()},
            "same_runs": all((d == first).all() for d in runs.values())}


def agreement_table(agr):
    """The markdown table of an agreement() result, one row per peer."""
    lines = ["| peer | max rel. diff, settled runs | tolerance | "
             "max rel. diff, all finite runs | r_hz_mean, settled | pass |",
             "|---|--:|--:|--:|--:|---|"]
    for name, d in agr["peers"].items():
        lines.append(f"| {name} | {d['max_final_settled']:.2e} | {d['tol']:g} | "
                     f"{d['max_final_all_finite']:.2e} | {d['r_mean']['settled_max']:.2e} | "
                     f"{'yes' if d['ok'] else 'NO'} |")
    return lines


def noise_stats(results):
    """Statistics of noisy W1 over all runs, per tool (no per-run comparison)."""
    out = {}
    for name, res in results.items():
        ok = np.isfinite(res["r_mean"]) & np.isfinite(res["v_mean"])
        out[name] = {
            "finite": int(ok.sum()),
            "grand_mean_r_hz": float(np.mean(res["r_mean"][ok])),
            "grand_mean_v": float(np.mean(res["v_mean"][ok])),
            "median_r_final_hz": float(np.median(res["r_final"][ok])),
            "frac_r_final_above_300hz": float(np.mean(res["r_final"][ok] > 300.0)),
        }
    return out


# --------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(REPO / "target/release/mpr-sweep"))
    ap.add_argument("--work", default=str(REPO / "target/peers"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--no-noise", action="store_true", help="skip the noisy workload")
    ap.add_argument("--no-euler", action="store_true",
                    help="skip W1 with forward Euler (mpr-sweep and numba)")
    ap.add_argument("--quiet-wait", type=float, default=30.0,
                    help="before each tool's timing wait up to this many seconds for the "
                         "CPUs to be >= 90%% idle (shared machines); 0: do not wait")
    a = ap.parse_args()

    binary = Path(a.bin).resolve()
    work = Path(a.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    threads_list = [int(t) for t in a.threads.split(",")]
    have_taskset = shutil.which("taskset") is not None

    mach, vers = machine(), versions(binary)
    load_start = os.getloadavg()
    print(f"machine: {mach['cpu']}, {mach['cores']} cores ({', '.join(mach['simd'])}); "
          f"load average {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}",
          flush=True)
    print("versions: " + ", ".join(f"{k} {v}" for k, v in vers.items()), flush=True)
    off = {k: vers.get(k) for k, v in REFERENCE_VERSIONS.items() if vers.get(k) != v}
    if off:
        print(f"NOTE: not the reference versions {REFERENCE_VERSIONS}: {off}", flush=True)

    # (name, sigma, method, spec, file tag); brainmass runs the exp_euler workloads only:
    # the euler target of the performance issue is numba's Euler kernel.
    workloads = [("W1", 0.0, "exp_euler", REPO / "benches/w1.yaml", "d")]
    if not a.no_noise:
        workloads.append(("W1 + noise", w1.NOISE_SIGMA, "exp_euler", HERE / "w1-noise.yaml",
                          "n"))
    if not a.no_euler:
        workloads.append(("W1 euler", 0.0, "euler", HERE / "w1-euler.yaml", "e"))

    rows, results, ref_check, spec_notes = [], {}, None, []
    for wname, sigma, method, spec, wtag in workloads:
        results[wname] = {}
        for k in threads_list:
            pin = k == 1 and have_taskset
            tag = f"{wtag}{k}"
            idle, res, infos = {}, {}, []
            print(f"[{wname}, {k} thread(s)] mpr-sweep ...", flush=True)
            l0 = loadavg()
            idle["mpr-sweep"] = wait_quiet(a.quiet_wait)
            res["mpr-sweep"], minfo, msum = run_mpr(binary, spec, work / f"mpr-{tag}", k,
                                                    a.repeats, pin)
            infos.append(minfo)
            if sigma == 0.0 and k == threads_list[0]:
                spec_notes.append(check_w1_spec(binary, spec, method, msum))
            # (key, script, options): brainmass on the exp_euler workloads, at its
            # default float32 as well on deterministic W1; numba's lean kernel, and on
            # the deterministic workloads numba keeping mpr-sweep's statistics.
            peers = []
            if method == "exp_euler":
                extra = ()
                if ref_check is None:
                    extra = ("--check-reference", str(REPO / "tests/data/cases.json"))
                peers.append(("brainmass", "peer_brainmass.py", extra))
                if sigma == 0.0:
                    peers.append(("brainmass-f32", "peer_brainmass.py", ("--precision", "32")))
            peers.append(("numba", "peer_numba.py", ("--method", method)))
            if sigma == 0.0:
                peers.append(("numba-stats", "peer_numba.py", ("--method", method, "--stats")))
            for key, script, extra in peers:
                print(f"[{wname}, {k} thread(s)] {key} ...", flush=True)
                idle_before = wait_quiet(a.quiet_wait)
                res[key], info = run_peer(py, script, k, sigma, a.repeats,
                                          work / f"{key}-{tag}.npz", pin, extra)
                idle[info["tool"]] = idle_before
                infos.append(info)
                if info.get("reference_check"):
                    ref_check = info["reference_check"]
            load = (l0 + loadavg()) / 2
            best_m = min(minfo["times_s"])
            for info in infos:
                best = min(info["times_s"])
                rows.append({
                    "workload": wname, "tool": info["tool"], "threads": k,
                    "pinned": pin, "best_s": best, "times_s": info["times_s"],
                    "best_cpu_s": min(info["cpu_s"]),
                    "ns_per_run_step_core": best * k / (w1.N_RUNS * w1.N_STEPS) * 1e9,
                    "ratio_vs_mpr": best / best_m,
                    "compile_s": info.get("compile_s"), "load": load,
                    "idle_before_pct": idle[info["tool"]],
                    "detail": {x: info[x] for x in info if x not in ("times_s", "cpu_s")},
                })
            results[wname][k] = res
    load_end = os.getloadavg()

    # ---- agreement (deterministic, the 1-thread results; the others are checked
    # against them too)
    k0 = threads_list[0]
    det = results["W1"][k0]
    agr = agreement(det["mpr-sweep"], {"brainmass": det["brainmass"], "numba": det["numba"]})
    _, det_settled = finite_and_settled([det["mpr-sweep"], det["brainmass"], det["numba"]])
    stats_agr = {"W1": stats_agreement(det["mpr-sweep"], det["numba-stats"])}
    f32 = f32_agreement(det["mpr-sweep"], det["brainmass-f32"], det_settled)
    eul, eul_div = None, None
    if "W1 euler" in results:
        e0 = results["W1 euler"][k0]
        eul = agreement(e0["mpr-sweep"], {"numba": e0["numba"]})
        eul_div = divergence(e0)
        stats_agr["W1 euler"] = stats_agreement(e0["mpr-sweep"], e0["numba-stats"])
    cross = {}
    for wname in ("W1", "W1 euler"):
        if wname not in results:
            continue
        for k in threads_list[1:]:
            for tool in results[wname][k]:
                x = 0.0
                for key in ("r_final", "v_final", "r_mean"):
                    a0, a1 = results[wname][k0][tool][key], results[wname][k][tool][key]
                    both = np.isfinite(a0) & np.isfinite(a1)
                    x = max(x, float(np.max(rel(a0[both], a1[both]), initial=0.0)))
                cross[f"{wname}, {tool} {k0} vs {k} threads"] = x
    nstats = {k: noise_stats(v) for k, v in results.get("W1 + noise", {}).items()}

    # ---- report
    lines = []
    lines.append(f"Machine: {mach['cpu']}, {mach['cores']} cores "
                 f"({', '.join(mach['simd'])}), Linux {mach['kernel']}, Python {mach['python']}; "
                 f"mpr-sweep kernel path: {rows[0]['detail'].get('isa', '?')}.")
    lines.append("Versions: " + ", ".join(f"{k} {v}" for k, v in vers.items() if k != "rustc")
                 + f"; {vers['rustc']}.")
    lines.append(f"Load average at start {load_start[0]:.2f}, at end {load_end[0]:.2f} "
                 "(1-minute). \"CPU idle before\": both cores' idle share over 2 s just before "
                 "that tool's timing (the script waits up to --quiet-wait s for >= 90 %); "
                 "on a shared machine read small differences as noise.")
    lines.append("")
    lines.append(f"W1: 16,384 runs x 10,000 steps (dt 0.01 ms, 100 ms), exp_euler, f64. "
                 f"Best of {a.repeats}. ns/run-step/core = time x threads / (16,384 x 10,000). "
                 "CPU time: the least user + system time of the repeats (mpr-sweep: the "
                 "process; peers: their process during the compiled call, all its threads). "
                 "Peers: compiled function only, one-off JIT compile shown apart; "
                 "mpr-sweep: whole process, start to Parquet closed. "
                 "1-thread rows pinned to one core (taskset). "
                 "\"numba\": the lean kernel (final state, sums for the means); \"numba, same "
                 "statistics\": the same loop keeping what mpr-sweep's summary keeps (mean, "
                 "std, min, max of r and v, the divergence check). \"brainmass, float32\": "
                 "brainmass at its default precision (JAX x64 off), an information row: "
                 "mpr-sweep and every other row compute in f64."
                 + (" W1 euler: the same with forward Euler (w1-euler.yaml), mpr-sweep and "
                    "numba only (the issue's euler target is numba's Euler kernel; brainmass "
                    "is not run)." if "W1 euler" in results else ""))
    lines.append("")
    lines.append("| workload | tool | threads | time (s) | ns / run-step / core | vs mpr-sweep "
                 "| CPU time (s) | JIT compile (s) | CPU idle before |")
    lines.append("|---|---|--:|--:|--:|--:|--:|--:|--:|")
    for r in rows:
        comp = "—" if r["compile_s"] is None else f"{r['compile_s']:.2f}"
        idle = "—" if r["idle_before_pct"] is None else f"{r['idle_before_pct']:.0f} %"
        lines.append(f"| {r['workload']} | {r['tool']} | {r['threads']} | {r['best_s']:.3f} "
                     f"| {r['ns_per_run_step_core']:.2f} | {r['ratio_vs_mpr']:.2f} "
                     f"| {r['best_cpu_s']:.3f} | {comp} "
                     f"| {idle} |")
    euler_s = {(r["threads"], r["tool"]): r["best_s"] for r in rows
               if r["workload"] == "W1 euler"}
    if euler_s:
        ratios = [euler_s[k, "numba"] / euler_s[k, "mpr-sweep"] for k in threads_list]
        lines.append("")
        lines.append("Target of the performance issue, euler: mpr-sweep >= 2x faster than numba's "
                     "Euler kernel on W1. numba time / mpr-sweep time: "
                     + ", ".join(f"{x:.2f} at {k} thread{'s' if k > 1 else ''}"
                                 for k, x in zip(threads_list, ratios))
                     + f": {'met' if min(ratios) >= 2.0 else 'NOT met'}.")
        same = {k: euler_s[k, "numba, same statistics"] / euler_s[k, "mpr-sweep"]
                for k in threads_list}
        euler_cpu = {r["tool"]: r["best_cpu_s"] for r in rows
                     if r["workload"] == "W1 euler" and r["threads"] == 1}
        if 1 in same:
            same_cpu = euler_cpu["numba, same statistics"] / euler_cpu["mpr-sweep"]
            lines.append("")
            lines.append("Target of issue 14, item 6: W1 forward Euler end to end, one thread, "
                         "mpr-sweep >= 0.8x the speed of numba's loop computing the same "
                         "statistics. numba, same statistics time / mpr-sweep time: "
                         + ", ".join(f"{x:.2f} at {k} thread{'s' if k > 1 else ''}"
                                     for k, x in same.items())
                         + f": {'met' if same[1] >= 0.8 else 'NOT met'} (one thread, wall "
                         f"time); by CPU time (steadier on a shared machine) at one thread "
                         f"{same_cpu:.2f}: {'met' if same_cpu >= 0.8 else 'NOT met'}.")
    lines.append("")
    for note in spec_notes:
        lines.append(f"Check: {note}.")
    if ref_check:
        lines.append(f"Check: the installed brainmass reproduces the brainmass 0.1.1 reference "
                     f"cases {', '.join(ref_check['cases'])} (tests/data/cases.json, final "
                     f"state after 5,000 steps) to {ref_check['max_rel_diff_final']:.1e} relative.")
    lines.append("")
    lines.append(f"Agreement, deterministic W1, final r_hz and v of every run vs mpr-sweep "
                 f"({k0}-thread results): {agr['finite']} of {agr['runs']} runs finite in all "
                 f"three tools; compared: the {agr['settled']} runs that are settled in both "
                 f"peers (the last step changed r and v by <= {SETTLED_REL:g} relative); "
                 f"excluded: {agr['excluded']} runs still ringing or oscillating at 100 ms "
                 f"(weakly damped high-rate foci and limit cycles), where rounding differences "
                 f"are amplified. All three agree within 1e-6 on "
                 f"{agr['all_within_1e-6']} runs.")
    lines.append("")
    lines += agreement_table(agr)
    if eul:
        d = eul_div["diverged"]
        lines.append("")
        lines.append(f"Agreement, W1 euler, final r_hz and v of every run, numba vs mpr-sweep "
                     f"({k0}-thread results): diverged: {d['mpr-sweep']} runs in mpr-sweep "
                     f"(`diverged`), {d['numba']} in numba (state or mean not finite at "
                     f"100 ms), {d['numba-stats']} in numba with the statistics (its "
                     f"divergence check), "
                     f"{'the same' if eul_div['same_runs'] else 'NOT the same'} runs. "
                     f"Of the {eul['finite']} runs finished in both, compared: the "
                     f"{eul['settled']} settled in numba (as above); excluded: "
                     f"{eul['finite'] - eul['settled']} still oscillating at 100 ms (forward "
                     f"Euler at dt 0.01 ms turns weakly damped high-rate foci into spurious "
                     f"oscillations, docs/model.md \"Choosing dt\"; rounding differences grow "
                     f"there). "
                     f"Both agree within 1e-6 on {eul['all_within_1e-6']} of the "
                     f"{eul['finite']} finished runs.")
        lines.append("")
        lines += agreement_table(eul)
    for wname, sa in stats_agr.items():
        lines.append("")
        lines.append(f"Statistics, {wname}: \"numba, same statistics\" against mpr-sweep's "
                     f"summary columns ({k0}-thread results; relative differences). Diverged: "
                     f"{sa['diverged']} runs in mpr-sweep, "
                     f"{'the same' if sa['same_diverged'] else 'NOT the same'} runs in numba"
                     f"{', at the same step' if sa['same_diverged_at'] else ''}. "
                     f"Compared: the {sa['settled']} of the {sa['finished']} finished runs "
                     f"that are settled in numba; all statistics and the final state agree "
                     f"within 1e-6 on {sa['all_within_1e-6']} of the {sa['finished']}.")
        lines.append("")
        lines += stats_table(sa)
    lines.append("")
    lines.append(f"brainmass float32 against mpr-sweep (f64), W1 ({k0}-thread results), "
                 f"relative differences on the {f32['settled']} runs compared above (settled "
                 f"and finite; max / median), and the max on all {f32['finite']} runs finite "
                 f"in both; asserted only below {F32_SANITY:g} on the settled runs' final state:")
    lines.append("")
    lines.append("| quantity | max, settled | median, settled | max, all finite |")
    lines.append("|---|--:|--:|--:|")
    for key in ("r_final", "v_final", "r_mean", "v_mean"):
        d = f32[key]
        lines.append(f"| {key.replace('r_', 'r_hz_')} | {d['settled_max']:.2e} | "
                     f"{d['settled_median']:.2e} | {d['all_finite_max']:.2e} |")
    if cross:
        lines.append("")
        lines.append("Same tool, other thread count (max rel. diff of final r, v, mean r, all "
                     "finite runs): " + "; ".join(f"{k}: {v:.1e}" for k, v in cross.items()))
    if nstats:
        lines.append("")
        lines.append("W1 + noise, statistics over the 16,384 runs (not asserted: mpr-sweep and "
                     "numba add sigma sqrt(dt) xi to v after the step; brainmass adds N(0, 5) "
                     "to v_inp, which the exp-Euler step scales by dt phi1(2 v dt): the same "
                     "variance to within a few per cent; runs differ one by one):")
        lines.append("")
        lines.append("| threads | tool | mean of r_hz_mean | mean of v_mean | median final r (Hz) "
                     "| final r > 300 Hz |")
        lines.append("|--:|---|--:|--:|--:|--:|")
        for k, st in nstats.items():
            for name, d in st.items():
                lines.append(f"| {k} | {name} | {d['grand_mean_r_hz']:.2f} | "
                             f"{d['grand_mean_v']:.4f} | {d['median_r_final_hz']:.2f} | "
                             f"{100 * d['frac_r_final_above_300hz']:.1f} % |")
    report = "\n".join(lines)
    print()
    print(report, flush=True)
    (work / "report.md").write_text(report + "\n")
    (work / "results.json").write_text(json.dumps(
        {"machine": mach, "versions": vers, "load": [load_start, load_end], "rows": rows,
         "agreement": agr, "agreement_euler": eul, "divergence_euler": eul_div,
         "statistics": stats_agr, "brainmass_float32": f32,
         "cross_threads": cross, "noise": nstats, "reference_check": ref_check},
        indent=1, default=float) + "\n")
    print(f"\n(written to {work / 'report.md'} and {work / 'results.json'})")

    bad = [n for n, d in agr["peers"].items() if not d["ok"]]
    if eul and not eul["peers"]["numba"]["ok"]:
        bad.append("numba (W1 euler)")
    bad += [f"numba, same statistics ({w})" for w, sa in stats_agr.items() if not sa["ok"]]
    if not f32["ok"]:
        bad.append(f"brainmass float32 (sanity bound {F32_SANITY:g})")
    if bad:
        raise SystemExit(f"FAIL: {', '.join(bad)} disagree with mpr-sweep beyond tolerance")
    if ref_check and ref_check["max_rel_diff_final"] > 1e-12:
        raise SystemExit("FAIL: the installed brainmass does not reproduce the reference cases")
    if eul_div and not eul_div["same_runs"]:
        raise SystemExit("FAIL: W1 euler: other runs diverge in numba than in mpr-sweep")


if __name__ == "__main__":
    main()
