//! The step-size diagnostic (`dt_stable`, `dt_stable_max_ms`, the sweep check of `plan` and
//! `run`) against direct simulation with the kernel:
//! - the map's Jacobian at a fixed point against finite differences of one kernel step;
//! - a run started next to a stable state settles on it iff the diagnostic says the step is
//!   stable there;
//! - `dt_stable_max_ms` against a bisection over dt by simulation, for every method;
//! - the warning text, `plan --json`, `run`'s stderr, the columns and the metadata key.

use std::fs;

use assert_cmd::Command;
use mpr_sweep::integrate::{Isa, Method};
use mpr_sweep::model::NodeParams;
use mpr_sweep::model::stability::{self, Mat2, map_jacobian, max_stable_dt, spectral_radius};
use mpr_sweep::output::Outcome;
use mpr_sweep::plan::Plan;
use mpr_sweep::simulate::{RunResult, Simulator};
use mpr_sweep::spec;
use parquet::file::reader::{FileReader, SerializedFileReader};

fn simulate(text: &str) -> Vec<RunResult> {
    let spec = spec::parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let plan = Plan::new(&spec).unwrap();
    Simulator::new(&plan, Isa::detect()).simulate(0..plan.runs)
}

/// `(r_hz_final, v_final, r_hz max - min over the statistics window)`, or None if diverged.
fn finals(r: &RunResult) -> Option<(f64, f64, f64)> {
    match r.row.outcome {
        Outcome::Finished {
            r_hz,
            r_hz_final,
            v_final,
            ..
        } => Some((r_hz_final, v_final, r_hz.max - r_hz.min)),
        Outcome::Diverged { .. } | Outcome::Stopped { .. } => None,
    }
}

fn list(xs: &[f64]) -> String {
    let items: Vec<String> = xs.iter().map(|x| format!("{x:e}")).collect();
    format!("[{}]", items.join(", "))
}

/// Stable fixed points `(r_hz, v, J_f)` of a node at tau = 1 ms without inputs.
fn stable_points(eta: f64, j: f64, delta: f64) -> Vec<(f64, f64, Mat2)> {
    let n = NodeParams::from_user(1.0, eta, j, delta, 0.0, 0.0);
    n.fixed_points()
        .into_iter()
        .filter(|f| f.stable)
        .map(|f| (f.r_hz, f.v, n.jacobian(f.r_hz / 1000.0, f.v)))
        .collect()
}

/// Runs started at `starts` (eta, J, r_hz, v) at tau = 1, delta = 1 with one step size,
/// all zipped into one axis.
fn runs_from(starts: &[(f64, f64, f64, f64)], method: Method, dt: f64, steps: u64) -> String {
    let col = |i: usize| -> Vec<f64> { starts.iter().map(|s| [s.0, s.1, s.2, s.3][i]).collect() };
    let duration = steps as f64 * dt;
    // Statistics over the last tenth, a whole number of steps.
    let transient = (steps - steps / 10) as f64 * dt;
    let transient = if transient < duration { transient } else { 0.0 };
    format!(
        "model: {{eta: {}, J: {}, delta: 1.0}}\n\
         init: {{r_hz: {}, v: {}}}\n\
         simulation: {{method: {}, dt_ms: {dt:e}, duration_ms: {duration:e}, transient_ms: {:e}}}\n\
         sweep: {{zip: [[eta, J, init_r_hz, init_v]]}}\n",
        list(&col(0)),
        list(&col(1)),
        list(&col(2)),
        list(&col(3)),
        method.name(),
        transient,
    )
}

/// The kernel's one-step map, differentiated numerically at a fixed point, has the
/// Jacobian the analysis uses (R(dt J_f), or I + dt phi1(2 v dt/tau) J_f), for every method.
#[test]
fn map_jacobian_matches_finite_differences_of_one_kernel_step() {
    for (eta, j) in [(0.0, 15.0), (-5.0, 15.0), (-2.0, 25.0)] {
        for (r_hz, v, jf) in stable_points(eta, j, 1.0) {
            for method in Method::FIXED_STEP {
                let dt = 0.02;
                // Central differences: +-h on r (Hz) and on v.
                let (hr, hv) = (1e-4 * r_hz, 1e-6);
                let starts = [
                    (eta, j, r_hz + hr, v),
                    (eta, j, r_hz - hr, v),
                    (eta, j, r_hz, v + hv),
                    (eta, j, r_hz, v - hv),
                ];
                let out: Vec<(f64, f64)> = simulate(&runs_from(&starts, method, dt, 1))
                    .iter()
                    .map(|r| {
                        let (rf, vf, _) = finals(r).unwrap();
                        (rf, vf)
                    })
                    .collect();
                // Columns in kernel units: r in kHz.
                let fd: Mat2 = [
                    [
                        (out[0].0 - out[1].0) / (2.0 * hr),
                        (out[2].0 - out[3].0) / (2.0 * hv) / 1000.0,
                    ],
                    [
                        (out[0].1 - out[1].1) / (2.0 * hr) * 1000.0,
                        (out[2].1 - out[3].1) / (2.0 * hv),
                    ],
                ];
                let want = map_jacobian(method, jf, dt);
                for row in 0..2 {
                    for col in 0..2 {
                        let scale = want[row][col].abs().max(1e-3);
                        assert!(
                            (fd[row][col] - want[row][col]).abs() <= 1e-5 * scale,
                            "{method:?} at ({eta}, {j}) {r_hz} Hz: [{row}][{col}] finite \
                             differences {} vs analysis {}",
                            fd[row][col],
                            want[row][col]
                        );
                    }
                }
            }
        }
    }
}

/// A run started next to a stable state (r off by 1e-4 relative) settles on it (within 1e-6
/// after 100,000 steps) iff the step is stable there, on a 9 x 9 eta x J grid for every
/// method, at a step near the median of the grid's bounds so that both outcomes occur.
/// States whose spectral radius is within 2e-4 of 1 are left out: they decay or grow by
/// less than e^20 in 100,000 steps.
#[test]
fn flagged_states_do_not_settle_and_unflagged_ones_do() {
    let steps = 100_000;
    let mut grid = Vec::new();
    for i in 0..9 {
        for k in 0..9 {
            let (eta, j) = (-4.0 + 0.5 * i as f64, 10.0 + 2.5 * k as f64);
            for (r_hz, v, jf) in stable_points(eta, j, 1.0) {
                grid.push((eta, j, r_hz, v, jf));
            }
        }
    }
    for method in Method::FIXED_STEP {
        let mut bounds: Vec<f64> = grid
            .iter()
            .map(|g| max_stable_dt(method, g.4))
            .filter(|b| b.is_finite())
            .collect();
        bounds.sort_by(f64::total_cmp);
        let dt = bounds[bounds.len() / 2];
        let kept: Vec<_> = grid
            .iter()
            .filter(|g| (spectral_radius(map_jacobian(method, g.4, dt)) - 1.0).abs() > 2e-4)
            .collect();
        println!("{method:?}: {} of {} states kept", kept.len(), grid.len());
        assert!(
            kept.len() * 2 >= grid.len(),
            "{method:?}: too few states kept"
        );
        let starts: Vec<_> = kept
            .iter()
            .map(|g| (g.0, g.1, g.2 * (1.0 + 1e-4), g.3))
            .collect();
        let results = simulate(&runs_from(&starts, method, dt, steps));
        let (mut stable, mut unstable) = (0, 0);
        for (g, res) in kept.iter().zip(&results) {
            let flagged_stable = stability::stable_at(&[g.4], method, dt);
            let settled = finals(res).is_some_and(|(r, v, _)| {
                (r - g.2).abs() <= 1e-6 * g.2 && (v - g.3).abs() <= 1e-6 * g.3.abs()
            });
            assert_eq!(
                settled,
                flagged_stable,
                "{method:?} dt {dt}: eta {} J {} state {} Hz: settled {settled}, flagged \
                 stable {flagged_stable} (final {:?})",
                g.0,
                g.1,
                g.2,
                finals(res)
            );
            // The run's column: stable iff stable at every stable state of its point.
            let all = stable_points(g.0, g.1, 1.0);
            let col = res.row.dt_stability.unwrap();
            assert_eq!(
                col.stable,
                all.iter().all(|s| stability::stable_at(&[s.2], method, dt))
            );
            if flagged_stable {
                stable += 1;
            } else {
                unstable += 1;
            }
        }
        println!("{method:?} at dt {dt}: {stable} states settle, {unstable} do not");
        assert!(stable > 0 && unstable > 0, "{method:?}: one outcome only");
    }
}

/// Whether a run started at `(r_hz (1 + 1e-7), v)` is back within its start's distance
/// after `steps` steps of `dt` (the ringing over the last 10 % below 1e-7 r_hz, and still
/// there: an unstable step may also carry it off to another stable state).
fn settles(eta: f64, j: f64, (r_hz, v): (f64, f64), method: Method, dt: f64, steps: u64) -> bool {
    let text = runs_from(&[(eta, j, r_hz * (1.0 + 1e-7), v)], method, dt, steps);
    let res = simulate(&text);
    finals(&res[0])
        .is_some_and(|(r, _, swing)| swing < 1e-7 * r_hz && (r - r_hz).abs() < 1e-6 * r_hz)
}

/// `dt_stable_max_ms` against the step found by bisecting over dt with the kernel, for
/// every method at the high states of two points and the low state of a third: the two
/// agree within 1 %.
///
/// Steps per simulation: near the bound the spectral radius is 1 + c (dt/dt_max - 1), with
/// c measured from the analysis; 10/(c 0.01) steps make a step 1 % off the bound grow or
/// shrink the start's offset by e^10, far beyond the eigenvectors' conditioning.
#[test]
fn dt_stable_max_ms_matches_a_bisection_by_simulation() {
    let cases = [(0.0, 15.0, true), (-2.0, 25.0, true), (-5.0, 15.0, false)];
    let mut bisected = Vec::new();
    for (eta, j, high) in cases {
        let points = stable_points(eta, j, 1.0);
        let (r_hz, v, jf) = if high {
            points[points.len() - 1]
        } else {
            points[0]
        };
        for method in Method::FIXED_STEP {
            let want = max_stable_dt(method, jf);
            if !want.is_finite() {
                // exp_euler at the low node: real eigenvalues never bound it.
                assert_eq!(method, Method::ExpEuler);
                assert!(settles(eta, j, (r_hz, v), method, 0.5, 2000));
                continue;
            }
            let rho = |x: f64| spectral_radius(map_jacobian(method, jf, x * want));
            let c = (rho(1.01) - rho(0.99)) / 0.02;
            let steps = (10.0 / (c * 0.01)).ceil() as u64;
            if steps > 1_000_000 {
                // Too slow for a test profile (exp_euler and euler at J = 25, where the
                // focus is damped over ~10^6 steps); the other points cover them.
                continue;
            }
            bisected.push(method);
            let (mut lo, mut hi) = (0.9 * want, 1.1 * want);
            assert!(settles(eta, j, (r_hz, v), method, lo, steps));
            assert!(!settles(eta, j, (r_hz, v), method, hi, steps));
            for _ in 0..6 {
                let mid = 0.5 * (lo + hi);
                if settles(eta, j, (r_hz, v), method, mid, steps) {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            let found = 0.5 * (lo + hi);
            println!(
                "{method:?} at ({eta}, {j}) {r_hz:.1} Hz: dt_stable_max_ms {want:.6}, \
                 bisection {found:.6} ({steps} steps)"
            );
            assert!(
                (found - want).abs() <= 0.01 * want,
                "{method:?} at ({eta}, {j}): bisection {found} vs {want}"
            );
        }
    }
    for method in Method::FIXED_STEP {
        assert!(bisected.contains(&method), "{method:?} never bisected");
    }
}

fn mpr_sweep() -> Command {
    let mut cmd = Command::cargo_bin("mpr-sweep").expect("the mpr-sweep binary is built");
    for var in [
        "SLURM_ARRAY_TASK_ID",
        "SLURM_CPUS_PER_TASK",
        "SLURM_CPUS_ON_NODE",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// The quickstart's old setting (exp_euler at dt 0.01 ms): 21 x 21 eta x J.
const RINGING: &str = "\
model:
  eta: {linspace: [-10, 0, 21]}
  J: {linspace: [0, 30, 21]}
  delta: 1.0
init: {r_hz: [100, 1000]}
simulation: {dt_ms: 0.01, duration_ms: 0.05}
";

/// What the warning must say, computed point by point here: the count (each point twice,
/// once per initial rate), the ranges of eta and J, the smallest bound, the stable methods.
#[test]
fn plan_and_run_warn_with_counts_ranges_bound_and_methods() {
    let mut unstable = 0;
    let (mut eta_range, mut j_range) = ((f64::MAX, f64::MIN), (f64::MAX, f64::MIN));
    let mut min_bound = f64::INFINITY;
    let mut others: Vec<Method> = Method::FIXED_STEP
        .into_iter()
        .filter(|&m| m != Method::ExpEuler)
        .collect();
    for i in 0..21 {
        for k in 0..21 {
            let (eta, j) = (-10.0 + 0.5 * i as f64, 1.5 * k as f64);
            let node = NodeParams::from_user(1.0, eta, j, 1.0, 0.0, 0.0);
            let s = node.step_stability(Method::ExpEuler, 0.01);
            min_bound = min_bound.min(s.max_dt_ms);
            others.retain(|&m| node.step_stability(m, 0.01).stable);
            if !s.stable {
                unstable += 2;
                eta_range = (eta_range.0.min(eta), eta_range.1.max(eta));
                j_range = (j_range.0.min(j), j_range.1.max(j));
            }
        }
    }
    assert!(unstable > 100, "{unstable}");
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("ringing.yaml");
    fs::write(&spec, RINGING).unwrap();

    let out = mpr_sweep().arg("plan").arg(&spec).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    // Four significant digits, rounded down.
    let digits = (3 - min_bound.log10().floor() as i32) as usize;
    let scale = 10f64.powi(digits as i32);
    let bound = format!("{:.*}", digits, (min_bound * scale).floor() / scale);
    let others_text: Vec<&str> = others.iter().map(|m| m.name()).collect();
    for want in [
        format!("warning: the step is too large for exp_euler at {unstable} of 882 points"),
        format!(
            "unstable points: eta {} .. {}, J {} .. {}",
            eta_range.0, eta_range.1, j_range.0, j_range.1
        ),
        format!("exp_euler is stable at every point for dt_ms <= {bound}"),
        format!(
            "stable at every point at this step: {}",
            others_text.join(", ")
        ),
    ] {
        assert!(text.contains(&want), "missing {want:?} in\n{text}");
    }

    let out = mpr_sweep()
        .args(["plan", "--json"])
        .arg(&spec)
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = &json["dt_stability"];
    assert_eq!(d["unstable_points"], unstable);
    assert_eq!(d["points"], 882);
    assert_eq!(
        d["distinct_points"], 441,
        "init_r_hz does not change the check"
    );
    assert_eq!(d["unstable_ranges"]["eta"][0], eta_range.0);
    assert_eq!(d["unstable_ranges"]["J"][1], j_range.1);
    assert!((d["dt_stable_max_ms_min"].as_f64().unwrap() - min_bound).abs() < 1e-15);
    assert_eq!(d["stable_methods"], serde_json::json!(others_text));

    // run: the warning on stderr also with --quiet, the count in the metadata, the column.
    let results = dir.path().join("out");
    let out = mpr_sweep()
        .args(["run", "--quiet", "--threads", "1"])
        .arg(&spec)
        .arg("--out")
        .arg(&results)
        .output()
        .unwrap();
    assert!(out.status.success(), "a warning, not an error");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(&format!(
            "mpr-sweep: warning: the step is too large for exp_euler at {unstable} of 882 points"
        )),
        "{stderr}"
    );
    let part = results.join("summary/part-00000-of-00001.parquet");
    let reader = SerializedFileReader::new(fs::File::open(&part).unwrap()).unwrap();
    let kv = reader
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .cloned()
        .unwrap_or_default();
    let count = kv
        .iter()
        .find(|k| k.key == "mpr_sweep.dt_unstable_points")
        .and_then(|k| k.value.clone());
    assert_eq!(count, Some(unstable.to_string()));
    // The column: as many false as the count.
    let mut falses = 0;
    for row in reader.get_row_iter(None).unwrap() {
        let row = row.unwrap();
        for (name, field) in row.get_column_iter() {
            if name == "dt_stable" && *field == parquet::record::Field::Bool(false) {
                falses += 1;
            }
        }
    }
    assert_eq!(falses, unstable);
}

/// Nothing to warn about: plan says the step is stable, run prints nothing and records 0.
#[test]
fn a_stable_sweep_gets_a_one_line_check_and_a_zero_count() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("stable.yaml");
    fs::write(
        &spec,
        RINGING.replace("dt_ms: 0.01", "dt_ms: 0.01, method: rk4"),
    )
    .unwrap();
    let out = mpr_sweep().arg("plan").arg(&spec).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("dt check: rk4 is stable at every stable state of the 882 points"),
        "{text}"
    );
    assert!(!text.contains("warning"), "{text}");
    let results = dir.path().join("out");
    let out = mpr_sweep()
        .args(["run", "--quiet", "--threads", "1"])
        .arg(&spec)
        .arg("--out")
        .arg(&results)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stderr).unwrap(), "");
    let part = results.join("summary/part-00000-of-00001.parquet");
    let reader = SerializedFileReader::new(fs::File::open(&part).unwrap()).unwrap();
    let kv = reader
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .cloned()
        .unwrap_or_default();
    assert!(
        kv.iter()
            .any(|k| k.key == "mpr_sweep.dt_unstable_points" && k.value.as_deref() == Some("0"))
    );
}

/// A sweep too large to check point by point is checked on an evenly spaced sub-grid of
/// its axes, says so, and plans fast; the sub-grid spans every axis, so the unstable points'
/// ranges and the smallest bound match those of an exact check of a coarser grid.
#[test]
fn huge_sweeps_are_checked_on_a_sub_grid_and_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let grid = |n: usize| {
        format!(
            "model:\n  eta: {{linspace: [-10, 0, {n}]}}\n  J: {{linspace: [0, 30, {n}]}}\n  \
             delta: [0.5, 1, 2]\ninit: {{r_hz: {{linspace: [0, 1000, 1000]}}}}\n\
             simulation: {{dt_ms: 0.01}}\n"
        )
    };
    let plan_json = |name: &str, text: String| -> serde_json::Value {
        let spec = dir.path().join(name);
        fs::write(&spec, text).unwrap();
        let out = mpr_sweep()
            .args(["plan", "--json"])
            .arg(&spec)
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let huge = plan_json("huge.yaml", grid(2000));
    let d = &huge["dt_stability"];
    assert_eq!(d["sampled"], true);
    assert_eq!(d["distinct_points"], 12_000_000u64);
    let checked = d["checked_points"].as_u64().unwrap();
    assert!((400_000..=500_000).contains(&checked), "{checked}");
    // An exact check of a 201 x 201 grid (eta and J in steps of 0.05 and 0.15).
    let exact = plan_json("exact.yaml", grid(201));
    let e = &exact["dt_stability"];
    assert_eq!(e["sampled"], false);
    for slot in ["eta", "J", "delta"] {
        let (a, b) = (&d["unstable_ranges"][slot], &e["unstable_ranges"][slot]);
        for k in 0..2 {
            let (x, y) = (a[k].as_f64().unwrap(), b[k].as_f64().unwrap());
            assert!(
                (x - y).abs() <= 0.16,
                "{slot}: sub-grid {a} vs exact coarse grid {b}"
            );
        }
    }
    let (x, y) = (
        d["dt_stable_max_ms_min"].as_f64().unwrap(),
        e["dt_stable_max_ms_min"].as_f64().unwrap(),
    );
    assert!((x - y).abs() <= 0.02 * y, "smallest bound {x} vs {y}");

    let spec = dir.path().join("huge.yaml");
    let start = std::time::Instant::now();
    let out = mpr_sweep().arg("plan").arg(&spec).output().unwrap();
    let elapsed = start.elapsed();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&format!("of {checked} checked points (dt_stable = false)"))
            && text.contains(&format!(
                "(checked on {checked} of the 12000000 points that differ in tau, eta, J, delta, \
             inputs or dt: an evenly spaced sub-grid of each axis, ends included)"
            )),
        "{text}"
    );
    println!("plan of 1.2e10 points: {elapsed:?}");
}
