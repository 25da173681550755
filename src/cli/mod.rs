//! The command line: [`parse`] turns the arguments into a [`Command`] (or prints help), and
//! [`run`] dispatches it to one short function per subcommand, each a thin layer over the
//! library that prints what the library reports.

mod args;

use std::path::Path;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use mpr_sweep::Error;
use mpr_sweep::cluster::{self, SbatchOptions, process_env};
use mpr_sweep::integrate::Isa;
use mpr_sweep::output::{Layout, write_atomic};
use mpr_sweep::plan::{Plan, Shard};
use mpr_sweep::plot::{self, HeatmapArgs, TracesArgs};
use mpr_sweep::run::{
    PlanReport, RunOptions, claim_dir, load_spec, run_with_metadata, stop_on_signals,
};

pub use args::Command;
use args::{Cli, PlotArgs};

/// The subcommand to run, or `None` when clap printed `--help` or `--version`.
pub fn parse() -> Result<Option<Command>, Error> {
    match Cli::try_parse() {
        Ok(cli) => Ok(Some(cli.command)),
        // --help and --version print as clap renders them.
        Err(e) if !e.use_stderr() => {
            e.print().map_err(|source| Error::Io {
                what: "cannot print the help".into(),
                source,
            })?;
            Ok(None)
        }
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let commands: Vec<String> = Cli::command()
                .get_subcommands()
                .map(|c| c.get_name().to_string())
                .filter(|n| n != "help")
                .collect();
            Err(Error::CommandLine(format!(
                "no command given; one of: {} (see mpr-sweep --help)",
                commands.join(", ")
            )))
        }
        // Usage errors: one line, like every other error. clap's message is the paragraph
        // before its usage block.
        Err(e) => {
            let rendered = e.to_string();
            let message: Vec<&str> = rendered
                .lines()
                .map(str::trim)
                .take_while(|l| !l.is_empty() && !l.starts_with("Usage:"))
                .collect();
            let message = message.join(" ");
            let message = message.strip_prefix("error: ").unwrap_or(&message);
            Err(Error::CommandLine(format!(
                "{message} (see mpr-sweep --help)"
            )))
        }
    }
}

/// Runs one subcommand; the exit status on success (`status` exits 1 when incomplete).
pub fn run(command: Option<Command>) -> Result<ExitCode, Error> {
    let Some(command) = command else {
        return Ok(ExitCode::SUCCESS);
    };
    match command {
        Command::Plan { spec, shards, json } => plan(&spec, shards, json),
        Command::Run(args) => run_sweep(args),
        Command::Sbatch(args) => sbatch(args),
        Command::Plot(args) => draw(&args),
        Command::Status {
            dir,
            shards,
            per_task,
            json,
        } => status(&dir, shards, per_task, json),
    }
}

fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `mpr-sweep plan`. Threads assumed: Slurm's allocation inside a job, else the available
/// cores (`run` refuses garbled Slurm variables; `plan` only estimates, so it ignores them).
fn plan(path: &Path, shards: u64, json: bool) -> Result<ExitCode, Error> {
    let spec = load_spec(path)?;
    let plan = Plan::new(&spec)?;
    let threads = cluster::slurm_cpus(&process_env)
        .ok()
        .flatten()
        .unwrap_or_else(available_cores);
    let report = PlanReport::new(&spec, &plan, shards, Isa::detect(), threads);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report.json()).expect("JSON")
        );
    } else {
        print!("{}", report.text());
    }
    Ok(ExitCode::SUCCESS)
}

/// `mpr-sweep run`: the shard and threads from the options, else from Slurm's variables.
fn run_sweep(args: args::RunArgs) -> Result<ExitCode, Error> {
    let spec = load_spec(&args.spec)?;
    Plan::new(&spec)?.check_trace_size(args.force)?;
    let env = process_env;
    // --shard overrides the array task's shard (and its variables are not read).
    let slurm_shard = match args.shard {
        Some(_) => None,
        None => cluster::array_shard(&env)?,
    };
    let threads = match args.threads {
        Some(t) => t as usize,
        None => cluster::slurm_cpus(&env)?.unwrap_or_else(available_cores),
    };
    let slurm_job = cluster::job_label(&env)?;
    let opts = RunOptions {
        out: args.out,
        shard: args.shard.or(slurm_shard).unwrap_or(Shard::WHOLE),
        threads,
        isa: args.isa.resolve()?,
        resume: args.resume,
        overwrite: args.overwrite,
        quiet: args.quiet,
    };
    if !opts.quiet
        && let (Some(s), Some(job)) = (slurm_shard, &slurm_job)
    {
        eprintln!("mpr-sweep: Slurm array task {job}: shard {s}");
    }
    if let Err(e) = stop_on_signals() {
        eprintln!("mpr-sweep: warning: cannot handle SIGINT/SIGTERM: {e}");
    }
    let extra: Vec<(&str, String)> = slurm_job.into_iter().map(|j| ("slurm_job", j)).collect();
    let report = run_with_metadata(&spec, &opts, &extra)?;
    if opts.quiet {
        return Ok(ExitCode::SUCCESS);
    }
    if report.skipped {
        eprintln!(
            "mpr-sweep: shard {} already complete in {}, skipped (--resume)",
            opts.shard,
            opts.out.display()
        );
    } else {
        eprintln!(
            "mpr-sweep: {} runs (shard {}, runs {}..{}) in {:.2} s, {:.3e} run-steps/s on {} threads ({}), {} diverged -> {}",
            report.runs.end - report.runs.start,
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
    Ok(ExitCode::SUCCESS)
}

/// `path` made absolute (the script runs from another directory).
fn absolute(path: &Path, what: &str) -> Result<std::path::PathBuf, Error> {
    std::path::absolute(path).map_err(|source| Error::Io {
        what: format!("{what} {}: cannot make it absolute", path.display()),
        source,
    })
}

/// `mpr-sweep sbatch`: prints the script on stdout and the notes on stderr.
fn sbatch(args: args::SbatchArgs) -> Result<ExitCode, Error> {
    let spec = load_spec(&args.spec)?;
    let spec_path = match std::fs::canonicalize(&args.spec) {
        Ok(p) => p,
        Err(_) => absolute(&args.spec, "SPEC")?,
    };
    let exe = std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .map_err(|source| Error::Io {
            what: "cannot locate the mpr-sweep binary".into(),
            source,
        })?;
    let opts = SbatchOptions {
        exe,
        spec_path,
        out: absolute(&args.out, "--out")?,
        shards: args.shards,
        cpus_per_task: args.cpus_per_task,
        time: args.time,
        partition: args.partition,
        max_running: args.max_running,
        max_array_size: args.max_array_size,
        job_name: args.job_name,
        extra: args.extra.clone(),
    };
    let script = cluster::sbatch_script(&spec, &opts)?;
    let layout = Layout::new(&opts.out);
    claim_dir(&spec, &layout, false)?;
    if cluster::create_log_dir(&opts.out)? {
        eprintln!(
            "mpr-sweep: created {} for the array tasks' logs",
            layout.logs_dir().display()
        );
    }
    for note in &script.notes {
        eprintln!("{note}");
    }
    if !args.submit {
        print!("{}", script.text);
        return Ok(ExitCode::SUCCESS);
    }
    let job_script = layout.job_script();
    write_atomic(&job_script, script.text.as_bytes())?;
    let job = cluster::submit(&job_script)?;
    eprintln!(
        "mpr-sweep: submitted {} as job {job} ({} array task(s)); check it with: mpr-sweep status {}",
        job_script.display(),
        script.tasks,
        cluster::shell_quote(&opts.out.to_string_lossy())
    );
    println!("{job}");
    Ok(ExitCode::SUCCESS)
}

/// `mpr-sweep plot`: draws the heatmap or the traces and reports on stderr.
fn draw(args: &PlotArgs) -> Result<ExitCode, Error> {
    if let Some(runs) = &args.traces {
        let t = TracesArgs {
            runs: runs.clone(),
            width: args.width,
            height: args.height,
        };
        let s = plot::traces(&args.dir, &t, &args.out)?;
        eprintln!(
            "mpr-sweep: {}: r_hz(t) and v(t) of {} run(s), {} trace rows",
            s.out.display(),
            s.runs.len(),
            s.runs.iter().map(|r| r.1).sum::<usize>()
        );
        return Ok(ExitCode::SUCCESS);
    }
    // clap requires all three without --traces.
    let (Some(x), Some(y), Some(color)) = (&args.x, &args.y, &args.color) else {
        return Err(Error::CommandLine(
            "plot: give --x, --y and --color, or --traces RUN_IDS".into(),
        ));
    };
    let h = HeatmapArgs {
        x: x.clone(),
        y: y.clone(),
        color: color.clone(),
        filters: args.filters.clone(),
        agg: args.agg,
        width: args.width,
        height: args.height,
    };
    let s = plot::heatmap(&args.dir, &h, &args.out)?;
    let empty = s.values.iter().filter(|v| v.is_nan()).count();
    eprintln!(
        "mpr-sweep: {}: {} over {} ({}) x {} ({}) from {} runs, {} to {}{}",
        s.out.display(),
        h.color,
        h.x,
        s.x_values.len(),
        h.y,
        s.y_values.len(),
        s.rows,
        plot::fmt_value(s.range.0),
        plot::fmt_value(s.range.1),
        if empty > 0 {
            format!(", {empty} cell(s) without a value (grey)")
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// `mpr-sweep status`: exit 0 when complete, 1 when not.
fn status(dir: &Path, shards: Option<u64>, per_task: u64, json: bool) -> Result<ExitCode, Error> {
    let status = cluster::dir_status(dir, shards, per_task)?;
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
