//! Orchestration of `mpr-sweep run`: result directory, shard → blocks → pieces of lane
//! batches, simulated and built into rows by the rayon workers → row groups encoded and
//! compressed by the workers → appended in order by one thread (to Parquet parts, or to
//! Arrow tables in memory), with progress.

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use rayon::prelude::*;

mod load;
mod plan_report;
mod progress;
mod signals;

pub use load::load_spec;
pub use plan_report::{AxisReport, PlanReport};
pub use progress::{Progress, bar, status_line};
use signals::STOP;
pub use signals::{SIGINT, interrupted, stop_on_signals};

use crate::diagnose::DtReport;
use crate::error::Error;
use crate::integrate::{Isa, LANES, StopToken, Stopped};
use crate::output::{
    DirError, EncodedGroup, FcBatch, Layout, Metadata, NETWORK_GROUP_ROWS, NodesBatch, OutputError,
    SUMMARY_GROUP_ROWS, SummaryBatch, TRACE_GROUP_ROWS, Table, TableEncoder, TableKind,
    TableWriter, TraceBatch, fc_schema, io_err, nodes_schema, spec_sha256, summary_schema,
    trace_schema, write_atomic,
};
use crate::plan::{Plan, Shard};
use crate::simulate::{RunResult, Simulator};
use crate::spec::{Slot, SourceFile, Spec};

/// Run-steps computed between writes: bounds the traces in memory and keeps every thread
/// busy.
const BLOCK_RUN_STEPS: u64 = 1 << 26;
/// Runs per block at most: bounds the rows in flight (a few blocks' worth) whatever
/// the runs' length.
const MAX_BLOCK_RUNS: u64 = 65_536;
/// Runs per piece: the unit of row building, and of the batches row groups are made of.
const PIECE_RUNS: u64 = 1024;

/// Where a run's results go.
#[derive(Debug, Clone, PartialEq)]
pub enum Destination {
    /// Parquet parts in a result directory (`--out DIR`).
    Dir(PathBuf),
    /// Arrow tables in memory, returned in [`RunReport::tables`]: the batches a part would
    /// hold, with its footer's key-value metadata in their schema. `resume` and
    /// `overwrite` do not apply.
    Memory,
}

/// Options of `mpr-sweep run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Where the results go (`--out DIR`, or memory).
    pub out: Destination,
    /// The shard this process runs (`--shard`; [`Shard::WHOLE`] for the whole sweep).
    pub shard: Shard,
    /// Worker threads (0: one per logical core).
    pub threads: usize,
    /// The kernel's instruction-set path.
    pub isa: Isa,
    /// `--resume`: skip a shard whose parts are complete.
    pub resume: bool,
    /// `--overwrite`: replace results already in `out`.
    pub overwrite: bool,
    /// `--quiet`: no progress lines on stderr.
    pub quiet: bool,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq)]
pub struct RunReport {
    /// The run ids of the shard.
    pub runs: std::ops::Range<u64>,
    /// Steps integrated, summed over the runs.
    pub run_steps: f64,
    /// Wall-clock time of the shard.
    pub elapsed: Duration,
    /// The part existed and `--resume` skipped it.
    pub skipped: bool,
    /// Runs that diverged.
    pub diverged: u64,
    /// The results, for [`Destination::Memory`].
    pub tables: Option<Tables>,
}

/// The results of a run held in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Tables {
    /// One row per run, in run-id order.
    pub summary: Table,
    /// The traces in long format, when the spec asks for them.
    pub traces: Option<Table>,
    /// A network's per-node rows.
    pub nodes: Option<Table>,
    /// A network's simulated FC, when the spec asks for it (`output.fc`).
    pub fc: Option<Table>,
}

impl RunReport {
    /// Throughput: run-steps per second of wall-clock time.
    pub fn run_steps_per_second(&self) -> f64 {
        self.run_steps / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Runs one shard of a sweep into `opts.out`; stops on a signal after [`stop_on_signals`].
pub fn run(spec: &Spec, opts: &RunOptions) -> Result<RunReport, Error> {
    run_with_metadata(spec, opts, &[])
}

/// [`run`], adding `mpr_sweep.<key>` pairs to the parts' metadata (the command line adds
/// `slurm_job` inside a Slurm job).
///
/// After [`stop_on_signals`], SIGINT or SIGTERM stops the run wherever it is (inside a
/// run, within [`crate::integrate::POLL_STEPS`] steps; between rows while writing): it
/// returns [`Error::Interrupted`] and the part's temporary files are removed.
pub fn run_with_metadata(
    spec: &Spec,
    opts: &RunOptions,
    extra_metadata: &[(&str, String)],
) -> Result<RunReport, Error> {
    run_until(spec, opts, extra_metadata, &STOP)
}

/// [`run_with_metadata`], stopped by a request on `stop` instead of the signal handlers'
/// token (the Python package requests its own on Ctrl-C): the run ends as after a signal,
/// with [`Error::Interrupted`] naming the signal recorded by [`stop_on_signals`]'s handler,
/// else SIGINT.
pub fn run_until(
    spec: &Spec,
    opts: &RunOptions,
    extra_metadata: &[(&str, String)],
    stop: &StopToken,
) -> Result<RunReport, Error> {
    let plan = Plan::new(spec)?;
    let runs = plan.shard_range(opts.shard);
    let (summary_path, traces_path, nodes_path, fc_path) = match &opts.out {
        Destination::Dir(dir) => {
            let layout = Layout::new(dir);
            prepare_dir(spec, &layout, opts)?;
            let summary_path = layout.part(TableKind::Summary, opts.shard);
            if summary_path.exists() {
                if opts.resume && part_is_complete(spec, &layout, opts.shard, &runs) {
                    return Ok(RunReport {
                        runs,
                        run_steps: 0.0,
                        elapsed: Duration::ZERO,
                        skipped: true,
                        diverged: 0,
                        tables: None,
                    });
                }
                // With --resume an incomplete or foreign part is rewritten.
                if !opts.resume && !opts.overwrite {
                    return Err(DirError::PartExists { part: summary_path }.into());
                }
            }
            (
                Some(summary_path),
                Some(layout.part(TableKind::Traces, opts.shard)),
                Some(layout.part(TableKind::Nodes, opts.shard)),
                Some(layout.part(TableKind::Fc, opts.shard)),
            )
        }
        Destination::Memory => (None, None, None, None),
    };
    let start = Instant::now();
    let base_metadata = extra_metadata.iter().fold(
        Metadata::new(spec, opts.shard, runs.clone(), opts.isa),
        |m, (k, v)| m.with(k, v.clone()),
    );
    let names = spec.network_data().and_then(|data| data.names.as_deref());
    let paths = [summary_path, traces_path, nodes_path, fc_path];
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads)
        .build()
        .map_err(|e| Error::Threads {
            threads: opts.threads,
            why: e.to_string(),
        })?;
    let simulator = Simulator::new(&plan, opts.isa);
    let steps = spec.max_steps();
    let block_runs = block_runs(steps, pool.current_num_threads());
    let progress = Progress::start(runs.end - runs.start, steps, opts.quiet);
    let rows = RowBuilder {
        spec,
        // The batches' schemas lack the step-size check's pairs, computed meanwhile: a
        // table gives its rows its own schema.
        schemas: schemas(spec, names, &base_metadata),
        names,
        fc_nodes: spec.network_data().map_or(0, |d| d.connectome.nodes()),
    };
    // The tables, created while the pool computes the first block: the step-size check
    // (up to `diagnose::MAX_CHECKED` points, on the same pool) overlaps it.
    let mut setup = Some(|| -> Result<BlockWriter<'_>, Error> {
        let mut metadata = base_metadata.clone();
        // Also with --quiet: a wrong map must not pass silently.
        if let Some(report) = pool.install(|| DtReport::compute(&plan)) {
            if let Some(warning) = report.warning() {
                // The progress line may be on screen already.
                progress.note(&format!("mpr-sweep: {warning}"));
            }
            metadata = report.add_metadata(metadata);
        }
        if let Some(data) = spec.network_data() {
            metadata = metadata.with("network_sha256", data.sha256.clone());
        }
        let group_rows = [
            SUMMARY_GROUP_ROWS,
            TRACE_GROUP_ROWS,
            NETWORK_GROUP_ROWS,
            NETWORK_GROUP_ROWS,
        ];
        let mut tables: [Option<TableWriter>; TABLES] = Default::default();
        for (t, schema) in schemas(spec, names, &metadata).into_iter().enumerate() {
            if let Some(schema) = schema {
                tables[t] = Some(TableWriter::create(
                    paths[t].as_deref(),
                    schema,
                    &metadata,
                    group_rows[t],
                )?);
            }
        }
        Ok(BlockWriter {
            shard: opts.shard,
            stop,
            pool: &pool,
            tables,
            encoded: Vec::new(),
            diverged: 0,
            run_steps: 0.0,
        })
    });
    let mut output: Option<BlockWriter> = None;
    // Block k+1 is computed on the pool while this thread appends block k's encoded row
    // groups and hands the groups block k completes to the pool for encoding.
    let mut pending: Vec<Piece> = Vec::new();
    let mut block_start = runs.start;
    while block_start < runs.end {
        check_stop(stop, opts.shard)?;
        let block_end = block_start.saturating_add(block_runs).min(runs.end);
        // Pieces start at fixed offsets from the shard's first run (block_runs is a
        // multiple of PIECE_RUNS): the batches a part's row groups are made of do not
        // depend on the threads.
        let pieces: Vec<std::ops::Range<u64>> = (block_start..block_end)
            .step_by(PIECE_RUNS as usize)
            .map(|s| s..(s + PIECE_RUNS).min(block_end))
            .collect();
        let (results, written) = std::thread::scope(|scope| {
            let computing = scope.spawn(|| {
                pool.install(|| {
                    // After a signal the running batches stop, the remaining ones are
                    // skipped, and the block with them: the writers are dropped, which
                    // removes their temporary files.
                    pieces
                        .par_iter()
                        .map(|piece| {
                            let out = simulator
                                .batches(piece.clone())
                                .par_iter()
                                .map_init(Vec::new, |scratch, batch| {
                                    let out = simulator.simulate_batch(batch, scratch, stop)?;
                                    progress.advance(out.len() as u64);
                                    Ok(out)
                                })
                                .collect::<Result<Vec<Vec<RunResult>>, Stopped>>()?;
                            Ok(rows.build(&out))
                        })
                        .collect::<Result<Vec<Piece>, Stopped>>()
                })
            });
            let written = match output.as_mut() {
                Some(output) => output.write(std::mem::take(&mut pending)),
                None => setup.take().expect("set up once")().map(|o| output = Some(o)),
            };
            let results = computing.join().expect("a simulation thread panicked");
            (results, written)
        });
        written?;
        check_stop(stop, opts.shard)?;
        // The kernels stop only after a request on `stop`, which check_stop has just
        // reported.
        pending = results.expect("the kernel stops only on a signal");
        block_start = block_end;
    }
    let mut output = match (output, setup.take()) {
        (Some(output), _) => output,
        (None, Some(setup)) => setup()?,
        (None, None) => unreachable!("set up once"),
    };
    output.write(pending)?;
    progress.finish();
    check_stop(stop, opts.shard)?;
    let (diverged, run_steps) = (output.diverged, output.run_steps);
    let [summary, traces, nodes, fc] = output.finish()?;
    let tables = summary.map(|summary| Tables {
        summary,
        traces,
        nodes,
        fc,
    });
    Ok(RunReport {
        runs,
        run_steps,
        elapsed: start.elapsed(),
        skipped: false,
        diverged,
        tables,
    })
}

/// The tables of a shard, in the order of [`RowBuilder::schemas`].
const TABLES: usize = 4;

/// The schemas, with `metadata`, of the summary, traces, nodes and FC tables this spec
/// writes (`names`: a network's node names, for the nodes table).
fn schemas(
    spec: &Spec,
    names: Option<&[String]>,
    metadata: &Metadata,
) -> [Option<SchemaRef>; TABLES] {
    [
        Some(summary_schema(spec, metadata)),
        spec.traces
            .as_ref()
            .map(|_| trace_schema(spec.network.is_some(), metadata)),
        spec.network_data()
            .map(|_| nodes_schema(names.is_some(), metadata)),
        spec.network_data()
            .filter(|_| spec.fc_output)
            .map(|_| fc_schema(metadata)),
    ]
}

/// Builds the rows of a piece's runs, on a worker.
struct RowBuilder<'a> {
    spec: &'a Spec,
    /// Summary, traces, nodes and FC: the schemas of the tables this shard writes.
    schemas: [Option<SchemaRef>; TABLES],
    /// A network's node names, for the nodes table.
    names: Option<&'a [String]>,
    /// A network's nodes, for the FC table.
    fc_nodes: usize,
}

/// The rows of consecutive runs, as a batch per table, and what they hold.
struct Piece {
    /// In the order of [`RowBuilder::schemas`]; `None` for a table not written.
    batches: [Option<RecordBatch>; TABLES],
    diverged: u64,
    /// Steps integrated, summed over the runs.
    run_steps: f64,
}

impl RowBuilder<'_> {
    /// The piece of the lane batches' results `batches`.
    fn build(&self, batches: &[Vec<RunResult>]) -> Piece {
        // Batches of a dt axis interleave run ids; rows are written in run-id order.
        let mut results: Vec<&RunResult> = batches.iter().flatten().collect();
        results.sort_by_key(|r| r.row.address.run_id);
        let spec = self.spec;
        let [summary, traces, nodes, fc] = &self.schemas;
        let mut piece = Piece {
            batches: Default::default(),
            diverged: 0,
            run_steps: 0.0,
        };
        for result in &results {
            piece.run_steps += match result.row.steps {
                Some(counts) => counts.steps as f64,
                None => spec.timing(result.row.values.get(Slot::DtMs)).steps as f64,
            };
            piece.diverged +=
                matches!(result.row.outcome, crate::output::Outcome::Diverged { .. }) as u64;
        }
        piece.batches[0] = summary.as_ref().map(|schema| {
            let mut b = SummaryBatch::new(spec, schema.clone(), results.len());
            results.iter().for_each(|r| b.push(&r.row));
            b.finish()
        });
        piece.batches[1] = traces.as_ref().map(|schema| {
            let mut b = TraceBatch::new(schema.clone());
            for r in &results {
                for p in &r.trace {
                    b.push(r.row.address.run_id, p.t_ms, p.node, p.r_hz, p.v);
                }
            }
            b.finish()
        });
        piece.batches[2] = nodes.as_ref().map(|schema| {
            let mut b = NodesBatch::new(schema.clone(), self.names);
            for r in &results {
                r.nodes.iter().for_each(|n| b.push(r.row.address.run_id, n));
            }
            b.finish()
        });
        piece.batches[3] = fc.as_ref().map(|schema| {
            let mut b = FcBatch::new(schema.clone(), self.fc_nodes);
            results
                .iter()
                .for_each(|r| b.push(r.row.address.run_id, &r.fc));
            b.finish()
        });
        piece
    }
}

/// Cuts pieces into row groups, has the pool encode them, appends them in order, and
/// counts what the pieces hold.
struct BlockWriter<'a> {
    shard: Shard,
    stop: &'a StopToken,
    pool: &'a rayon::ThreadPool,
    /// In the order of [`RowBuilder::schemas`].
    tables: [Option<TableWriter>; TABLES],
    /// Row groups encoded but not yet appended (table index, group), in order.
    encoded: Vec<(usize, EncodedGroup)>,
    diverged: u64,
    /// Steps integrated, summed over the runs written.
    run_steps: f64,
}

impl BlockWriter<'_> {
    /// Appends the row groups encoded by the previous call (the only serial work: copying
    /// bytes), then encodes on the pool the row groups `pieces` complete.
    fn write(&mut self, pieces: Vec<Piece>) -> Result<(), Error> {
        self.append_encoded()?;
        let mut groups = Vec::new();
        for piece in pieces {
            self.diverged += piece.diverged;
            self.run_steps += piece.run_steps;
            for (t, batch) in piece.batches.into_iter().enumerate() {
                if let (Some(batch), Some(table)) = (batch, self.tables[t].as_mut()) {
                    groups.extend(table.push(batch).into_iter().map(|g| (t, g)));
                }
            }
        }
        self.encode(groups)
    }

    fn encode(&mut self, groups: Vec<(usize, Vec<RecordBatch>)>) -> Result<(), Error> {
        if groups.is_empty() {
            return Ok(());
        }
        let encoders: Vec<Option<TableEncoder>> = self
            .tables
            .iter()
            .map(|t| t.as_ref().map(TableWriter::encoder))
            .collect();
        let encoded = self.pool.install(|| {
            groups
                .into_par_iter()
                .map(|(t, group)| {
                    let encoder = encoders[t].as_ref().expect("a group of a written table");
                    encoder.encode(group).map(|e| (t, e))
                })
                .collect::<Result<Vec<_>, OutputError>>()
        })?;
        self.encoded.extend(encoded);
        Ok(())
    }

    fn append_encoded(&mut self) -> Result<(), Error> {
        for (t, group) in std::mem::take(&mut self.encoded) {
            // A block of long traces takes a while to write: a signal stops it too.
            check_stop(self.stop, self.shard)?;
            self.tables[t]
                .as_mut()
                .expect("a group of a written table")
                .append(group)?;
        }
        Ok(())
    }

    /// Writes the last row groups and commits the parts, the summary last (its presence
    /// marks the shard complete); or returns the tables held in memory.
    fn finish(mut self) -> Result<[Option<Table>; TABLES], Error> {
        self.append_encoded()?;
        let rest: Vec<(usize, Vec<RecordBatch>)> = (0..TABLES)
            .filter_map(|t| Some((t, self.tables[t].as_mut()?.take_rest()?)))
            .collect();
        self.encode(rest)?;
        self.append_encoded()?;
        check_stop(self.stop, self.shard)?;
        let mut out: [Option<Table>; TABLES] = Default::default();
        for t in [1, 2, 3, 0] {
            if let Some(table) = self.tables[t].take() {
                out[t] = table.finish()?;
            }
        }
        Ok(out)
    }
}

/// Resident memory of the process before any rows (binary, allocator, thread stacks),
/// measured: ~11 MB for a 100-run sweep on 2 threads.
const BASE_BYTES: f64 = 20e6;

/// Expected peak memory of `run` on `threads` threads (0: one per core), in bytes: the
/// process, three blocks of rows in flight in every table (one being built by the workers,
/// one being cut into row groups and encoded, one of encoded row groups and allocator
/// slack; measured peaks were 0.4-1.0x this) at 8 bytes per value, and a network's lane
/// batches (`batch_bytes` each, one per thread). Runs of a block are [`block_runs`]: the
/// estimate grows with the rows in flight, not with the runs of the sweep.
pub fn memory_estimate(spec: &Spec, plan: &Plan, threads: usize, batch_bytes: u64) -> f64 {
    let threads = if threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        threads
    };
    let runs = block_runs(spec.max_steps(), threads).min(plan.runs.max(1)) as f64;
    let row_bytes = |columns: usize| columns as f64 * 8.0;
    let summary = runs * row_bytes(crate::output::summary_fields(spec).len());
    let network = spec.network_data();
    let trace_columns = if network.is_some() { 5 } else { 4 };
    let traces = plan.trace_rows() / plan.runs.max(1) as f64 * runs * row_bytes(trace_columns);
    let per_node = |rows: f64, columns: usize| runs * rows * row_bytes(columns);
    let (nodes, fc) = match network {
        Some(data) => {
            let n = data.connectome.nodes() as f64;
            let fc = if spec.fc_output {
                per_node(n * (n - 1.0) / 2.0, 4)
            } else {
                0.0
            };
            (per_node(n, 17), fc)
        }
        None => (0.0, 0.0),
    };
    BASE_BYTES + 3.0 * (summary + traces + nodes + fc) + (batch_bytes as f64) * threads as f64
}

/// Whether this shard's parts are complete and belong to this spec (a part left corrupt,
/// e.g. by a failing disk, is rewritten by `--resume` instead of skipped).
fn part_is_complete(
    spec: &Spec,
    layout: &Layout,
    shard: Shard,
    runs: &std::ops::Range<u64>,
) -> bool {
    let sha = spec_sha256(&spec.text);
    let network_sha = spec.network_data().map(|d| d.sha256.as_str());
    TableKind::of(spec).into_iter().all(|table| {
        let part = layout.part(table, shard);
        let summary = table == TableKind::Summary;
        crate::output::check_part(&part, (&sha, network_sha), shard, runs, summary).is_ok()
    })
}

/// Runs per block: about [`BLOCK_RUN_STEPS`] run-steps but at most [`MAX_BLOCK_RUNS`]
/// runs, at least 8 batches per thread; whole pieces.
fn block_runs(steps: u64, threads: usize) -> u64 {
    let min = (8 * threads * LANES) as u64;
    (BLOCK_RUN_STEPS / steps.max(1))
        .min(MAX_BLOCK_RUNS)
        .max(min)
        .div_ceil(PIECE_RUNS)
        * PIECE_RUNS
}

/// Creates the result directory and its `spec.yaml`, or checks that it holds this spec
/// (with `overwrite`, another spec's results are removed). `sbatch` claims the directory
/// this way too, so that `status` works before the first array task has started.
pub fn claim_dir(spec: &Spec, layout: &Layout, overwrite: bool) -> Result<(), Error> {
    let dir = &layout.dir;
    if dir.exists() && !dir.is_dir() {
        return Err(DirError::NotADirectory { dir: dir.clone() }.into());
    }
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let spec_path = layout.spec();
    match fs::read_to_string(&spec_path) {
        Ok(existing) if existing == spec.text => {}
        Ok(_) if overwrite => {
            for sub in TableKind::ALL.map(|t| layout.table_dir(t)) {
                if sub.exists() {
                    fs::remove_dir_all(&sub).map_err(io_err(&sub))?;
                }
            }
            write_atomic(&spec_path, spec.text.as_bytes())?;
        }
        Ok(existing) => {
            return Err(DirError::OtherSpec {
                dir: dir.clone(),
                sha256_prefix: spec_sha256(&existing)[..12].to_string(),
            }
            .into());
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            write_atomic(&spec_path, spec.text.as_bytes())?
        }
        Err(e) => {
            return Err(OutputError::Io {
                path: spec_path,
                source: e,
            }
            .into());
        }
    }
    Ok(())
}

/// [`claim_dir`], then the part directories, refusing parts of another shard layout.
fn prepare_dir(spec: &Spec, layout: &Layout, opts: &RunOptions) -> Result<(), Error> {
    claim_dir(spec, layout, opts.overwrite)?;
    for table in TableKind::of(spec) {
        let d = layout.table_dir(table);
        fs::create_dir_all(&d).map_err(io_err(&d))?;
        refuse_other_layouts(&d, opts)?;
        if let Some(data) = spec.network_data()
            && !opts.overwrite
        {
            refuse_other_network_data(&d, &data.sha256)?;
        }
    }
    if let Some(data) = spec.network_data() {
        copy_network_files(&layout.dir, &data.files)?;
    }
    Ok(())
}

/// Copies the network's files that the spec names by a plain relative path (no `..`, not
/// absolute) into the result directory at that same path, so that `DIR/spec.yaml` finds
/// them there: `mpr-sweep run DIR/spec.yaml` reads the very bytes the results were
/// computed from. A copy that already holds those bytes is left alone (array tasks of one
/// sweep all get here); files named by other paths are not copied.
fn copy_network_files(dir: &std::path::Path, files: &[SourceFile]) -> Result<(), Error> {
    use std::path::Component;
    for file in files {
        let relative = std::path::Path::new(&file.path);
        if !relative
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        {
            continue;
        }
        let copy = dir.join(relative);
        if fs::read(&copy).is_ok_and(|bytes| bytes == file.bytes) {
            continue;
        }
        if let Some(parent) = copy.parent() {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        write_atomic(&copy, &file.bytes)?;
    }
    Ok(())
}

/// [`DirError::OtherNetworkData`] if a part in `dir` was computed from network files whose
/// sha256 is not `sha256`: the spec text is the same, but its files were changed since.
/// Unreadable parts are left to `--resume`, which rewrites them.
fn refuse_other_network_data(dir: &std::path::Path, sha256: &str) -> Result<(), Error> {
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let path = entry.map_err(io_err(dir))?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if !name.starts_with("part-") || !name.ends_with(".parquet") {
            continue;
        }
        if let Ok(Some(found)) =
            crate::output::part_metadata_value(&path, "mpr_sweep.network_sha256")
            && found != sha256
        {
            return Err(DirError::OtherNetworkData {
                part: path.clone(),
                found: found.chars().take(12).collect(),
                expected: sha256.chars().take(12).collect(),
            }
            .into());
        }
    }
    Ok(())
}

/// Parts of another shard count would overlap ours and count runs twice in a reader;
/// `--overwrite` removes them, otherwise the run is refused.
fn refuse_other_layouts(dir: &std::path::Path, opts: &RunOptions) -> Result<(), Error> {
    let ours = format!("-of-{:05}.parquet", opts.shard.count);
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let path = entry.map_err(io_err(dir))?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if !name.starts_with("part-") || !name.ends_with(".parquet") || name.ends_with(&ours) {
            continue;
        }
        if !opts.overwrite {
            return Err(DirError::OtherLayout {
                dir: dir.to_path_buf(),
                name: name.into_owned(),
            }
            .into());
        }
        fs::remove_file(&path).map_err(io_err(&path))?;
    }
    Ok(())
}

/// [`Error::Interrupted`] if `stop` was requested: with the signal the handler recorded
/// (it records it before requesting), else SIGINT (a caller's own token).
fn check_stop(stop: &StopToken, shard: Shard) -> Result<(), Error> {
    if !stop.is_requested() {
        return Ok(());
    }
    Err(Error::Interrupted {
        signal: interrupted().unwrap_or(SIGINT),
        shard,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(points: u64, duration_ms: f64) -> Spec {
        crate::spec::parse(&format!(
            "model: {{eta: {{linspace: [-10, 0, {points}]}}, J: {{linspace: [0, 30, 1000]}}}}\n\
             simulation: {{dt_ms: 0.01, duration_ms: {duration_ms}}}\n"
        ))
        .expect("spec")
    }

    #[test]
    fn the_memory_estimate_grows_with_rows_in_flight_not_with_runs() {
        let estimate = |points, duration_ms, threads| {
            let spec = spec(points, duration_ms);
            let plan = Plan::new(&spec).expect("plan");
            memory_estimate(&spec, &plan, threads, 0)
        };
        // 1e6 and 1e7 one-step runs: the same blocks of 65,536 runs in flight.
        let million = estimate(1000, 0.01, 2);
        assert_eq!(million, estimate(10_000, 0.01, 2));
        // 32 summary columns of 8 bytes, three blocks: 50.3 MB over the process's 20 MB.
        assert_eq!(crate::output::summary_fields(&spec(1000, 0.01)).len(), 32);
        let rows = 3.0 * 65_536.0 * 32.0 * 8.0;
        assert!((million - BASE_BYTES - rows).abs() < 1.0, "{million}");
        // Long runs hold fewer runs per block.
        assert!(estimate(1000, 100.0, 2) < million);
    }

    #[test]
    fn blocks_are_whole_pieces_capped_by_runs() {
        assert_eq!(block_runs(1, 2), MAX_BLOCK_RUNS);
        assert_eq!(block_runs(10_000, 2), 7 * PIECE_RUNS);
        // At least 8 lane batches per thread.
        assert_eq!(block_runs(1 << 30, 128), 8 * 128 * LANES as u64);
        for (steps, threads) in [(1, 1), (200, 2), (10_000, 128), (1 << 40, 3)] {
            assert_eq!(block_runs(steps, threads) % PIECE_RUNS, 0);
        }
    }
}
