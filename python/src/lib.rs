//! `mpr_sweep._native`: the Python package's bindings to the `mpr_sweep` crate. Sweeps run
//! on a Rust thread with the GIL released while the calling thread polls Python's signal
//! handlers, so Ctrl-C stops them; in-memory results leave as Arrow C streams (the
//! PyCapsule protocol). The Python wrapper (`python/mpr_sweep/__init__.py`) gives these
//! functions their public signatures and documentation.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::{Mutex, mpsc};
use std::time::Duration;

use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{RecordBatch, RecordBatchIterator};
use mpr_sweep::Error;
use mpr_sweep::cluster::{self, process_env};
use mpr_sweep::error::SpecFileProblem;
use mpr_sweep::integrate::{Isa, StopToken};
use mpr_sweep::output;
use mpr_sweep::plan::{Plan, Shard};
use mpr_sweep::run::{self, Destination, PlanReport, RunOptions, RunReport};
use mpr_sweep::spec::Spec;
use pyo3::create_exception;
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyDict};

create_exception!(
    _native,
    SpecError,
    PyValueError,
    "The spec is invalid or its sweep cannot be planned; the message is the command line's \
     (key path, line and column)."
);
create_exception!(
    _native,
    UsageError,
    PyValueError,
    "A bad argument or result directory (another spec's results, an existing part): nothing \
     was run or written."
);
create_exception!(
    _native,
    OutputError,
    PyOSError,
    "Reading the spec file or writing results failed."
);
create_exception!(
    _native,
    RunError,
    PyRuntimeError,
    "A failure while running (threads, an interrupted run that Python did not interrupt)."
);

/// Interval at which the calling thread runs Python's signal handlers during a sweep.
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// The Python exception of a library error, chosen by variant; the message is the one the
/// command line prints after `mpr-sweep: error: `.
fn to_py(e: Error) -> PyErr {
    let message = e.to_string();
    match &e {
        Error::SpecFile {
            problem: SpecFileProblem::Read(_),
            ..
        }
        | Error::Output(_)
        | Error::Io { .. } => OutputError::new_err(message),
        Error::SpecFile { .. } | Error::Spec(_) | Error::Plan(_) => SpecError::new_err(message),
        Error::CommandLine(_) | Error::IsaUnavailable { .. } | Error::Dir(_) => {
            UsageError::new_err(message)
        }
        Error::Cluster(_) | Error::Plot(_) if e.exit_code() == 2 => UsageError::new_err(message),
        Error::Cluster(_) | Error::Plot(_) | Error::Threads { .. } | Error::Interrupted { .. } => {
            RunError::new_err(message)
        }
    }
}

/// The spec from its text, or from the file at `path` (the messages then name the file,
/// as the command line's do).
fn load(text: Option<&str>, path: Option<PathBuf>) -> Result<Spec, Error> {
    match (text, path) {
        (_, Some(path)) => run::load_spec(&path),
        (Some(text), None) => {
            let mut spec = mpr_sweep::spec::parse(text)?;
            // A network's files named in a spec text are relative to the working folder.
            spec.load_files(std::path::Path::new(""))?;
            Plan::new(&spec)?;
            Ok(spec)
        }
        (None, None) => Err(Error::CommandLine("run: no spec given".into())),
    }
}

/// Worker threads: the argument, else Slurm's allocation inside a job, else every core
/// (as `mpr-sweep run` chooses).
fn threads(threads: Option<usize>) -> Result<usize, Error> {
    Ok(match threads {
        Some(0) => {
            return Err(Error::CommandLine(
                "threads: must be at least 1 (or None for every core)".into(),
            ));
        }
        Some(t) => t,
        None => cluster::slurm_cpus(&process_env)?
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
    })
}

/// A result table held in memory: its schema (with the `mpr_sweep.*` metadata) and
/// batches, exported as an Arrow C stream each time it is asked.
#[pyclass(frozen, module = "mpr_sweep._native")]
struct Table {
    table: Arc<output::Table>,
}

#[pymethods]
impl Table {
    /// The Arrow PyCapsule protocol: a new stream over the batches (no copy of the data).
    /// `requested_schema` is ignored: the table has one schema.
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema;
        let batches: Vec<RecordBatch> = self.table.batches.clone();
        let reader =
            RecordBatchIterator::new(batches.into_iter().map(Ok), self.table.schema.clone());
        let stream = FFI_ArrowArrayStream::new(Box::new(reader));
        let name = CString::new("arrow_array_stream").expect("no NUL");
        PyCapsule::new(py, stream, Some(name))
    }

    /// Rows over all batches.
    #[getter]
    fn num_rows(&self) -> usize {
        self.table.num_rows()
    }

    fn __len__(&self) -> usize {
        self.table.num_rows()
    }

    /// Column names, in order.
    #[getter]
    fn column_names(&self) -> Vec<String> {
        self.table
            .schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    /// The `mpr_sweep.*` key-value metadata (as in a part's footer).
    #[getter]
    fn metadata(&self) -> std::collections::HashMap<String, String> {
        self.table.schema.metadata().clone().into()
    }
}

/// Runs `body` on a new thread with the GIL released, running Python's signal handlers every
/// [`SIGNAL_POLL`] meanwhile; when one raises (Ctrl-C: KeyboardInterrupt), requests `stop`,
/// waits for the thread to wind down, and returns that exception.
fn run_interruptible<T: Send + 'static>(
    py: Python<'_>,
    stop: Arc<StopToken>,
    body: impl FnOnce() -> T + Send + 'static,
) -> PyResult<T> {
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::Builder::new()
        .name("mpr-sweep".into())
        .spawn(move || {
            let _ = tx.send(body());
        })
        .map_err(|e| RunError::new_err(format!("cannot start the sweep's thread: {e}")))?;
    // A Mutex makes the receiver shareable with the closure that waits without the GIL.
    let rx = Mutex::new(rx);
    let mut interrupt: Option<PyErr> = None;
    loop {
        match py.detach(|| rx.lock().expect("one waiter").recv_timeout(SIGNAL_POLL)) {
            Ok(value) => {
                py.detach(|| worker.join())
                    .map_err(|_| RunError::new_err("the sweep's thread panicked"))?;
                return match interrupt {
                    Some(e) => Err(e),
                    None => Ok(value),
                };
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let _ = py.detach(|| worker.join());
                return Err(RunError::new_err("the sweep's thread panicked"));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if interrupt.is_none()
            && let Err(e) = py.check_signals()
        {
            stop.request();
            interrupt = Some(e);
        }
    }
}

/// What [`run_sweep`] returns to Python: `(summary, traces, nodes, fc, report)`.
type RunOutput<'py> = (
    Option<Table>,
    Option<Table>,
    Option<Table>,
    Option<Table>,
    Bound<'py, PyDict>,
);

/// Runs a sweep. Returns `(summary, traces, nodes, fc, report)`: the tables in memory
/// (`None` when written to `out`; traces `None` without traces, nodes `None` for a single
/// node, fc `None` without `output.fc`) and a dict of what the run did.
#[pyfunction]
#[pyo3(name = "run", signature = (text, path, *, threads=None, out=None, shard=None, progress=false,
                    isa="auto", resume=false, overwrite=false, force=false))]
#[allow(clippy::too_many_arguments)]
fn run_sweep<'py>(
    py: Python<'py>,
    text: Option<&str>,
    path: Option<PathBuf>,
    threads: Option<usize>,
    out: Option<PathBuf>,
    shard: Option<&str>,
    progress: bool,
    isa: &str,
    resume: bool,
    overwrite: bool,
    force: bool,
) -> PyResult<RunOutput<'py>> {
    // The Slurm job label goes into the metadata, as `mpr-sweep run` adds it.
    let prepare = || -> Result<(Spec, RunOptions, Option<String>), Error> {
        let spec = load(text, path.clone())?;
        Plan::new(&spec)?.check_trace_size(force)?;
        let shard = match shard {
            Some(s) => s.parse::<Shard>()?,
            None => Shard::WHOLE,
        };
        let opts = RunOptions {
            out: match &out {
                Some(dir) => Destination::Dir(dir.clone()),
                None => Destination::Memory,
            },
            shard,
            threads: self::threads(threads)?,
            isa: mpr_sweep::cli::resolve_isa(isa)?,
            resume,
            overwrite,
            quiet: !progress,
        };
        Ok((spec, opts, cluster::job_label(&process_env)?))
    };
    let (spec, opts, slurm_job) = prepare().map_err(to_py)?;
    let stop = Arc::new(StopToken::new());
    let token = stop.clone();
    let isa_name = opts.isa.name();
    let threads_used = opts.threads;
    let report = run_interruptible(py, stop, move || {
        let extra: Vec<(&str, String)> = slurm_job.into_iter().map(|j| ("slurm_job", j)).collect();
        run::run_until(&spec, &opts, &extra, &token)
    })?
    .map_err(to_py)?;
    let RunReport {
        runs,
        run_steps,
        elapsed,
        skipped,
        diverged,
        tables,
    } = report;
    let info = PyDict::new(py);
    info.set_item("runs", (runs.start, runs.end))?;
    info.set_item("run_steps", run_steps)?;
    info.set_item("elapsed_s", elapsed.as_secs_f64())?;
    info.set_item("skipped", skipped)?;
    info.set_item("diverged", diverged)?;
    info.set_item("threads", threads_used)?;
    info.set_item("isa", isa_name)?;
    let wrap = |t: output::Table| Table { table: Arc::new(t) };
    let (summary, traces, nodes, fc) = match tables {
        Some(t) => (
            Some(wrap(t.summary)),
            t.traces.map(wrap),
            t.nodes.map(wrap),
            t.fc.map(wrap),
        ),
        None => (None, None, None, None),
    };
    Ok((summary, traces, nodes, fc, info))
}

/// The plan of a sweep as the JSON text `mpr-sweep plan --json` prints.
#[pyfunction]
#[pyo3(signature = (text, path, *, shards=1, threads=None))]
fn plan(
    text: Option<&str>,
    path: Option<PathBuf>,
    shards: u64,
    threads: Option<usize>,
) -> PyResult<String> {
    let report = (|| -> Result<String, Error> {
        if shards == 0 {
            return Err(Error::CommandLine("shards: must be at least 1".into()));
        }
        let spec = load(text, path)?;
        let plan = Plan::new(&spec)?;
        // As `plan` does: Slurm's allocation inside a job, else the available cores.
        let threads = match threads {
            Some(t) => t.max(1),
            None => cluster::slurm_cpus(&process_env)
                .ok()
                .flatten()
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        };
        let report = PlanReport::new(&spec, &plan, shards, Isa::detect(), threads);
        Ok(serde_json::to_string(&report.json()).expect("JSON"))
    })();
    report.map_err(to_py)
}

/// The `mpr-sweep` command: runs the command line `argv` (program name first) and returns
/// its exit status. `exe` is the command `sbatch` scripts call.
#[pyfunction]
#[pyo3(signature = (argv, exe=None))]
fn main(py: Python<'_>, argv: Vec<String>, exe: Option<PathBuf>) -> u8 {
    let exe = exe.filter(|p| Path::new(p).is_file());
    py.detach(|| {
        let status = mpr_sweep::cli::main(argv, exe);
        // Inside Python, Rust's stdout is not flushed at exit.
        let _ = std::io::Write::flush(&mut std::io::stdout());
        status
    })
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("SpecError", py.get_type::<SpecError>())?;
    m.add("UsageError", py.get_type::<UsageError>())?;
    m.add("OutputError", py.get_type::<OutputError>())?;
    m.add("RunError", py.get_type::<RunError>())?;
    m.add("VERSION", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<Table>()?;
    m.add_function(wrap_pyfunction!(run_sweep, m)?)?;
    m.add_function(wrap_pyfunction!(plan, m)?)?;
    m.add_function(wrap_pyfunction!(main, m)?)?;
    Ok(())
}
