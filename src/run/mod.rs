//! Orchestration of `mpr-sweep run`: result directory, shard → blocks of lane batches →
//! rayon workers → streaming writers (to Parquet parts, or to Arrow tables in memory), with
//! progress.

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

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
    DirError, FcWriter, Layout, Metadata, NodesWriter, OutputError, SummaryWriter, Table,
    TraceWriter, io_err, spec_sha256, write_atomic,
};
use crate::plan::{Plan, Shard};
use crate::simulate::{RunResult, Simulator};
use crate::spec::{Slot, Spec};

/// Run-steps computed between writes: bounds memory and keeps every thread busy.
const BLOCK_RUN_STEPS: u64 = 1 << 26;

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
            let summary_path = layout.summary_part(opts.shard);
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
                Some(layout.traces_part(opts.shard)),
                Some(layout.nodes_part(opts.shard)),
                Some(layout.fc_part(opts.shard)),
            )
        }
        Destination::Memory => (None, None, None, None),
    };
    let start = Instant::now();
    let mut metadata = extra_metadata.iter().fold(
        Metadata::new(spec, opts.shard, runs.clone(), opts.isa),
        |m, (k, v)| m.with(k, v.clone()),
    );
    // The step-size check, before the first batch and also with --quiet: a wrong map
    // must not pass silently.
    if let Some(report) = DtReport::compute(&plan) {
        if let Some(warning) = report.warning() {
            eprint!("mpr-sweep: {warning}");
        }
        metadata = report.add_metadata(metadata);
    }
    if let Some(data) = spec.network_data() {
        metadata = metadata.with("network_sha256", data.sha256.clone());
    }
    let mut summary = SummaryWriter::create(summary_path.as_deref(), spec, &metadata)?;
    let mut nodes = match spec.network_data() {
        Some(data) => Some(NodesWriter::create(
            nodes_path.as_deref(),
            data.names.clone(),
            &metadata,
        )?),
        None => None,
    };
    let mut fc = match spec.network_data() {
        Some(data) if spec.fc_output => Some(FcWriter::create(
            fc_path.as_deref(),
            data.connectome.nodes(),
            &metadata,
        )?),
        _ => None,
    };
    let mut traces = match &spec.traces {
        Some(_) => Some(TraceWriter::create(
            traces_path.as_deref(),
            spec.network.is_some(),
            &metadata,
        )?),
        None => None,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads)
        .build()
        .map_err(|e| Error::Threads {
            threads: opts.threads,
            why: e.to_string(),
        })?;
    let simulator = Simulator::new(&plan, opts.isa);
    let steps = spec.max_steps();
    let block_runs = block_runs(steps, opts.threads);
    let progress = Progress::start(runs.end - runs.start, steps, opts.quiet);
    let mut output = BlockWriter {
        spec,
        shard: opts.shard,
        stop,
        summary: &mut summary,
        traces: traces.as_mut(),
        nodes: nodes.as_mut(),
        fc: fc.as_mut(),
        diverged: 0,
        run_steps: 0.0,
    };
    // Block k+1 is computed on the pool while this thread writes block k, so the
    // encoding and compression of the output overlap the integration.
    let mut pending: Vec<RunResult> = Vec::new();
    let mut block_start = runs.start;
    while block_start < runs.end {
        check_stop(stop, opts.shard)?;
        let block_end = block_start.saturating_add(block_runs).min(runs.end);
        let batches = simulator.batches(block_start..block_end);
        let (results, written) = std::thread::scope(|scope| {
            let computing = scope.spawn(|| {
                pool.install(|| {
                    // After a signal the running batches stop, the remaining ones are
                    // skipped, and the block with them: the writers are dropped, which
                    // removes their temporary files.
                    batches
                        .par_iter()
                        .map_init(Vec::new, |scratch, batch| {
                            let out = simulator.simulate_batch(batch, scratch, stop)?;
                            progress.advance(out.len() as u64);
                            Ok(out)
                        })
                        .collect::<Result<Vec<Vec<RunResult>>, Stopped>>()
                })
            });
            let written = output.write(std::mem::take(&mut pending));
            let results = computing.join().expect("a simulation thread panicked");
            (results, written)
        });
        written?;
        check_stop(stop, opts.shard)?;
        // The kernels stop only after a request on `stop`, which check_stop has just
        // reported.
        pending = results
            .expect("the kernel stops only on a signal")
            .into_iter()
            .flatten()
            .collect();
        block_start = block_end;
    }
    output.write(pending)?;
    let BlockWriter {
        diverged,
        run_steps,
        ..
    } = output;
    progress.finish();
    check_stop(stop, opts.shard)?;
    // The summary part last: its presence marks the shard complete.
    let traces = match traces {
        Some(w) => w.finish()?,
        None => None,
    };
    let nodes = match nodes {
        Some(w) => w.finish()?,
        None => None,
    };
    let fc = match fc {
        Some(w) => w.finish()?,
        None => None,
    };
    let tables = summary.finish()?.map(|summary| Tables {
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

/// Writes blocks of results in run-id order and counts what they hold.
struct BlockWriter<'a> {
    spec: &'a Spec,
    shard: Shard,
    stop: &'a StopToken,
    summary: &'a mut SummaryWriter,
    traces: Option<&'a mut TraceWriter>,
    nodes: Option<&'a mut NodesWriter>,
    fc: Option<&'a mut FcWriter>,
    diverged: u64,
    /// Steps integrated, summed over the runs written.
    run_steps: f64,
}

impl BlockWriter<'_> {
    fn write(&mut self, mut results: Vec<RunResult>) -> Result<(), Error> {
        // Batches of a dt axis interleave run ids; rows are written in run-id order.
        results.sort_by_key(|r| r.row.address.run_id);
        for result in &results {
            // A block of long traces takes a while to write: a signal stops it too.
            check_stop(self.stop, self.shard)?;
            self.run_steps += match result.row.steps {
                Some(counts) => counts.steps as f64,
                None => self.spec.timing(result.row.values.get(Slot::DtMs)).steps as f64,
            };
            self.summary.push(&result.row)?;
            self.diverged +=
                matches!(result.row.outcome, crate::output::Outcome::Diverged { .. }) as u64;
            if let Some(w) = self.traces.as_mut() {
                for p in &result.trace {
                    w.push(result.row.address.run_id, p.t_ms, p.node, p.r_hz, p.v)?;
                }
            }
            if let Some(w) = self.nodes.as_mut() {
                for node in &result.nodes {
                    w.push(result.row.address.run_id, node)?;
                }
            }
            if let Some(w) = self.fc.as_mut() {
                w.push(result.row.address.run_id, &result.fc)?;
            }
        }
        // Encode now rather than at the end, while the next block computes.
        self.summary.flush()?;
        Ok(())
    }
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
    let summary = crate::output::check_part(&layout.summary_part(shard), &sha, shard, runs, true);
    let traces = match spec.traces {
        Some(_) => crate::output::check_part(&layout.traces_part(shard), &sha, shard, runs, false),
        None => Ok(()),
    };
    let other = |wanted: bool, part: std::path::PathBuf| {
        !wanted || crate::output::check_part(&part, &sha, shard, runs, false).is_ok()
    };
    summary.is_ok()
        && traces.is_ok()
        && other(spec.network.is_some(), layout.nodes_part(shard))
        && other(spec.fc_output, layout.fc_part(shard))
}

/// Runs per block: about [`BLOCK_RUN_STEPS`] run-steps, at least 8 batches per thread.
fn block_runs(steps: u64, threads: usize) -> u64 {
    let min = (8 * threads * LANES) as u64;
    (BLOCK_RUN_STEPS / steps.max(1))
        .max(min)
        .div_ceil(LANES as u64)
        * LANES as u64
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
            for sub in [
                layout.summary_dir(),
                layout.traces_dir(),
                layout.nodes_dir(),
                layout.fc_dir(),
            ] {
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
    let mut dirs = vec![layout.summary_dir()];
    if spec.traces.is_some() {
        dirs.push(layout.traces_dir());
    }
    if spec.network.is_some() {
        dirs.push(layout.nodes_dir());
    }
    if spec.fc_output {
        dirs.push(layout.fc_dir());
    }
    for d in dirs {
        fs::create_dir_all(&d).map_err(io_err(&d))?;
        refuse_other_layouts(&d, opts)?;
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
