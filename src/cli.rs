//! Command-line definitions and the `plan`, `run`, `sbatch` and `status` commands.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use mpr_sweep::Error;
use mpr_sweep::cluster::{self, DEFAULT_MAX_ARRAY_SIZE, SbatchOptions, process_env};
use mpr_sweep::integrate::Isa;
use mpr_sweep::plan::{Plan, Shard};
use mpr_sweep::run::{RunOptions, run_with_metadata};
use mpr_sweep::spec::{self, Spec};

#[derive(Parser)]
#[command(
    name = "mpr-sweep",
    version,
    about = "Parameter sweeps of the Montbrió–Pazó–Roxin neural mass model, to Parquet"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show the axes, run count, steps, estimated output size and time of a sweep.
    Plan {
        /// The sweep spec (YAML).
        spec: PathBuf,
        /// Show how the runs split into this many shards.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        shards: u64,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run a sweep (or one shard of it) and write Parquet parts to DIR.
    Run {
        /// The sweep spec (YAML).
        spec: PathBuf,
        /// Result directory.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Run only shard I of N (0-based), e.g. 3/16 [default inside a Slurm array task:
        /// (SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN) / SLURM_ARRAY_TASK_STEP of
        /// SLURM_ARRAY_TASK_COUNT, else the whole sweep].
        #[arg(long, value_name = "I/N")]
        shard: Option<Shard>,
        /// Worker threads [default: SLURM_CPUS_PER_TASK, else SLURM_CPUS_ON_NODE, else all cores].
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..1025))]
        threads: Option<u64>,
        /// Instruction-set path of the kernel.
        #[arg(long, value_enum, default_value_t = IsaChoice::Auto)]
        isa: IsaChoice,
        /// Skip the shard if its part is already complete.
        #[arg(long)]
        resume: bool,
        /// Replace results in DIR, even of another spec.
        #[arg(long)]
        overwrite: bool,
        /// No progress output.
        #[arg(long)]
        quiet: bool,
        /// Run even if the traces exceed the size limit (1e9 rows, about 16 GB).
        #[arg(long)]
        force: bool,
    },
    /// Print a Slurm sbatch script that runs the sweep as a job array, one shard per task.
    Sbatch {
        /// The sweep spec (YAML).
        spec: PathBuf,
        /// Result directory (logs go to DIR/logs).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Number of shards (parts); task i of the array runs shard i.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        shards: u64,
        /// CPUs (and threads) per array task.
        #[arg(long, value_name = "C", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=4096))]
        cpus_per_task: u64,
        /// Time limit per task: HH:MM:SS, D-HH:MM:SS or another Slurm form [default: the
        /// partition's].
        #[arg(long, value_name = "HH:MM:SS")]
        time: Option<String>,
        /// Slurm partition [default: the cluster's default partition].
        #[arg(long, value_name = "P")]
        partition: Option<String>,
        /// Run at most K tasks at once (`--array=...%K`).
        #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(1..))]
        max_running: Option<u64>,
        /// The cluster's MaxArraySize: with more shards, each task runs several in turn.
        #[arg(long, value_name = "M", default_value_t = DEFAULT_MAX_ARRAY_SIZE, value_parser = clap::value_parser!(u64).range(1..))]
        max_array_size: u64,
        /// Job name [default: mpr-<spec name>].
        #[arg(long, value_name = "NAME")]
        job_name: Option<String>,
        /// Further sbatch options, one #SBATCH line each time given (e.g. "--mem=2G").
        #[arg(long, value_name = "OPTIONS", allow_hyphen_values = true)]
        extra: Vec<String>,
    },
    /// Draw a heatmap PNG of a summary column over two parameters, or r_hz(t) and v(t) of
    /// traced runs (--traces).
    Plot(mpr_sweep::plot::PlotCli),
    /// Check a result directory: complete, missing and corrupt parts, the --array list to
    /// resubmit. Exit 0 when complete, 1 when not, 2 when DIR is not a result directory.
    Status {
        /// Result directory.
        dir: PathBuf,
        /// Number of shards, needed only when no part was written yet.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        shards: Option<u64>,
        /// Shards per array task, for a script packed by `sbatch` (see its header).
        #[arg(long, value_name = "K", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        per_task: u64,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum IsaChoice {
    Auto,
    Portable,
    Avx2,
}

impl IsaChoice {
    fn resolve(self) -> Result<Isa, Error> {
        match self {
            IsaChoice::Auto => Ok(Isa::detect()),
            IsaChoice::Portable => Ok(Isa::Portable),
            IsaChoice::Avx2 if Isa::detect() == Isa::Avx2Fma => Ok(Isa::Avx2Fma),
            IsaChoice::Avx2 => Err(Error::Usage("--isa avx2: this CPU lacks AVX2+FMA".into())),
        }
    }
}

pub fn main() -> Result<ExitCode> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version print as clap renders them.
        Err(e) if !e.use_stderr() => {
            e.print()?;
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let commands: Vec<String> = Cli::command()
                .get_subcommands()
                .map(|c| c.get_name().to_string())
                .filter(|n| n != "help")
                .collect();
            let message = format!(
                "no command given; one of: {} (see mpr-sweep --help)",
                commands.join(", ")
            );
            return Err(Error::Usage(message).into());
        }
        // Usage errors: one line, like every other error.
        Err(e) => {
            // clap's message is the paragraph before its usage block.
            let rendered = e.to_string();
            let message: Vec<&str> = rendered
                .lines()
                .map(str::trim)
                .take_while(|l| !l.is_empty() && !l.starts_with("Usage:"))
                .collect();
            let message = message.join(" ");
            let message = message.strip_prefix("error: ").unwrap_or(&message);
            return Err(Error::Usage(format!("{message} (see mpr-sweep --help)")).into());
        }
    };
    match cli.command {
        Command::Plan { spec, shards, json } => plan(&spec, shards, json),
        Command::Run {
            spec,
            out,
            shard,
            threads,
            isa,
            resume,
            overwrite,
            quiet,
            force,
        } => {
            let spec = read_spec(&spec)?;
            Plan::new(&spec)
                .and_then(|p| p.check_trace_size(force))
                .map_err(Error::from)?;
            let env = process_env;
            // --shard overrides the array task's shard (and its variables are not read).
            let slurm_shard = match shard {
                Some(_) => None,
                None => cluster::array_shard(&env).map_err(Error::from)?,
            };
            let threads = match threads {
                Some(t) => t as usize,
                None => cluster::slurm_cpus(&env)
                    .map_err(Error::from)?
                    .unwrap_or_else(available_cores),
            };
            let slurm_job = cluster::job_label(&env).map_err(Error::from)?;
            let opts = RunOptions {
                out,
                shard: shard.or(slurm_shard).unwrap_or(Shard::WHOLE),
                threads,
                isa: isa.resolve()?,
                resume,
                overwrite,
                quiet,
            };
            if !quiet && let (Some(s), Some(job)) = (slurm_shard, &slurm_job) {
                eprintln!("mpr-sweep: Slurm array task {job}: shard {s}");
            }
            if let Err(e) = mpr_sweep::run::stop_on_signals() {
                eprintln!("mpr-sweep: warning: cannot handle SIGINT/SIGTERM: {e}");
            }
            let extra: Vec<(&str, String)> =
                slurm_job.into_iter().map(|j| ("slurm_job", j)).collect();
            let report = run_with_metadata(&spec, &opts, &extra)?;
            if !quiet {
                let n = report.runs.end - report.runs.start;
                if report.skipped {
                    eprintln!(
                        "mpr-sweep: shard {} already complete in {}, skipped (--resume)",
                        opts.shard,
                        opts.out.display()
                    );
                } else {
                    eprintln!(
                        "mpr-sweep: {n} runs (shard {}, runs {}..{}) in {:.2} s, {:.3e} run-steps/s on {} threads ({}), {} diverged -> {}",
                        opts.shard,
                        report.runs.start,
                        report.runs.end,
                        report.elapsed.as_secs_f64(),
                        report.run_steps_per_second(),
                        opts.threads,
                        opts.isa.name(),
                        report.diverged,
                        opts.out.display()
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Sbatch {
            spec,
            out,
            shards,
            cpus_per_task,
            time,
            partition,
            max_running,
            max_array_size,
            job_name,
            extra,
        } => {
            let parsed = read_spec(&spec)?;
            let absolute = |p: &Path, what: &str| {
                std::path::absolute(p).map_err(|e| {
                    Error::Usage(format!(
                        "{what} {}: cannot make it absolute: {e}",
                        p.display()
                    ))
                })
            };
            let spec_path = std::fs::canonicalize(&spec).or_else(|_| absolute(&spec, "SPEC"))?;
            let exe = std::env::current_exe()
                .and_then(std::fs::canonicalize)
                .map_err(|e| Error::Usage(format!("cannot locate the mpr-sweep binary: {e}")))?;
            let opts = SbatchOptions {
                exe,
                spec_path,
                out: absolute(&out, "--out")?,
                shards,
                cpus_per_task,
                time,
                partition,
                max_running,
                max_array_size,
                job_name,
                extra,
            };
            let script = cluster::sbatch_script(&parsed, &opts)?;
            print!("{}", script.text);
            for note in &script.notes {
                eprintln!("{note}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Plot(args) => {
            mpr_sweep::plot::run_cli(&args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Status {
            dir,
            shards,
            per_task,
            json,
        } => {
            let status = cluster::dir_status(&dir, shards, per_task)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&status.json()).expect("JSON")
                );
            } else {
                print!("{}", status.text());
            }
            Ok(if status.is_complete() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

/// Largest spec file read: anything bigger is not a sweep description.
const MAX_SPEC_BYTES: u64 = 64 << 20;

/// Reads, validates and plans a spec; every error names the file.
fn read_spec(path: &Path) -> Result<Spec, Error> {
    use std::io::Read;
    let named = |msg: String| Error::Usage(format!("{}: {msg}", path.display()));
    let mut text = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_SPEC_BYTES + 1).read_to_end(&mut text))
        .map_err(|e| named(format!("cannot read spec: {e}")))?;
    if text.len() as u64 > MAX_SPEC_BYTES {
        return Err(named(format!(
            "the spec is larger than {} MiB",
            MAX_SPEC_BYTES >> 20
        )));
    }
    let text = String::from_utf8(text).map_err(|_| named("the spec is not UTF-8 text".into()))?;
    let spec = spec::parse(&text).map_err(|e| named(e.to_string()))?;
    Plan::new(&spec).map_err(|e| named(e.to_string()))?;
    Ok(spec)
}

fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Threads assumed by `plan`: Slurm's allocation when inside a job, else the available
/// cores (`run` refuses garbled Slurm variables; `plan` only estimates, so it ignores them).
fn default_threads() -> usize {
    cluster::slurm_cpus(&process_env)
        .ok()
        .flatten()
        .unwrap_or_else(available_cores)
}

fn plan(path: &Path, shards: u64, json: bool) -> Result<ExitCode> {
    let spec = read_spec(path)?;
    let plan = Plan::new(&spec).map_err(Error::from)?;
    let threads = default_threads();
    let isa = Isa::detect();
    let dts = spec.dt_values();
    let steps = spec.max_steps();
    let run_steps = cluster::run_steps(&spec, plan.runs);
    let ns_per_run_step = cluster::ns_per_run_step(&spec, isa);
    let seconds = run_steps * ns_per_run_step * 1e-9 / threads as f64;
    let summary_cols = 3 + mpr_sweep::output::param_slots(&spec).len() + 2 + 12 + 6;
    // Compressed sizes: measured zstd ratios are about 0.6 (summary) and 0.5 (traces).
    let summary_bytes = plan.runs as f64 * summary_cols as f64 * 8.0 * 0.6;
    let trace_rows = plan.trace_rows();
    let trace_bytes = trace_rows * mpr_sweep::plan::TRACE_BYTES_PER_ROW;
    let trace_limit = plan.check_trace_size(false).err();
    let dt_report = mpr_sweep::diagnose::DtReport::compute(&plan);
    let axes: Vec<_> = plan
        .dims
        .iter()
        .map(|d| {
            let names: Vec<_> = d
                .params
                .iter()
                .map(|&j| spec.params[j].slot.column())
                .collect();
            let forms: Vec<_> = d
                .params
                .iter()
                .map(|&j| spec.params[j].axis.describe())
                .collect();
            (names, forms, d.len)
        })
        .collect();
    let shard_runs: Vec<(u64, u64)> = (0..shards.min(10_000))
        .map(|i| {
            let r = plan.shard_range(Shard {
                index: i,
                count: shards,
            });
            (r.start, r.end)
        })
        .collect();
    if json {
        let value = serde_json::json!({
            "name": spec.name,
            "axes": axes.iter().map(|(n, f, len)| serde_json::json!({"names": n, "forms": f, "len": len})).collect::<Vec<_>>(),
            "points": plan.points,
            "replicates": spec.replicates,
            "runs": plan.runs,
            "steps_per_run": steps,
            "dt_ms": if dts.len() == 1 { serde_json::json!(dts[0]) } else { serde_json::json!(dts) },
            "duration_ms": spec.duration_ms,
            "transient_ms": spec.transient_ms,
            "method": spec.method.name(),
            "run_steps": run_steps,
            "summary_bytes_estimate": summary_bytes.round(),
            "trace_rows": trace_rows,
            "trace_bytes_estimate": trace_bytes.round(),
            "trace_limit_exceeded": trace_limit.is_some(),
            "isa": isa.name(),
            "threads": threads,
            "seconds_estimate": seconds,
            "shards": shards,
            "shard_runs": shard_runs,
            "dt_stability": dt_report.as_ref().map(|r| r.json()),
        });
        println!("{}", serde_json::to_string_pretty(&value).expect("JSON"));
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(name) = &spec.name {
        println!("sweep: {name}");
    }
    if axes.is_empty() {
        println!("axes: none (a single point)");
    } else {
        println!("axes (point ids are row-major, first axis slowest):");
        for (names, forms, len) in &axes {
            let label = names.join(" + ");
            let form = forms.join(" | ");
            let zipped = if names.len() > 1 { "  (zipped)" } else { "" };
            println!("  {label:<22} {len:>10}  {form}{zipped}");
        }
    }
    println!(
        "points: {}  x  replicates: {}  =  runs: {}",
        plan.points, spec.replicates, plan.runs
    );
    let dt_text = match dts.as_slice() {
        [dt] => format!("dt {dt} ms"),
        _ => format!(
            "dt from {} ms",
            dts.iter().cloned().fold(f64::INFINITY, f64::min)
        ),
    };
    println!(
        "steps per run: {}{steps} ({} ms at {dt_text}, statistics from {} ms), method {}",
        if dts.len() > 1 { "up to " } else { "" },
        spec.duration_ms,
        spec.transient_ms,
        spec.method.name()
    );
    println!("run-steps: {run_steps:.3e}");
    println!(
        "output: summary ~{}, traces ~{} ({trace_rows:.0} rows)",
        human_bytes(summary_bytes),
        human_bytes(trace_bytes)
    );
    if let Some(e) = &trace_limit {
        println!("warning: `run` will refuse this sweep without --force: {e}");
    }
    let time = mpr_sweep::cluster::duration(seconds.clamp(0.0, 1e12));
    let about = if time.starts_with('<') { "" } else { "~" };
    println!(
        "estimated time: {about}{time} on {threads} threads ({} path, ~{:.1} ns per run-step per core)",
        isa.name(),
        ns_per_run_step
    );
    if let Some(report) = &dt_report {
        match report.warning() {
            Some(warning) => print!("{warning}"),
            None => println!("{}", report.all_stable_line()),
        }
    }
    if shards > 1 {
        let (a, b) = shard_runs[0];
        println!(
            "shards: {shards} of about {} runs each (shard 0: runs {a}..{b})",
            b - a
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn human_bytes(b: f64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB", "PB"];
    let mut x = b;
    let mut i = 0;
    while x >= 1000.0 && i + 1 < units.len() {
        x /= 1000.0;
        i += 1;
    }
    format!("{x:.1} {}", units[i])
}
