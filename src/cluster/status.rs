//! The result-directory check of `mpr-sweep status`: complete, missing and corrupt parts,
//! temporary files, and the `--array` list that resubmits what is missing.

use std::fmt::Write as _;
use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::ClusterError;
use super::sbatch::{array_list, shell_quote};
use crate::output::{Layout, PartMismatch, TableKind, check_part, spec_sha256};
use crate::plan::estimate::clock;
use crate::plan::{Plan, Shard};

/// The state of one part file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartState {
    /// Present and reads back as this shard's part.
    Complete,
    /// Not written (yet).
    Missing,
    /// A final-named file that does not read back as this shard's part; the reason.
    Corrupt(PartMismatch),
}

/// One shard of a result directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardStatus {
    /// The shard's index, `0..N`.
    pub index: u64,
    /// The run ids the shard holds.
    pub runs: Range<u64>,
    /// The state of its part of each table the spec's results hold, the summary first.
    pub tables: Vec<(TableKind, PartState)>,
}

impl ShardStatus {
    /// Whether every one of its parts is complete.
    pub fn is_complete(&self) -> bool {
        self.tables.iter().all(|(_, s)| *s == PartState::Complete)
    }

    /// Whether one of its parts is corrupt.
    pub fn is_corrupt(&self) -> bool {
        self.tables
            .iter()
            .any(|(_, s)| matches!(s, PartState::Corrupt(_)))
    }

    /// The state of its part of `table`, if the results hold that table.
    pub fn part(&self, table: TableKind) -> Option<&PartState> {
        self.tables
            .iter()
            .find(|(t, _)| *t == table)
            .map(|(_, s)| s)
    }
}

/// A temporary file of a part being written (by a running task, or left by a killed one).
#[derive(Debug, Clone, PartialEq)]
pub struct TempFile {
    /// Where the file is.
    pub path: PathBuf,
    /// The id of the process that wrote it (from the file name).
    pub pid: Option<u32>,
    /// Its size in bytes.
    pub bytes: u64,
    /// Seconds since its last modification.
    pub age_s: Option<f64>,
}

/// What `mpr-sweep status` found in a result directory.
#[derive(Debug, Clone)]
pub struct DirStatus {
    /// The result directory.
    pub dir: PathBuf,
    /// The spec's `name`, if it has one.
    pub name: Option<String>,
    /// SHA-256 of the spec text, hex.
    pub spec_sha256: String,
    /// Runs in the whole sweep.
    pub runs: u64,
    /// Whether the spec asks for traces.
    pub traces: bool,
    /// `None` when nothing was written yet and no `--shards` was given.
    pub shards: Option<u64>,
    /// Shards per array task, as in the script of `mpr-sweep sbatch` (1 unless packed).
    pub per_task: u64,
    /// Every shard, by index; empty when `shards` is `None`.
    pub parts: Vec<ShardStatus>,
    /// Temporary files of parts (and of the spec copy) being written or left behind.
    pub temp_files: Vec<TempFile>,
    /// Files in summary/ or traces/ named like parts but not of this layout.
    pub unexpected: Vec<PathBuf>,
    /// `DIR/job.sh` when `sbatch --submit` wrote it: the script to resubmit with.
    pub job_script: Option<PathBuf>,
}

/// `part-00003-of-00016.parquet` → shard 3 of 16.
pub fn parse_part_name(name: &str) -> Option<Shard> {
    let rest = name.strip_prefix("part-")?.strip_suffix(".parquet")?;
    let (i, n) = rest.split_once("-of-")?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(i) || !digits(n) {
        return None;
    }
    Some(Shard {
        index: i.parse().ok()?,
        count: n.parse().ok()?,
    })
}

/// `.part-00003-of-00016.parquet.tmp-4242` (see `output::PartFile`) → the PID.
pub fn parse_temp_name(name: &str) -> Option<(Option<Shard>, Option<u32>)> {
    let rest = name.strip_prefix('.')?;
    let (final_name, pid) = rest.rsplit_once(".tmp-")?;
    Some((parse_part_name(final_name), pid.parse().ok()))
}

/// Checks a result directory: which parts are complete, missing or corrupt.
/// `shards` gives N when no part exists yet; `per_task` maps shards to array tasks of a
/// packed script (see [`super::sbatch_script`]).
pub fn dir_status(
    dir: &Path,
    shards: Option<u64>,
    per_task: u64,
) -> Result<DirStatus, ClusterError> {
    let layout = Layout::new(dir);
    let not_dir = |why: String| ClusterError::NotResultDir {
        dir: dir.to_path_buf(),
        why,
    };
    if !dir.is_dir() {
        return Err(not_dir("no such directory".into()));
    }
    let text = match fs::read(layout.spec()) {
        Ok(bytes) => {
            String::from_utf8(bytes).map_err(|_| not_dir("spec.yaml is not UTF-8".into()))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(not_dir("no spec.yaml".into()));
        }
        Err(e) => return Err(not_dir(format!("cannot read spec.yaml: {e}"))),
    };
    let mut spec = crate::spec::parse(&text).map_err(|e| not_dir(format!("spec.yaml: {e}")))?;
    // A network sweep's parts must come from the files the directory's spec names (relative
    // paths resolve in DIR, where `run` copies them).
    spec.load_files(dir)
        .map_err(|e| ClusterError::NetworkFiles {
            dir: dir.to_path_buf(),
            why: e.to_string(),
        })?;
    let network_sha = spec.network_data().map(|d| d.sha256.clone());
    let plan = Plan::new(&spec)?;
    if shards == Some(0) {
        return Err(ClusterError::Option("--shards must be at least 1".into()));
    }
    if per_task == 0 {
        return Err(ClusterError::Option("--per-task must be at least 1".into()));
    }
    let sha = spec_sha256(&spec.text);
    let traces = spec.traces.is_some();
    let tables = TableKind::of(&spec);

    // Part names, temporary files, and the shard counts present.
    let mut counts: Vec<(u64, PathBuf)> = Vec::new();
    let mut temp_files = Vec::new();
    let now = SystemTime::now();
    let mut scan = |d: &Path, counts: &mut Vec<(u64, PathBuf)>| -> Result<(), ClusterError> {
        let entries = match fs::read_dir(d) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(not_dir(format!("cannot read {}: {e}", d.display()))),
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(shard) = parse_part_name(&name) {
                counts.push((shard.count, entry.path()));
            } else if let Some((_, pid)) = parse_temp_name(&name) {
                let meta = entry.metadata().ok();
                temp_files.push(TempFile {
                    path: entry.path(),
                    pid,
                    bytes: meta.as_ref().map_or(0, |m| m.len()),
                    age_s: meta
                        .and_then(|m| m.modified().ok())
                        .and_then(|t| now.duration_since(t).ok())
                        .map(|d| d.as_secs_f64()),
                });
            }
        }
        Ok(())
    };
    for &table in &tables {
        scan(&layout.table_dir(table), &mut counts)?;
    }
    // The spec's own temporary file (`.spec.yaml.tmp-PID`).
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix(".spec.yaml.tmp-") {
                temp_files.push(TempFile {
                    path: entry.path(),
                    pid: pid.parse().ok(),
                    bytes: entry.metadata().map_or(0, |m| m.len()),
                    age_s: None,
                });
            }
        }
    }
    temp_files.sort_by(|a, b| a.path.cmp(&b.path));
    let mut present: Vec<u64> = counts.iter().map(|(n, _)| *n).collect();
    present.sort_unstable();
    present.dedup();
    let n = match (shards, present.as_slice()) {
        (Some(n), []) => Some(n),
        (Some(n), [m]) if *m == n => Some(n),
        (None, []) => None,
        (None, [m]) => Some(*m),
        (given, found) => {
            let listed: Vec<String> = found
                .iter()
                .map(|m| {
                    let k = counts.iter().filter(|(c, _)| c == m).count();
                    format!("{k} part file(s) of {m} shards")
                })
                .collect();
            return Err(ClusterError::Option(format!(
                "{}: mixed shard counts: {}{}; a result directory holds one --shard I/N layout (remove the stray parts, or rerun with --overwrite)",
                dir.display(),
                listed.join(", "),
                given.map_or(String::new(), |g| format!(", but --shards {g} was given"))
            )));
        }
    };
    let mut unexpected = Vec::new();
    let mut parts = Vec::new();
    if let Some(n) = n {
        for (count, path) in &counts {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if *count == n && parse_part_name(&name).is_some_and(|s| s.index >= n) {
                unexpected.push(path.clone());
            }
        }
        unexpected.sort();
        for index in 0..n {
            let shard = Shard { index, count: n };
            let runs = plan.shard_range(shard);
            let state = |table: TableKind| {
                let path = layout.part(table, shard);
                if !path.exists() {
                    PartState::Missing
                } else {
                    let summary = table == TableKind::Summary;
                    let expected = (sha.as_str(), network_sha.as_deref());
                    match check_part(&path, expected, shard, &runs, summary) {
                        Ok(()) => PartState::Complete,
                        Err(mismatch) => PartState::Corrupt(mismatch),
                    }
                }
            };
            parts.push(ShardStatus {
                index,
                runs: runs.clone(),
                tables: tables.iter().map(|&t| (t, state(t))).collect(),
            });
        }
    }
    Ok(DirStatus {
        dir: dir.to_path_buf(),
        name: spec.name.clone(),
        spec_sha256: sha,
        runs: plan.runs,
        traces,
        shards: n,
        per_task,
        parts,
        temp_files,
        unexpected,
        job_script: Some(layout.job_script()).filter(|p| p.is_file()),
    })
}

impl DirStatus {
    /// Every shard's parts are complete (and nothing stray sits beside them).
    pub fn is_complete(&self) -> bool {
        self.shards.is_some()
            && self.parts.iter().all(ShardStatus::is_complete)
            && self.unexpected.is_empty()
    }

    /// Whether a part was computed from other contents of the network files than
    /// `DIR/spec.yaml` names: `run` refuses the directory (resubmitting cannot help) until
    /// the files are restored or `--overwrite` recomputes every shard.
    pub fn other_network_files(&self) -> bool {
        self.parts.iter().any(|p| {
            p.tables
                .iter()
                .any(|(_, s)| matches!(s, PartState::Corrupt(PartMismatch::OtherNetwork(_))))
        })
    }

    /// Shards that are missing or corrupt.
    pub fn todo(&self) -> Vec<u64> {
        self.parts
            .iter()
            .filter(|p| !p.is_complete())
            .map(|p| p.index)
            .collect()
    }

    /// The `--array=` list that reruns exactly the shards to do (their array tasks).
    pub fn array(&self) -> String {
        let tasks: Vec<u64> = self.todo().iter().map(|i| i / self.per_task).collect();
        array_list(&tasks)
    }

    /// Files to delete before resubmitting: `run --resume` skips a shard whose summary part
    /// exists, so a corrupt part, and the summary of a shard whose traces are missing or
    /// corrupt, must go first.
    /// Files to delete before resubmitting: parts of another shard count, which readers
    /// would count twice. (Corrupt parts need no deleting: `run --resume` checks a part
    /// before skipping it and rewrites one that does not read back.)
    pub fn to_remove(&self) -> Vec<PathBuf> {
        self.unexpected.clone()
    }

    fn relative<'a>(&self, p: &'a Path) -> std::borrow::Cow<'a, str> {
        match p.strip_prefix(&self.dir) {
            Ok(r) => r.to_string_lossy(),
            Err(_) => p.to_string_lossy(),
        }
    }

    /// The report of `mpr-sweep status`.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let w = &mut s;
        let n = self.shards;
        let _ = writeln!(
            w,
            "{}: sweep {}, {} runs{}, spec sha256 {}",
            self.dir.display(),
            self.name
                .as_deref()
                .map_or("(unnamed)".to_string(), |n| format!("{n:?}")),
            self.runs,
            n.map_or(String::new(), |n| format!(" in {n} shards")),
            &self.spec_sha256[..12]
        );
        let Some(n) = n else {
            let _ = writeln!(
                w,
                "no parts written yet: give --shards N to list the array tasks to submit"
            );
            self.write_temps(w);
            return s;
        };
        let complete: Vec<&ShardStatus> = self.parts.iter().filter(|p| p.is_complete()).collect();
        let done_runs: u64 = complete.iter().map(|p| p.runs.end - p.runs.start).sum();
        let idx = |ps: &[&ShardStatus]| array_list(&ps.iter().map(|p| p.index).collect::<Vec<_>>());
        let _ = writeln!(
            w,
            "complete: {} of {n} shards{}, {done_runs} of {} runs",
            complete.len(),
            if complete.is_empty() {
                String::new()
            } else {
                format!(" ({})", idx(&complete))
            },
            self.runs
        );
        let missing: Vec<&ShardStatus> = self
            .parts
            .iter()
            .filter(|p| !p.is_complete() && !p.is_corrupt())
            .collect();
        let corrupt: Vec<&ShardStatus> = self.parts.iter().filter(|p| p.is_corrupt()).collect();
        let _ = writeln!(
            w,
            "missing:  {} shard(s){}",
            missing.len(),
            if missing.is_empty() {
                String::new()
            } else {
                format!(" ({})", idx(&missing))
            }
        );
        for p in missing.iter().take(50) {
            // Which parts a partly written shard has and lacks.
            let names = |complete: bool| -> Vec<&str> {
                p.tables
                    .iter()
                    .filter(|(_, s)| (*s == PartState::Complete) == complete)
                    .map(|(t, _)| t.name())
                    .collect()
            };
            let (written, lacking) = (names(true), names(false));
            let what = if written.is_empty() {
                String::new()
            } else {
                format!(
                    " ({} written, {} missing)",
                    written.join(", "),
                    lacking.join(", ")
                )
            };
            let writing = if self.temp_files.iter().any(|t| {
                t.path
                    .file_name()
                    .and_then(|n| parse_temp_name(&n.to_string_lossy()))
                    .is_some_and(|(s, _)| s.is_some_and(|s| s.index == p.index))
            }) {
                " (a temporary file exists: a task may be writing it)"
            } else {
                ""
            };
            let _ = writeln!(
                w,
                "  shard {}: runs {}..{}{what}{writing}",
                p.index, p.runs.start, p.runs.end
            );
        }
        if missing.len() > 50 {
            let _ = writeln!(w, "  ... and {} more", missing.len() - 50);
        }
        let _ = writeln!(
            w,
            "corrupt:  {} shard(s){}",
            corrupt.len(),
            if corrupt.is_empty() {
                String::new()
            } else {
                format!(" ({})", idx(&corrupt))
            }
        );
        for p in &corrupt {
            let shard = Shard {
                index: p.index,
                count: n,
            };
            let layout = Layout::new(&self.dir);
            for (table, state) in &p.tables {
                let path = layout.part(*table, shard);
                if let PartState::Corrupt(mismatch) = state {
                    let why = mismatch.why();
                    let _ = writeln!(
                        w,
                        "  shard {}: runs {}..{}: {}: {why}",
                        p.index,
                        p.runs.start,
                        p.runs.end,
                        self.relative(&path)
                    );
                }
            }
        }
        for u in &self.unexpected {
            let _ = writeln!(
                w,
                "unexpected: {} (not a shard of {n}: readers would count its runs twice)",
                self.relative(u)
            );
        }
        self.write_temps(w);
        if !self.todo().is_empty() || !self.unexpected.is_empty() {
            let remove = self.to_remove();
            if !remove.is_empty() {
                let files: Vec<String> = remove
                    .iter()
                    .map(|p| shell_quote(&p.to_string_lossy()))
                    .collect();
                let _ = writeln!(
                    w,
                    "remove these first (parts of another shard count):\n  rm -f {}",
                    files.join(" ")
                );
            }
            if self.other_network_files() {
                let _ = writeln!(
                    w,
                    "parts were computed from other network files than {} names: `run` refuses this directory until those files are restored (the parts' hash is above), or rerun every shard with --overwrite",
                    Layout::new(&self.dir).spec().display()
                );
            } else if !self.todo().is_empty() {
                let _ = writeln!(
                    w,
                    "resubmit the missing and corrupt shards{}:\n  sbatch --array={} {}",
                    if self.per_task > 1 {
                        format!(" (array tasks of {} shards each)", self.per_task)
                    } else {
                        String::new()
                    },
                    self.array(),
                    self.job_script
                        .as_ref()
                        .map_or("job.sh".into(), |p| shell_quote(&p.to_string_lossy()))
                );
            }
        }
        s
    }

    fn write_temps(&self, w: &mut String) {
        if self.temp_files.is_empty() {
            return;
        }
        let _ = writeln!(
            w,
            "temporary files: {} (a running task's part in progress, or left by a killed task: delete them when no task runs)",
            self.temp_files.len()
        );
        for t in &self.temp_files {
            let _ = writeln!(
                w,
                "  {} ({} bytes{}{})",
                self.relative(&t.path),
                t.bytes,
                t.pid.map_or(String::new(), |p| format!(", pid {p}")),
                t.age_s
                    .map_or(String::new(), |a| format!(", modified {} ago", clock(a)))
            );
        }
    }

    /// The report as JSON.
    pub fn json(&self) -> serde_json::Value {
        let state = |s: &PartState| match s {
            PartState::Complete => serde_json::json!({"state": "complete"}),
            PartState::Missing => serde_json::json!({"state": "missing"}),
            PartState::Corrupt(m) => serde_json::json!({
                "state": "corrupt",
                "reason": m.why(),
                "other_network_files": matches!(m, PartMismatch::OtherNetwork(_)),
            }),
        };
        let indices = |f: &dyn Fn(&ShardStatus) -> bool| -> Vec<u64> {
            self.parts
                .iter()
                .filter(|p| f(p))
                .map(|p| p.index)
                .collect()
        };
        serde_json::json!({
            "dir": self.dir,
            "name": self.name,
            "spec_sha256": self.spec_sha256,
            "runs": self.runs,
            "traces": self.traces,
            "shards": self.shards,
            "per_task": self.per_task,
            "complete": self.is_complete(),
            "complete_shards": indices(&|p| p.is_complete()),
            "missing_shards": indices(&|p| !p.is_complete() && !p.is_corrupt()),
            "corrupt_shards": indices(&|p| p.is_corrupt()),
            "other_network_files": self.other_network_files(),
            "array": self.array(),
            "job_script": self.job_script,
            "remove": self.to_remove(),
            "unexpected": self.unexpected,
            "temporary_files": self.temp_files.iter().map(|t| serde_json::json!({
                "path": t.path, "pid": t.pid, "bytes": t.bytes, "age_s": t.age_s,
            })).collect::<Vec<_>>(),
            "parts": self.parts.iter().map(|p| serde_json::json!({
                "shard": p.index,
                "runs": [p.runs.start, p.runs.end],
                "complete": p.is_complete(),
                "summary": p.part(TableKind::Summary).map(state),
                "traces": p.part(TableKind::Traces).map(state),
                "nodes": p.part(TableKind::Nodes).map(state),
                "fc": p.part(TableKind::Fc).map(state),
            })).collect::<Vec<_>>(),
        })
    }
}
