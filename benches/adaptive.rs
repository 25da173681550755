//! The adaptive kernel on W1 (eta linspace(-10, 0, 64) x J linspace(0, 30, 64) x delta
//! [0.5, 1, 2, 4], r0 = 100 Hz, v0 = -2, 100 ms; 16,384 runs) at one tolerance, straight
//! through the library on one thread: no output, no spec checks, so the numbers are the
//! kernel's. Per instruction-set path and queue length (runs per kernel call; 32 is one
//! lane batch, without refill): the wall and CPU time of the thread, ns per accepted step
//! (CPU time over all accepted steps: idle lanes and rejected steps included), the lane
//! utilisation (trial steps over 32 x iterations) and the accepted and rejected steps per
//! run (median, max). On a shared machine the CPU time is the steadier number.
//!
//!     cargo bench --bench adaptive                         # dopri5, rtol 1e-8, every path
//!     cargo bench --bench adaptive -- --method dop853      # the 8(5,3) pair
//!     cargo bench --bench adaptive -- --rtol 1e-6 --grid 16 --queues 32,256

use std::time::Instant;

use mpr_sweep::integrate::{
    self, AdaptivePair, AdaptiveSchedule, Batch, Isa, LANES, MAX_TRIAL_STEPS, StopToken, Tolerances,
};
use mpr_sweep::plan::Plan;
use mpr_sweep::simulate::node_params;

/// W1's runs in run-id order, `LANES` to a batch, at tolerance `rtol` (atols at their
/// defaults, in kernel units).
fn w1(grid: usize, rtol: f64) -> (Vec<(Batch, Tolerances)>, usize) {
    let text = format!(
        "model:\n  eta: {{linspace: [-10, 0, {grid}]}}\n  J: {{linspace: [0, 30, {grid}]}}\n  \
         delta: [0.5, 1, 2, 4]\ninit: {{r_hz: 100, v: -2}}\n\
         simulation: {{method: dopri5, adaptive: {{rtol: {rtol}}}, duration_ms: 100}}\n"
    );
    let spec = mpr_sweep::spec::parse(&text).expect("the W1 spec");
    let plan = Plan::new(&spec).expect("the W1 plan");
    let runs = plan.runs as usize;
    let mut queue = Vec::new();
    for first in (0..runs).step_by(LANES) {
        let mut batch = Batch::default();
        let tol = Tolerances {
            rtol: [rtol; LANES],
            ..Tolerances::default()
        };
        for l in 0..LANES {
            let run = (first + l).min(runs - 1) as u64;
            let values = plan.values(plan.address(run).point_id);
            batch
                .coef
                .set_lane(l, &node_params(&values, spec.input), 0.0, 0.0, 0.01);
            batch.r0[l] = 0.1;
            batch.v0[l] = -2.0;
        }
        queue.push((batch, tol));
    }
    (queue, runs)
}

fn median_max(mut xs: Vec<u64>) -> (u64, u64) {
    xs.sort_unstable();
    (xs[xs.len() / 2], *xs.last().expect("runs"))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut grid, mut rtol, mut pair) = (64, 1e-8, AdaptivePair::Dopri5);
    let mut queues = vec![LANES, 8 * LANES, 32 * LANES];
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--grid" => grid = value().parse().expect("--grid N"),
            "--rtol" => rtol = value().parse().expect("--rtol X"),
            "--method" => {
                pair = match value().as_str() {
                    "dopri5" => AdaptivePair::Dopri5,
                    "dop853" => AdaptivePair::Dop853,
                    other => panic!("--method dopri5 or dop853, not {other}"),
                }
            }
            "--queues" => {
                queues = value()
                    .split(',')
                    .map(|q| q.parse().expect("--queues N,M: multiples of 32"))
                    .collect()
            }
            // cargo bench passes --bench to harness-less benchmarks.
            "--bench" => {}
            other => {
                panic!("unknown option {other}; expected --grid, --rtol, --method, --queues")
            }
        }
    }
    let (batches, runs) = w1(grid, rtol);
    let schedule = AdaptiveSchedule {
        pair,
        duration_ms: 100.0,
        transient_ms: 0.0,
        dt_init_ms: 0.01,
        dt_max_ms: 100.0,
        trace_every_ms: 0.0,
        max_trial_steps: MAX_TRIAL_STEPS,
    };
    println!("W1 {grid} x {grid} x 4 = {runs} runs, {pair:?}, rtol {rtol:e}, one thread");
    println!(
        "| path | queue | wall (s) | CPU (s) | ns per accepted step | lane utilisation | accepted (median, max) | rejected (median, max) |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|--:|");
    let stop = StopToken::new();
    for isa in Isa::available() {
        for &queue in &queues {
            assert!(queue % LANES == 0, "queues are whole batches");
            let per_call = queue / LANES;
            let mut trace = Vec::new();
            let (mut accepted, mut rejected) = (Vec::new(), Vec::new());
            let (mut trials, mut slots) = (0u64, 0u64);
            let (start, cpu_start) = (Instant::now(), thread_cpu_seconds());
            for (k, chunk) in batches.chunks(per_call).enumerate() {
                let n = (runs - k * queue).min(queue);
                let res =
                    integrate::integrate_adaptive(isa, &schedule, chunk, n, &mut trace, &stop)
                        .expect("nobody asks to stop");
                slots += res.lane_steps;
                for r in &res.runs {
                    accepted.push(r.steps);
                    rejected.push(r.rejected);
                    trials += r.steps + r.rejected;
                }
            }
            let seconds = start.elapsed().as_secs_f64();
            let cpu = thread_cpu_seconds() - cpu_start;
            let total: u64 = accepted.iter().sum();
            let (am, ax) = median_max(accepted);
            let (rm, rx) = median_max(rejected);
            println!(
                "| {} | {queue} | {seconds:.2} | {cpu:.2} | {:.1} | {:.0} % | {am}, {ax} | {rm}, {rx} |",
                isa.name(),
                cpu * 1e9 / total as f64,
                100.0 * trials as f64 / slots as f64
            );
        }
    }
}

/// CPU time of this thread, s.
fn thread_cpu_seconds() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `t`.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    t.tv_sec as f64 + 1e-9 * t.tv_nsec as f64
}
