//! `plot --traces`: r_hz(t) and v(t) of chosen runs from the trace parts.

use super::*;

/// Draws r_hz(t) (upper panel) and v(t) (lower panel) of `args.runs` from the traces of the
/// result directory `dir` to the PNG file `out`.
pub fn traces(dir: &Path, args: &TracesArgs, out: &Path) -> Result<TracesSummary, PlotError> {
    check_out(out, args.width, args.height)?;
    let mut runs: Vec<u64> = Vec::new();
    for &r in &args.runs {
        if !runs.contains(&r) {
            runs.push(r);
        }
    }
    if runs.is_empty() {
        return Err(PlotError::BadTraces("give at least one run id".into()));
    }
    if runs.len() > MAX_TRACED_RUNS {
        return Err(PlotError::BadTraces(format!(
            "{} runs asked for, at most {MAX_TRACED_RUNS} fit in one plot",
            runs.len()
        )));
    }
    let summary = summary_parts(dir)?;
    let spec = read_spec(dir);
    let total_runs = spec
        .as_ref()
        .and_then(|s| crate::plan::Plan::new(s).ok())
        .map(|p| p.runs);
    if let Some(total) = total_runs {
        let beyond: Vec<u64> = runs.iter().copied().filter(|&r| r >= total).collect();
        if !beyond.is_empty() {
            return Err(PlotError::NotTraced {
                runs: beyond,
                why: format!(
                    "no such run (the sweep has {total} runs, ids 0 to {})",
                    total.saturating_sub(1)
                ),
            });
        }
    }
    let not_traced = |missing: Vec<u64>, fallback: &str| {
        use crate::spec::TraceRuns;
        let traced = spec.as_ref().map(|s| s.traces.as_ref().map(|t| &t.runs));
        let why = match traced {
            Some(None) => "not traced: the spec has no output.traces".to_string(),
            Some(Some(t)) if missing.iter().any(|&r| t.contains(r)) => {
                format!("not traced: {fallback}")
            }
            Some(Some(TraceRuns::None)) => {
                "not traced: the spec's output.traces.runs is none".to_string()
            }
            Some(Some(TraceRuns::Every(k))) => {
                let nth = match (k % 10, k % 100) {
                    (1, r) if r != 11 => format!("{k}st"),
                    (2, r) if r != 12 => format!("{k}nd"),
                    (3, r) if r != 13 => format!("{k}rd"),
                    _ => format!("{k}th"),
                };
                format!(
                    "not traced: the spec traces every {nth} run (0, {k}, {}, ...)",
                    2 * k
                )
            }
            Some(Some(TraceRuns::Ids(ids))) => {
                format!("not traced: the spec traces runs {}", join_ids(ids))
            }
            _ => format!("not traced: {fallback}"),
        };
        PlotError::NotTraced { runs: missing, why }
    };
    let trace_dir = Layout::new(dir).table_dir(TableKind::Traces);
    let parts = match part_files(&trace_dir) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(PlotError::Io(io_err(&trace_dir)(e))),
    };
    if parts.is_empty() {
        return Err(not_traced(
            runs,
            "this result directory has no traces/ parts",
        ));
    }

    // A network's traces hold one row per node and time: one line per run does not fit.
    if open(&parts[0])?.schema().index_of("node").is_ok() {
        return Err(PlotError::BadTraces(
            "these are a network's traces (one row per run, time and node); plot a run's FC \
             with --fc RUN_ID, or load the traces with pandas (docs/network.md)"
                .into(),
        ));
    }
    // Trace rows of the chosen runs: parts and row groups whose run ids cannot hold them are
    // skipped (the parts' mpr_sweep.runs metadata, the row groups' run_id statistics).
    let wanted = runs.clone();
    let names = [
        ("run_id".to_string(), Kind::Num),
        ("t_ms".to_string(), Kind::Num),
        ("r_hz".to_string(), Kind::Num),
        ("v".to_string(), Kind::Num),
    ];
    let keep = |batch: &RecordBatch| Some(rows_of(batch, &wanted));
    let select = |b: &ParquetRecordBatchReaderBuilder<File>| {
        let meta = b.metadata();
        if let Some(range) = part_runs(meta)
            && !wanted.iter().any(|r| range.contains(r))
        {
            return None;
        }
        let id_col = b.schema().index_of("run_id").ok()?;
        let groups: Vec<usize> = (0..meta.num_row_groups())
            .filter(|&g| match meta.row_group(g).column(id_col).statistics() {
                Some(Statistics::Int64(s)) => match (s.min_opt(), s.max_opt()) {
                    (Some(&lo), Some(&hi)) => {
                        wanted.iter().any(|&r| (lo as u64..=hi as u64).contains(&r))
                    }
                    _ => true,
                },
                _ => true,
            })
            .collect();
        if groups.is_empty() {
            return None;
        }
        Some(groups)
    };
    let cols = read_columns(&parts, &names, keep, select)?;
    let (ids, t, r, v) = (cols[0].num(), cols[1].num(), cols[2].num(), cols[3].num());
    let mut series: BTreeMap<u64, Vec<Point>> = BTreeMap::new();
    for i in 0..ids.len() {
        series
            .entry(ids[i] as u64)
            .or_default()
            .push((t[i], r[i], v[i]));
    }
    let missing: Vec<u64> = runs
        .iter()
        .copied()
        .filter(|r| !series.contains_key(r))
        .collect();
    if !missing.is_empty() {
        return Err(not_traced(
            missing,
            "no rows for it in traces/ (is its shard's part missing?)",
        ));
    }
    for s in series.values_mut() {
        s.sort_by(|a, b| a.0.total_cmp(&b.0));
    }

    // Legend labels: each run's swept parameters.
    let labels = run_labels(&summary, spec.as_ref(), &runs)?;
    let title = {
        let what = format!("r_hz(t) and v(t), runs {}", join_ids(&runs));
        match spec.as_ref().and_then(|s| s.name.clone()) {
            Some(name) => format!("{name}: {what}"),
            None => what,
        }
    };
    let lines: Vec<Line> = runs
        .iter()
        .zip(&labels)
        .map(|(r, l)| (l.clone(), series[r].as_slice()))
        .collect();
    let png = render(out, args.width, args.height, |root| {
        draw_traces(root, &title, &lines)
    })?;
    write_atomic(out, &png)?;
    Ok(TracesSummary {
        out: out.to_path_buf(),
        width: args.width,
        height: args.height,
        title,
        runs: runs
            .iter()
            .zip(labels)
            .map(|(r, l)| (*r, series[r].len(), l))
            .collect(),
    })
}

/// Which rows of `batch` belong to the runs `wanted` (by its `run_id` column).
pub(super) fn rows_of(batch: &RecordBatch, wanted: &[u64]) -> Vec<bool> {
    let mut ids = Col::Num(Vec::new());
    match batch.column_by_name("run_id") {
        Some(a) if append(&mut ids, a.as_ref()).is_ok() => ids
            .num()
            .iter()
            .map(|&id| id >= 0.0 && wanted.contains(&(id as u64)))
            .collect(),
        _ => vec![false; batch.num_rows()],
    }
}

/// `mpr_sweep.runs` (`"start..end"`) of a part.
pub(super) fn part_runs(meta: &parquet::file::metadata::ParquetMetaData) -> Option<Range<u64>> {
    let kv = meta.file_metadata().key_value_metadata()?;
    let value = kv
        .iter()
        .find(|p| p.key == "mpr_sweep.runs")?
        .value
        .as_ref()?;
    let (a, b) = value.split_once("..")?;
    Some(a.parse().ok()?..b.parse().ok()?)
}

/// `run 17: eta = -5, J = 15` from the summary: the swept parameters of each run (and the
/// replicate when there are several).
pub(super) fn run_labels(
    parts: &[PathBuf],
    spec: Option<&crate::spec::Spec>,
    runs: &[u64],
) -> Result<Vec<String>, PlotError> {
    let mut params: Vec<String> = Vec::new();
    if let Some(spec) = spec {
        for p in &spec.params {
            if p.axis.is_swept() {
                params.push(p.slot.column().to_string());
            }
        }
        if spec.replicates > 1 {
            params.push("replicate".into());
        }
    }
    let columns = summary_columns(parts)?;
    params.retain(|p| columns.iter().any(|(n, k)| n == p && k.is_some()));
    if params.is_empty() {
        return Ok(runs.iter().map(|r| format!("run {r}")).collect());
    }
    let mut names = vec![("run_id".to_string(), Kind::Num)];
    names.extend(params.iter().map(|p| (p.clone(), Kind::Num)));
    let wanted = runs.to_vec();
    let keep = |batch: &RecordBatch| Some(rows_of(batch, &wanted));
    let select = |b: &ParquetRecordBatchReaderBuilder<File>| match part_runs(b.metadata()) {
        Some(range) if !wanted.iter().any(|r| range.contains(r)) => None,
        _ => Some(Vec::new()),
    };
    let cols = read_columns(parts, &names, keep, select)?;
    let ids = cols[0].num();
    Ok(runs
        .iter()
        .map(|&r| match ids.iter().position(|&id| id as u64 == r) {
            Some(i) => {
                let kv: Vec<String> = params
                    .iter()
                    .zip(&cols[1..])
                    .map(|(p, c)| format!("{p} = {}", c.num()[i]))
                    .collect();
                format!("run {r}: {}", kv.join(", "))
            }
            None => format!("run {r}"),
        })
        .collect())
}

pub(super) fn join_ids(ids: &[u64]) -> String {
    const SHOW: usize = 12;
    let mut s: Vec<String> = ids.iter().take(SHOW).map(u64::to_string).collect();
    if ids.len() > SHOW {
        s.push(format!("... ({} in all)", ids.len()));
    }
    s.join(", ")
}
