//! Estimates for `plan` and `sbatch`: run-steps, time per run-step, and how durations
//! are written.

use crate::integrate::Isa;
use crate::spec::{NoiseKind, Spec};

/// Steps integrated by `runs` runs of the sweep, summed (each dt value gets an equal share
/// of the runs, exact for a product grid).
pub fn run_steps(spec: &Spec, runs: u64) -> f64 {
    let dts = spec.dt_values();
    let mean_steps = dts
        .iter()
        .map(|&dt| spec.timing(dt).steps as f64)
        .sum::<f64>()
        / dts.len() as f64;
    runs as f64 * mean_steps
}

/// Estimated cost of one run-step on one core of the release build, in ns, for `plan`
/// and `sbatch`. Measured on the 2-core Zen 4 development machine (W1, exp_euler, 16,384
/// runs x 10,000 steps, one thread, whole process): 2.7 ns deterministic, 5.6 ns with
/// white noise on v, 8.3 ns with white noise on v and OU noise on r (portable path: 5.2,
/// 11.8, 19.0); the AVX-512 path, in a session where the AVX2 path took 2.5, 5.0 and 7.5:
/// 2.0, 4.4 and 5.4. A debug build is several times slower.
///
/// A network's run-step is a step of every node plus the coupling: per node about 1.5 times
/// a single node's step (lane groups of 8 runs, the mean and FC sums), and 0.3 ns per edge,
/// the cost of reading its source's delayed rate (8 bytes per run) from the history, which
/// memory bandwidth bounds once the history outgrows the caches. Measured, one thread,
/// avx512, exp_euler: 76 nodes and 1,717 edges with delays up to 30 ms, 10 ns per node-step
/// (3.3 without edges); 80 nodes and 6,320 edges (a human connectome at 20 mm/ms), 22 ns.
pub fn ns_per_run_step(spec: &Spec, isa: Isa) -> f64 {
    let (base, per_noise) = match isa {
        Isa::Avx512 => (2.0, 1.9),
        Isa::Avx2Fma => (2.7, 2.8),
        Isa::Portable => (5.2, 6.9),
    };
    let noisy = spec.noise.iter().filter(|n| **n != NoiseKind::None).count();
    let node = base + per_noise * noisy as f64;
    match spec.network_data() {
        None => node,
        Some(data) => {
            let c = &data.connectome;
            1.5 * node * c.nodes() as f64 + NS_PER_EDGE_STEP * c.edges() as f64
        }
    }
}

/// Cost of one edge in one step of one run of a network (see [`ns_per_run_step`]).
const NS_PER_EDGE_STEP: f64 = 0.3;

/// A duration for estimates: `0.3 s`, `42 s`, then `H:MM:SS`.
pub fn duration(seconds: f64) -> String {
    if seconds < 0.01 {
        "<0.01 s".into()
    } else if seconds < 0.1 {
        format!("{seconds:.2} s")
    } else if seconds < 10.0 {
        format!("{seconds:.1} s")
    } else if seconds < 60.0 {
        format!("{seconds:.0} s")
    } else {
        clock(seconds)
    }
}

/// `H:MM:SS`, or `D-HH:MM:SS` from a day on.
pub fn clock(seconds: f64) -> String {
    let s = seconds.clamp(0.0, 1e12).round() as u64;
    if s >= 86400 {
        format!(
            "{}-{:02}:{:02}:{:02}",
            s / 86400,
            s / 3600 % 24,
            s / 60 % 60,
            s % 60
        )
    } else {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    }
}
