//! Results in memory (`Destination::Memory`, what the Python package returns) against the
//! Parquet parts of the same run: the tables hold the batches the parts encode, bit for
//! bit, with the parts' footer metadata in their schema; and a caller's stop token ends a
//! run with `Error::Interrupted` and no part.

mod common;

use std::sync::Arc;

use mpr_sweep::Error;
use mpr_sweep::integrate::{Isa, StopToken};
use mpr_sweep::output::{PartFile, Table as MemoryTable};
use mpr_sweep::plan::Shard;
use mpr_sweep::run::{Destination, RunOptions, SIGINT, run, run_until};
use mpr_sweep::spec;

use common::table::{Table, assert_tables_bitwise_equal};

/// White noise, drawn initial states, replicates and traces.
const SPEC: &str = "\
model:
  eta: {linspace: [-6, -3.5, 6]}
  J: [5, 11, 17]
init:
  r_hz: {uniform: [0, 50]}
  v: {normal: [-2, 0.5]}
noise:
  v: {white: {sigma: 0.5}}
simulation: {dt_ms: 0.01, duration_ms: 2, transient_ms: 0.5}
sweep: {seed: 2026, replicates: 3}
output:
  traces: {every_ms: 0.1, runs: {every: 5}}
";

fn options(out: Destination, shard: Shard) -> RunOptions {
    RunOptions {
        out,
        shard,
        threads: 2,
        isa: Isa::detect(),
        resume: false,
        overwrite: false,
        quiet: true,
    }
}

/// The in-memory table written as a part with the library's writer settings, then read
/// back like any part.
fn as_part(table: &MemoryTable, dir: &std::path::Path, name: &str) -> Table {
    let path = dir.join(name);
    let metadata = table
        .schema
        .metadata()
        .iter()
        .map(|(k, v)| parquet::file::metadata::KeyValue::new(k.clone(), v.clone()))
        .collect();
    let mut part = PartFile::create(&path, table.schema.clone(), metadata, 1 << 20).unwrap();
    for batch in &table.batches {
        part.write(batch).unwrap();
    }
    part.commit().unwrap();
    Table::read(&path)
}

#[test]
fn memory_tables_are_the_batches_of_the_parts() {
    let spec = spec::parse(SPEC).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    for shard in [Shard::WHOLE, Shard { index: 1, count: 3 }] {
        let dir = tmp.path().join(format!("out-{}", shard.index));
        let on_disk = run(&spec, &options(Destination::Dir(dir.clone()), shard)).unwrap();
        assert!(on_disk.tables.is_none());
        let in_memory = run(&spec, &options(Destination::Memory, shard)).unwrap();
        assert_eq!(in_memory.runs, on_disk.runs);
        let tables = in_memory.tables.expect("tables in memory");
        let name = format!("part-{:05}-of-{:05}.parquet", shard.index, shard.count);
        let runs = (on_disk.runs.end - on_disk.runs.start) as usize;
        assert_eq!(tables.summary.num_rows(), runs);
        for (kind, table) in [
            ("summary", &tables.summary),
            ("traces", tables.traces.as_ref().unwrap()),
        ] {
            let part = Table::read(&dir.join(kind).join(&name));
            let memory = as_part(
                table,
                tmp.path(),
                &format!("{kind}-{}.parquet", shard.index),
            );
            assert_tables_bitwise_equal(&memory, &part, kind);
            // The schema carries the footer's pairs (the spec text, its hash, shard, runs).
            assert_eq!(memory.file_meta, part.file_meta, "{kind} metadata");
            assert_eq!(
                table.schema.metadata().get("mpr_sweep.shard"),
                Some(&shard.to_string())
            );
        }
    }
}

#[test]
fn a_requested_stop_token_ends_the_run_with_no_part() {
    // Long enough (1e9 run-steps) that the request comes while the kernels run.
    let spec = spec::parse(
        "model: {eta: {linspace: [-10, 0, 64]}, J: 15.0}\n\
         simulation: {dt_ms: 0.001, duration_ms: 15000}\n",
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("out");
    let stop = Arc::new(StopToken::new());
    let requester = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            stop.request();
            std::time::Instant::now()
        })
    };
    let opts = options(Destination::Dir(dir.clone()), Shard::WHOLE);
    let result = run_until(&spec, &opts, &[], &stop);
    let stopped = std::time::Instant::now();
    let requested = requester.join().unwrap();
    match result {
        Err(Error::Interrupted { signal, .. }) => assert_eq!(signal, SIGINT),
        other => panic!("expected Interrupted, got {other:?}"),
    }
    // Stopping takes at most a poll interval of the kernels plus unwinding the block.
    let latency = stopped.duration_since(requested);
    assert!(latency.as_secs_f64() < 1.0, "stopped after {latency:?}");
    let left: Vec<_> = std::fs::read_dir(dir.join("summary")).unwrap().collect();
    assert!(left.is_empty(), "left in summary/: {left:?}");
}
