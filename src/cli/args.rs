//! The command line as clap parses it: one variant per subcommand, each field an option
//! with its help text and range. Nothing here runs anything.

use std::path::PathBuf;

use crate::Error;
use crate::cluster::DEFAULT_MAX_ARRAY_SIZE;
use crate::integrate::Isa;
use crate::plan::Shard;
use crate::plot::Agg;
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "mpr-sweep",
    version,
    about = "Parameter sweeps of the Montbrió–Pazó–Roxin neural mass model, to Parquet"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
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
    Run(RunArgs),
    /// Print a Slurm sbatch script that runs the sweep as a job array, one shard per task.
    Sbatch(SbatchArgs),
    /// Draw a heatmap PNG of a summary column over two parameters, or r_hz(t) and v(t) of
    /// traced runs (--traces).
    Plot(PlotArgs),
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

/// Arguments of `mpr-sweep run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The sweep spec (YAML).
    pub spec: PathBuf,
    /// Result directory.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Run only shard I of N (0-based), e.g. 3/16 [default inside a Slurm array task:
    /// (SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN) / SLURM_ARRAY_TASK_STEP of
    /// SLURM_ARRAY_TASK_COUNT, else the whole sweep].
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// Worker threads [default: SLURM_CPUS_PER_TASK, else SLURM_CPUS_ON_NODE, else all cores].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..1025))]
    pub threads: Option<u64>,
    /// Instruction-set path of the kernel.
    #[arg(long, value_enum, default_value_t = IsaChoice::Auto)]
    pub isa: IsaChoice,
    /// Skip the shard if its part is already complete.
    #[arg(long)]
    pub resume: bool,
    /// Replace results in DIR, even of another spec.
    #[arg(long)]
    pub overwrite: bool,
    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
    /// Run even if the traces exceed the size limit (1e9 rows, about 16 GB).
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `mpr-sweep sbatch`.
#[derive(Debug, clap::Args)]
pub struct SbatchArgs {
    /// The sweep spec (YAML).
    pub spec: PathBuf,
    /// Result directory (logs go to DIR/logs).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Number of shards (parts); task i of the array runs shard i.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub shards: u64,
    /// CPUs (and threads) per array task.
    #[arg(long, value_name = "C", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub cpus_per_task: u64,
    /// Time limit per task: HH:MM:SS, D-HH:MM:SS or another Slurm form [default: the
    /// partition's].
    #[arg(long, value_name = "HH:MM:SS")]
    pub time: Option<String>,
    /// Slurm partition [default: the cluster's default partition].
    #[arg(long, value_name = "P")]
    pub partition: Option<String>,
    /// Run at most K tasks at once (`--array=...%K`).
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_running: Option<u64>,
    /// The cluster's MaxArraySize: with more shards, each task runs several in turn.
    #[arg(long, value_name = "M", default_value_t = DEFAULT_MAX_ARRAY_SIZE, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_array_size: u64,
    /// Job name [default: mpr-<spec name>].
    #[arg(long, value_name = "NAME")]
    pub job_name: Option<String>,
    /// Further sbatch options, one #SBATCH line each time given (e.g. "--mem=2G").
    #[arg(long, value_name = "OPTIONS", allow_hyphen_values = true)]
    pub extra: Vec<String>,
    /// Write the script to DIR/job.sh, submit it with `sbatch --parsable` and print the
    /// job id (instead of printing the script).
    #[arg(long)]
    pub submit: bool,
}

/// `--isa`: the kernel path.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum IsaChoice {
    Auto,
    Portable,
    Avx2,
    Avx512,
}

impl IsaChoice {
    /// The path asked for, if this CPU can run it.
    pub fn resolve(self) -> Result<Isa, Error> {
        let (isa, name) = match self {
            IsaChoice::Auto => return Ok(Isa::detect()),
            IsaChoice::Portable => (Isa::Portable, "portable"),
            IsaChoice::Avx2 => (Isa::Avx2Fma, "avx2"),
            IsaChoice::Avx512 => (Isa::Avx512, "avx512"),
        };
        if isa.is_available() {
            Ok(isa)
        } else {
            Err(Error::IsaUnavailable {
                isa: name,
                features: isa.features(),
            })
        }
    }
}

/// Arguments of `mpr-sweep plot`.
#[derive(Debug, Clone, clap::Args)]
pub struct PlotArgs {
    /// Result directory (written by `mpr-sweep run`).
    pub dir: PathBuf,
    /// Summary column on the horizontal axis (e.g. eta).
    #[arg(
        long,
        value_name = "COLUMN",
        required_unless_present_any = ["traces", "fc"],
        conflicts_with_all = ["traces", "fc"]
    )]
    pub x: Option<String>,
    /// Summary column on the vertical axis (e.g. J).
    #[arg(
        long,
        value_name = "COLUMN",
        required_unless_present_any = ["traces", "fc"],
        conflicts_with_all = ["traces", "fc"]
    )]
    pub y: Option<String>,
    /// Numeric or boolean summary column shown by colour (e.g. r_hz_mean; diverged plots
    /// as 0/1; the string column fp_settled is refused, filter on it with --where).
    #[arg(
        long,
        value_name = "COLUMN",
        required_unless_present_any = ["traces", "fc"],
        conflicts_with_all = ["traces", "fc"]
    )]
    pub color: Option<String>,
    /// Keep only runs with COLUMN = VALUE (numbers match within 1e-9 relative; true/false
    /// for diverged; text for fp_settled); comma-separated or repeated, all must hold.
    #[arg(
        long = "where",
        value_name = "COLUMN=VALUE",
        value_delimiter = ',',
        conflicts_with_all = ["traces", "fc"]
    )]
    pub filters: Vec<String>,
    /// How the runs that share an (x, y) cell combine (replicates, axes not filtered);
    /// nulls are skipped, std has ddof = 1.
    #[arg(long, default_value = "mean", value_parser = parse_agg, conflicts_with_all = ["traces", "fc"])]
    pub agg: Agg,
    /// Instead of a heatmap, draw r_hz(t) and v(t) of these runs from DIR/traces
    /// (e.g. 0,17,42).
    #[arg(
        long,
        value_name = "RUN_IDS",
        value_delimiter = ',',
        conflicts_with = "fc"
    )]
    pub traces: Option<Vec<u64>>,
    /// Instead of a heatmap, draw the FC matrix of this network run from DIR/fc.
    #[arg(long, value_name = "RUN_ID")]
    pub fc: Option<u64>,
    /// Output file (PNG).
    #[arg(short = 'o', long = "out", value_name = "PNG")]
    pub out: PathBuf,
    /// Image width in pixels.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(200..=8000))]
    pub width: u32,
    /// Image height in pixels.
    #[arg(long, default_value_t = 800, value_parser = clap::value_parser!(u32).range(200..=8000))]
    pub height: u32,
}

/// `--agg NAME`, one of [`Agg::ALL`].
fn parse_agg(name: &str) -> Result<Agg, String> {
    Agg::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Agg::ALL.iter().map(|a| a.name()).collect();
        format!("expected one of: {}", names.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct Wrap {
        #[command(flatten)]
        plot: PlotArgs,
    }

    #[test]
    fn command_line() {
        use clap::Parser;
        let w = Wrap::try_parse_from([
            "plot",
            "DIR",
            "--x",
            "eta",
            "--y",
            "J",
            "--color",
            "r_hz_mean",
            "--where",
            "delta=1,init_r_hz=1000",
            "--where",
            "noise_v_sigma=0",
            "--agg",
            "median",
            "-o",
            "map.png",
        ])
        .unwrap();
        assert_eq!(
            w.plot.filters,
            ["delta=1", "init_r_hz=1000", "noise_v_sigma=0"]
        );
        assert_eq!(w.plot.agg, Agg::Median);
        assert_eq!(w.plot.traces, None);
        let w =
            Wrap::try_parse_from(["plot", "DIR", "--traces", "0,17,42", "-o", "t.png"]).unwrap();
        assert_eq!(w.plot.traces, Some(vec![0, 17, 42]));
        assert!(Wrap::try_parse_from(["plot", "DIR", "-o", "t.png"]).is_err());
        assert!(
            Wrap::try_parse_from(["plot", "DIR", "--traces", "1", "--x", "eta", "-o", "t.png"])
                .is_err()
        );
        assert!(Wrap::try_parse_from(["plot", "DIR", "--x", "eta", "-o", "t.png"]).is_err());
    }
}
