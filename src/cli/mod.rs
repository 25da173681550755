//! The command line of `mpr-sweep`, shared by the binary and the Python package's
//! `mpr-sweep` command: [`main`] parses the arguments into a [`Command`] (or prints help),
//! dispatches it to one short function per subcommand, each a thin layer over the library
//! that prints what the library reports, and gives the exit status.

mod args;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::Error;
use crate::cluster::{self, SbatchOptions, process_env};
use crate::integrate::Isa;
use crate::output::{Layout, write_atomic};
use crate::plan::{Plan, Shard};
use crate::plot::{self, HeatmapArgs, TracesArgs};
use crate::run::{
    Destination, PlanReport, RunOptions, claim_dir, load_spec, run_with_metadata, stop_on_signals,
};
use clap::{CommandFactory, Parser, ValueEnum};

use args::Command;
use args::{Cli, PlotArgs};

/// Exit status of success.
const SUCCESS: u8 = 0;

/// Runs the command line `args` (the program name first) and returns the exit status: 0
/// success, 2 bad spec or usage, 1 failure while running (or `status` of an incomplete
/// directory), 128 + N after signal N. `exe` is the command that `sbatch` scripts run
/// (default: this process's executable).
pub fn main<I, T>(args: I, exe: Option<PathBuf>) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    match parse(args).and_then(|command| run(command, exe)) {
        Ok(code) => code,
        Err(e) => {
            // Our error messages already carry their causes: print each once.
            eprintln!("mpr-sweep: error: {e}");
            e.exit_code() as u8
        }
    }
}

/// The subcommand to run, or `None` when clap printed `--help` or `--version`.
fn parse<I, T>(args: I) -> Result<Option<Command>, Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    match Cli::try_parse_from(args) {
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
fn run(command: Option<Command>, exe: Option<PathBuf>) -> Result<u8, Error> {
    let Some(command) = command else {
        return Ok(SUCCESS);
    };
    match command {
        Command::Plan { spec, shards, json } => plan(&spec, shards, json),
        Command::Run(args) => run_sweep(args),
        Command::Sbatch(args) => sbatch(args, exe),
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

/// The kernel path named as `--isa` takes it (`auto`, `portable`, `avx2`), if this CPU can
/// run it.
pub fn resolve_isa(name: &str) -> Result<Isa, Error> {
    let choices: Vec<String> = args::IsaChoice::value_variants()
        .iter()
        .filter_map(|c| c.to_possible_value().map(|v| v.get_name().to_string()))
        .collect();
    args::IsaChoice::from_str(name, false)
        .map_err(|_| {
            Error::CommandLine(format!(
                "isa: unknown path {name:?}; one of: {}",
                choices.join(", ")
            ))
        })?
        .resolve()
}

/// `mpr-sweep plan`. Threads assumed: Slurm's allocation inside a job, else the available
/// cores (`run` refuses garbled Slurm variables; `plan` only estimates, so it ignores them).
fn plan(path: &Path, shards: u64, json: bool) -> Result<u8, Error> {
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
    Ok(SUCCESS)
}

/// `mpr-sweep run`: the shard and threads from the options, else from Slurm's variables.
fn run_sweep(args: args::RunArgs) -> Result<u8, Error> {
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
    let out = args.out;
    let opts = RunOptions {
        out: Destination::Dir(out.clone()),
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
        return Ok(SUCCESS);
    }
    if report.skipped {
        eprintln!(
            "mpr-sweep: shard {} already complete in {}, skipped (--resume)",
            opts.shard,
            out.display()
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
            out.display()
        );
    }
    Ok(SUCCESS)
}

/// `path` made absolute (the script runs from another directory).
fn absolute(path: &Path, what: &str) -> Result<PathBuf, Error> {
    std::path::absolute(path).map_err(|source| Error::Io {
        what: format!("{what} {}: cannot make it absolute", path.display()),
        source,
    })
}

/// `mpr-sweep sbatch`: prints the script on stdout and the notes on stderr.
fn sbatch(args: args::SbatchArgs, exe: Option<PathBuf>) -> Result<u8, Error> {
    let spec = load_spec(&args.spec)?;
    let spec_path = match std::fs::canonicalize(&args.spec) {
        Ok(p) => p,
        Err(_) => absolute(&args.spec, "SPEC")?,
    };
    let exe = exe
        .map_or_else(std::env::current_exe, Ok)
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
        return Ok(SUCCESS);
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
    Ok(SUCCESS)
}

/// `mpr-sweep plot`: draws the heatmap, the traces or a network run's FC and reports on
/// stderr.
fn draw(args: &PlotArgs) -> Result<u8, Error> {
    if let Some(run) = args.fc {
        let s = plot::fc(&args.dir, run, (args.width, args.height), &args.out)?;
        eprintln!(
            "mpr-sweep: {}: FC of run {run}, {} nodes",
            s.out.display(),
            s.x_values.len()
        );
        return Ok(SUCCESS);
    }
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
        return Ok(SUCCESS);
    }
    // clap requires all three without --traces.
    let (Some(x), Some(y), Some(color)) = (&args.x, &args.y, &args.color) else {
        return Err(Error::CommandLine(
            "plot: give --x, --y and --color, --traces RUN_IDS, or --fc RUN_ID".into(),
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
    Ok(SUCCESS)
}

/// `mpr-sweep status`: exit 0 when complete, 1 when not.
fn status(dir: &Path, shards: Option<u64>, per_task: u64, json: bool) -> Result<u8, Error> {
    let status = cluster::dir_status(dir, shards, per_task)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&status.json()).expect("JSON")
        );
    } else {
        print!("{}", status.text());
    }
    Ok(if status.is_complete() { SUCCESS } else { 1 })
}
