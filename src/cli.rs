//! Command-line definitions and the `plan` and `run` commands.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use mpr_sweep::integrate::Isa;
use mpr_sweep::plan::{Plan, Shard};
use mpr_sweep::run::{RunOptions, run};
use mpr_sweep::spec::{self, Spec};
use mpr_sweep::{Error, progress};

/// Cost used for time estimates: measured ns per run-step per core on the AVX2 path
/// (see README "Performance"); the portable path is about three times slower.
const NS_PER_RUN_STEP: f64 = 2.5;

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
        /// Run only shard I of N (0-based), e.g. 3/16.
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
    match Cli::parse().command {
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
        } => {
            let spec = read_spec(&spec)?;
            let opts = RunOptions {
                out,
                shard: shard.unwrap_or(Shard::WHOLE),
                threads: threads.map_or_else(default_threads, |t| t as usize),
                isa: isa.resolve()?,
                resume,
                overwrite,
                quiet,
            };
            let report = run(&spec, &opts)?;
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
    }
}

fn read_spec(path: &Path) -> Result<Spec, Error> {
    let text = std::fs::read(path)
        .map_err(|e| Error::Usage(format!("{}: cannot read spec: {e}", path.display())))?;
    let text = String::from_utf8(text)
        .map_err(|_| Error::Usage(format!("{}: the spec is not UTF-8 text", path.display())))?;
    spec::parse(&text).map_err(|e| Error::Usage(format!("{}: {e}", path.display())))
}

/// Threads for `run`: Slurm's allocation when inside a job, else the available cores.
fn default_threads() -> usize {
    ["SLURM_CPUS_PER_TASK", "SLURM_CPUS_ON_NODE"]
        .iter()
        .find_map(|k| {
            std::env::var(k)
                .ok()?
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
        })
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn plan(path: &Path, shards: u64, json: bool) -> Result<ExitCode> {
    let spec = read_spec(path)?;
    let plan = Plan::new(&spec).map_err(Error::from)?;
    let threads = default_threads();
    let isa = Isa::detect();
    let dts = spec.dt_values();
    let steps = spec.max_steps();
    // Each dt value gets an equal share of the runs (exact for a product grid).
    let mean_steps = dts
        .iter()
        .map(|&dt| spec.timing(dt).steps as f64)
        .sum::<f64>()
        / dts.len() as f64;
    let run_steps = plan.runs as f64 * mean_steps;
    let slowdown = if isa == Isa::Avx2Fma { 1.0 } else { 3.0 };
    let seconds = run_steps * NS_PER_RUN_STEP * slowdown * 1e-9 / threads as f64;
    let summary_cols = 3 + mpr_sweep::output::param_slots(&spec).len() + 2 + 12 + 6;
    // Compressed sizes: measured zstd ratios are about 0.6 (summary) and 0.5 (traces).
    let summary_bytes = plan.runs as f64 * summary_cols as f64 * 8.0 * 0.6;
    let (trace_rows, trace_bytes) = match &spec.traces {
        Some(t) => {
            let stride = spec.timing(dts[0]).trace_stride;
            let steps = spec.timing(dts[0]).steps;
            let traced = match &t.runs {
                spec::TraceRuns::None => 0,
                spec::TraceRuns::All => plan.runs,
                spec::TraceRuns::Every(k) => plan.runs.div_ceil(*k),
                spec::TraceRuns::Ids(ids) => ids.iter().filter(|&&i| i < plan.runs).count() as u64,
            };
            let rows = traced as f64 * (1 + steps / stride) as f64;
            (rows, rows * 32.0 * 0.5)
        }
        None => (0.0, 0.0),
    };
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
            "isa": isa.name(),
            "threads": threads,
            "seconds_estimate": seconds,
            "shards": shards,
            "shard_runs": shard_runs,
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
    println!(
        "estimated time: ~{} on {threads} threads ({} path, ~{:.1} ns per run-step per core)",
        progress::clock(std::time::Duration::from_secs_f64(seconds.clamp(0.0, 1e12))),
        isa.name(),
        NS_PER_RUN_STEP * slowdown
    );
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
