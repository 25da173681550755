//! Per-stage cost of a run outside and inside the time loop, per run, on one thread: what
//! `mpr-sweep run` does for each of 65,536 one-step runs (a 256 x 256 grid of eta and J,
//! drawn initial states, exp_euler, dt = 0.01 ms). One item is one run: ns per run =
//! 1e9 / (items/s). Every stage runs on the workers except `append`, the one serial stage
//! (the writer thread copies the encoded row groups into the part, in order).
//!
//!     cargo bench --bench stages
//!
//! | bench | stage |
//! |---|---|
//! | `plan_lookup` | run id -> point id, replicate and parameter values |
//! | `initial_draws` | the run's random stream and its initial r and v |
//! | `fixed_points` | the fixed points and the step's stability at them |
//! | `kernel_one_step` | one exp_euler step and the statistics' moments, a lane batch |
//! | `simulate_batch` | all of the above plus the statistics' finalisation, per batch |
//! | `row_building` | the runs' summary rows into an Arrow batch |
//! | `encode_plain` | Parquet encoding of a row group without compression |
//! | `encode_zstd` | the same with the parts' zstd level 3 (encoding + compression) |
//! | `append` | appending encoded row groups to a part (serial) |
//! | `step_size_check` | `run`'s step-size check, per distinct point (once per shard, up to 500,000 points, on the pool; overlaps the first block) |

use std::sync::OnceLock;

use arrow_array::RecordBatch;
use divan::counter::ItemsCount;
use mpr_sweep::integrate::math::Unfused;
use mpr_sweep::integrate::{self, Batch, Isa, LANES, Schedule, StopToken, Xoshiro};
use mpr_sweep::model::Method;
use mpr_sweep::output::{Metadata, PartFile, SummaryBatch, summary_schema};
use mpr_sweep::plan::{Plan, Shard};
use mpr_sweep::simulate::{RunResult, Simulator, node_params};
use mpr_sweep::spec::{self, Slot, Spec};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::compute_leaves;
use parquet::file::properties::WriterProperties;

const RUNS: u64 = 65_536;

const SPEC: &str = "\
model: {eta: {linspace: [-10, 0, 256]}, J: {linspace: [0, 30, 256]}}
init:
  r_hz: {uniform: [0, 50]}
  v: {normal: [-2, 0.5]}
simulation: {dt_ms: 0.01, duration_ms: 0.01}
";

fn spec() -> &'static Spec {
    static SPEC_: OnceLock<Spec> = OnceLock::new();
    SPEC_.get_or_init(|| spec::parse(SPEC).expect("bench spec"))
}

fn plan() -> Plan<'static> {
    Plan::new(spec()).expect("bench plan")
}

/// The 65,536 runs' results, simulated once.
fn results() -> &'static [RunResult] {
    static RESULTS: OnceLock<Vec<RunResult>> = OnceLock::new();
    RESULTS.get_or_init(|| {
        let plan = plan();
        Simulator::new(&plan, Isa::detect()).simulate(0..RUNS)
    })
}

fn metadata() -> Metadata {
    Metadata::new(spec(), Shard::WHOLE, 0..RUNS, Isa::detect())
}

/// The runs' summary rows as one batch: one row group.
fn summary_batch() -> &'static RecordBatch {
    static BATCH: OnceLock<RecordBatch> = OnceLock::new();
    BATCH.get_or_init(|| {
        let mut b = SummaryBatch::new(spec(), summary_schema(spec(), &metadata()), RUNS as usize);
        results().iter().for_each(|r| b.push(&r.row));
        b.finish()
    })
}

fn one_thread() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a pool")
}

#[divan::bench]
fn plan_lookup(bencher: divan::Bencher) {
    let plan = plan();
    bencher.counter(ItemsCount::new(RUNS)).bench_local(|| {
        (0..RUNS)
            .map(|id| plan.values(plan.address(divan::black_box(id)).point_id))
            .map(|v| v.get(Slot::Eta))
            .sum::<f64>()
    });
}

#[divan::bench]
fn initial_draws(bencher: divan::Bencher) {
    bencher.counter(ItemsCount::new(RUNS)).bench_local(|| {
        (0..RUNS)
            .map(|id| {
                let mut rng = Xoshiro::from_run(2026, divan::black_box(id));
                50.0 * rng.uniform() + (-2.0 + 0.5 * rng.normal_pair::<Unfused>().0)
            })
            .sum::<f64>()
    });
}

#[divan::bench]
fn fixed_points(bencher: divan::Bencher) {
    let plan = plan();
    let spec = spec();
    let nodes: Vec<_> = (0..RUNS)
        .map(|id| node_params(&plan.values(plan.address(id).point_id), spec.input))
        .collect();
    bencher.counter(ItemsCount::new(RUNS)).bench_local(|| {
        nodes
            .iter()
            .map(|n| {
                let (states, stability) = divan::black_box(n).analyse(Method::ExpEuler, Some(0.01));
                states.count as f64 + stability.map_or(0.0, |s| s.max_dt_ms)
            })
            .sum::<f64>()
    });
}

#[divan::bench]
fn kernel_one_step(bencher: divan::Bencher) {
    let plan = plan();
    let mut batch = Batch::default();
    for l in 0..LANES {
        let node = node_params(&plan.values(l as u64), spec().input);
        batch.coef.set_lane(l, &node, 0.0, 0.0, 0.01);
        batch.r0[l] = 0.01;
        batch.v0[l] = -2.0;
    }
    let schedule = Schedule {
        dt: 0.01,
        steps: 1,
        first_stat_step: 1,
        trace_stride: 0,
        white: [false, false],
    };
    let stop = StopToken::new();
    let mut trace = Vec::new();
    let batches = RUNS / LANES as u64;
    bencher.counter(ItemsCount::new(RUNS)).bench_local(|| {
        for _ in 0..batches {
            let result = integrate::integrate(
                Isa::detect(),
                Method::ExpEuler,
                &schedule,
                divan::black_box(&batch),
                &mut trace,
                &stop,
            )
            .expect("never stopped");
            divan::black_box(result);
        }
    });
}

#[divan::bench]
fn simulate_batch(bencher: divan::Bencher) {
    let plan = plan();
    let simulator = Simulator::new(&plan, Isa::detect());
    let batches = simulator.batches(0..RUNS);
    let stop = StopToken::new();
    let mut scratch = Vec::new();
    bencher.counter(ItemsCount::new(RUNS)).bench_local(|| {
        for b in &batches {
            let out = simulator
                .simulate_batch(b, &mut scratch, &stop)
                .expect("never stopped");
            divan::black_box(out);
        }
    });
}

#[divan::bench]
fn row_building(bencher: divan::Bencher) {
    let schema = summary_schema(spec(), &metadata());
    let results = results();
    bencher.counter(ItemsCount::new(RUNS)).bench_local(|| {
        let mut b = SummaryBatch::new(spec(), schema.clone(), results.len());
        results.iter().for_each(|r| b.push(&r.row));
        b.finish()
    });
}

/// Encodes the summary row group column by column, as the parts' encoder does, with the
/// parts' settings but no compression.
#[divan::bench]
fn encode_plain(bencher: divan::Bencher) {
    let batch = summary_batch();
    let props = WriterProperties::builder()
        .set_dictionary_enabled(false)
        .build();
    let (_, factory) = ArrowWriter::try_new(Vec::new(), batch.schema(), Some(props))
        .and_then(ArrowWriter::into_serialized_writer)
        .expect("writer");
    bencher.counter(ItemsCount::new(RUNS)).bench_local(|| {
        let writers = factory.create_column_writers(0).expect("writers");
        writers
            .into_iter()
            .enumerate()
            .map(|(i, mut w)| {
                for leaf in compute_leaves(batch.schema().field(i), batch.column(i)).unwrap() {
                    w.write(&leaf).unwrap();
                }
                w.close().unwrap()
            })
            .collect::<Vec<_>>()
    });
}

/// The parts' encoder (zstd level 3) on a one-thread pool.
#[divan::bench]
fn encode_zstd(bencher: divan::Bencher) {
    let batch = summary_batch();
    let dir = tempfile::tempdir().expect("temp dir");
    let part = PartFile::create(
        &dir.path().join("p.parquet"),
        batch.schema(),
        Vec::new(),
        RUNS as usize,
    )
    .expect("part");
    let pool = one_thread();
    bencher.counter(ItemsCount::new(RUNS)).bench_local(|| {
        pool.install(|| part.encoder().encode(std::slice::from_ref(batch)))
            .expect("encodes")
    });
}

/// Appending 16 encoded row groups (1,048,576 rows) to a part: the serial stage.
#[divan::bench(sample_count = 20, sample_size = 1)]
fn append(bencher: divan::Bencher) {
    const GROUPS: u64 = 16;
    let batch = summary_batch();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("p.parquet");
    let pool = rayon::ThreadPoolBuilder::new().build().expect("a pool");
    bencher
        .counter(ItemsCount::new(GROUPS * RUNS))
        .with_inputs(|| {
            let part =
                PartFile::create(&path, batch.schema(), Vec::new(), RUNS as usize).expect("part");
            let groups: Vec<_> = pool.install(|| {
                (0..GROUPS)
                    .map(|_| part.encoder().encode(std::slice::from_ref(batch)))
                    .collect::<Result<_, _>>()
                    .expect("encodes")
            });
            (part, groups)
        })
        .bench_local_values(|(mut part, groups)| {
            for g in groups {
                part.append(g).expect("appends");
            }
            // Divan drops it (uncommitted: the temporary file is removed) untimed.
            part
        });
}

#[divan::bench]
fn step_size_check(bencher: divan::Bencher) {
    let plan = plan();
    // One thread, like the other stages: `run` spreads the points over its pool.
    let pool = one_thread();
    bencher.counter(ItemsCount::new(RUNS)).bench_local(|| {
        pool.install(|| mpr_sweep::diagnose::DtReport::compute(divan::black_box(&plan)))
    });
}

fn main() {
    divan::main();
}
