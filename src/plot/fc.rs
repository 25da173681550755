//! `plot --fc RUN`: the simulated functional connectivity of one network run, as an
//! N x N matrix, from the FC parts.

use super::*;

/// Draws run `run_id`'s FC matrix (node x node, the diagonal 1) from the FC parts of the
/// result directory `dir` to the PNG file `out`.
pub fn fc(
    dir: &Path,
    run_id: u64,
    (width, height): (u32, u32),
    out: &Path,
) -> Result<PlotSummary, PlotError> {
    check_out(out, width, height)?;
    summary_parts(dir)?;
    let fc_dir = Layout::new(dir).table_dir(TableKind::Fc);
    let parts = match part_files(&fc_dir) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(PlotError::Io(io_err(&fc_dir)(e))),
    };
    if parts.is_empty() {
        return Err(PlotError::NotTraced {
            runs: vec![run_id],
            why: "this result directory has no fc/ parts (a network spec with output.fc: true writes them)".into(),
        });
    }
    let names = [
        ("run_id".to_string(), Kind::Num),
        ("i".to_string(), Kind::Num),
        ("j".to_string(), Kind::Num),
        ("fc".to_string(), Kind::Num),
    ];
    let wanted = [run_id];
    let keep = |batch: &RecordBatch| Some(rows_of(batch, &wanted));
    let select = |b: &ParquetRecordBatchReaderBuilder<File>| match part_runs(b.metadata()) {
        Some(range) if !range.contains(&run_id) => None,
        _ => Some((0..b.metadata().num_row_groups()).collect()),
    };
    let cols = read_columns(&parts, &names, keep, select)?;
    let (i, j, v) = (cols[1].num(), cols[2].num(), cols[3].num());
    if i.is_empty() {
        return Err(PlotError::NotTraced {
            runs: vec![run_id],
            why: "no FC rows for it in fc/ (no such run, or its shard's part is missing?)".into(),
        });
    }
    let n = i.iter().chain(j).fold(0.0f64, |m, &x| m.max(x)) as usize + 1;
    let mut values = vec![f64::NAN; n * n];
    for k in 0..n {
        values[k * n + k] = 1.0;
    }
    for ((&a, &b), &x) in i.iter().zip(j).zip(v) {
        let (a, b) = (a as usize, b as usize);
        values[a * n + b] = x;
        values[b * n + a] = x;
    }
    let title = {
        let what = format!("FC of run {run_id} (Pearson correlation of r_hz)");
        match read_spec(dir).and_then(|s| s.name) {
            Some(name) => format!("{name}: {what}"),
            None => what,
        }
    };
    let nodes: Vec<f64> = (0..n).map(|k| k as f64).collect();
    let summary = PlotSummary {
        out: out.to_path_buf(),
        width,
        height,
        title,
        x_values: nodes.clone(),
        y_values: nodes,
        counts: values.iter().map(|x| u64::from(!x.is_nan())).collect(),
        values,
        rows: 1,
        range: (-1.0, 1.0),
    };
    let png = render(out, width, height, |root| {
        draw_heatmap(root, &summary, ("node j", "node i"), "fc", (-1.0, 1.0))
    })?;
    write_atomic(out, &png)?;
    Ok(summary)
}
