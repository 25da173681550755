//! End to end: `run` on the W1 sweep (16,384 runs x 10,000 steps, exp_euler, f64) from a
//! parsed spec to closed Parquet parts, deterministic and with white noise on v, on 1 and
//! 2 threads. One item is one run-step: ns per run-step = 1e9 / (items/s), per core divide
//! by the threads. Process start-up is measured by `benches/peers/run.sh`.
//!
//!     cargo bench --bench end_to_end

use divan::counter::ItemsCount;
use mpr_sweep::integrate::Isa;
use mpr_sweep::plan::Shard;
use mpr_sweep::run::{Destination, RunOptions, run};
use mpr_sweep::spec;

const W1: &str = include_str!("w1.yaml");
const RUN_STEPS: u64 = 16_384 * 10_000;

fn w1(noise: bool) -> spec::Spec {
    let text = if noise {
        format!("{W1}noise: {{v: {{white: {{sigma: 0.5}}}}}}\n")
    } else {
        W1.to_string()
    };
    spec::parse(&text).expect("W1 spec")
}

#[divan::bench(args = [1, 2], consts = [false, true], sample_count = 3, sample_size = 1)]
fn w1_run<const NOISE: bool>(bencher: divan::Bencher, threads: usize) {
    let spec = w1(NOISE);
    let dir = tempfile::tempdir().expect("temp dir");
    let opts = RunOptions {
        out: Destination::Dir(dir.path().join("w1")),
        shard: Shard::WHOLE,
        threads,
        isa: Isa::detect(),
        resume: false,
        overwrite: true,
        quiet: true,
    };
    bencher
        .counter(ItemsCount::new(RUN_STEPS))
        .bench_local(|| run(&spec, &opts).expect("W1 runs"));
}

fn main() {
    divan::main();
}
