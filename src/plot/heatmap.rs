//! `plot --x --y --color`: a heatmap of a summary column over two parameters.

use super::*;

/// Draws `args.color` over `args.x` and `args.y` from the summary of the result directory
/// `dir` to the PNG file `out`, and returns the grid as drawn.
pub fn heatmap(dir: &Path, args: &HeatmapArgs, out: &Path) -> Result<PlotSummary, PlotError> {
    check_out(out, args.width, args.height)?;
    let parts = summary_parts(dir)?;
    let columns = summary_columns(&parts)?;

    // Columns, checked in the order given so the first bad name is reported.
    let mut kinds = Vec::new();
    for (flag, name) in [("--x", &args.x), ("--y", &args.y), ("--color", &args.color)] {
        let kind = lookup(&columns, name)?;
        if kind == Kind::Str {
            return Err(PlotError::BadColumn {
                name: name.clone(),
                why: format!(
                    "a text column cannot be {flag} (only numeric and boolean columns plot); \
                     filter on it instead, e.g. --where {name}=high, or plot r_hz_final or \
                     fp_count"
                ),
            });
        }
        kinds.push(kind);
    }
    // Booleans keep a 0..1 colour bar (false dark, true bright) unless counted or spread.
    let unit_bar = kinds[2] == Kind::Bool && !matches!(args.agg, Agg::Count | Agg::Std);
    if args.x == args.y {
        return Err(PlotError::BadColumn {
            name: args.x.clone(),
            why: "given as both --x and --y".into(),
        });
    }
    let filters = args
        .filters
        .iter()
        .map(|f| parse_filter(f, &columns))
        .collect::<Result<Vec<_>, _>>()?;

    // Read each distinct column once: the filter columns first, then x, y, color.
    let mut names: Vec<(String, Kind)> = Vec::new();
    let mut slot = |name: &str, kind: Kind| -> usize {
        match names.iter().position(|(n, _)| n == name) {
            Some(i) => i,
            None => {
                names.push((name.to_string(), kind));
                names.len() - 1
            }
        }
    };
    let filter_slots: Vec<usize> = filters.iter().map(|(f, k)| slot(&f.column, *k)).collect();
    let [xs, ys, cs] = [&args.x, &args.y, &args.color].map(|n| slot(n, Kind::Num));
    let cols = read_columns(&parts, &names, |_| None, |_| Some(Vec::new()))?;
    let rows = cols.first().map_or(0, Col::len);
    if rows == 0 {
        return Err(PlotError::NotResultDir {
            dir: dir.to_path_buf(),
            why: "the summary has no rows".into(),
        });
    }
    let filter_cols: Vec<&Col> = filter_slots.iter().map(|&i| &cols[i]).collect();
    let mask = apply_filters(&filters, &filter_cols, rows)?;
    let (xv, yv, cv) = (cols[xs].num(), cols[ys].num(), cols[cs].num());

    // The grid.
    let selected = || mask.iter().enumerate().filter(|(_, m)| **m).map(|(i, _)| i);
    let x_values = distinct(selected().map(|i| xv[i]));
    let y_values = distinct(selected().map(|i| yv[i]));
    for (name, vals) in [(&args.x, &x_values), (&args.y, &y_values)] {
        if vals.is_empty() {
            return Err(PlotError::BadColumn {
                name: name.clone(),
                why: "null in every selected run".into(),
            });
        }
        if vals.len() > MAX_AXIS_VALUES {
            return Err(PlotError::BadColumn {
                name: name.clone(),
                why: format!(
                    "{} distinct values among the selected runs, more than the {MAX_AXIS_VALUES} \
                     a heatmap axis takes (a drawn value, not a grid? pick a swept parameter or \
                     narrow with --where)",
                    vals.len()
                ),
            });
        }
    }
    let (nx, ny) = (x_values.len(), y_values.len());
    let mut cell_values: Vec<Vec<f64>> = vec![Vec::new(); nx * ny];
    let mut counts = vec![0u64; nx * ny];
    let mut used = 0u64;
    for i in selected() {
        let (Some(ix), Some(iy)) = (position(&x_values, xv[i]), position(&y_values, yv[i])) else {
            continue;
        };
        used += 1;
        counts[iy * nx + ix] += 1;
        if !cv[i].is_nan() {
            cell_values[iy * nx + ix].push(cv[i]);
        }
    }
    let values: Vec<f64> = cell_values
        .iter_mut()
        .zip(&counts)
        .map(|(v, &n)| if n == 0 { f64::NAN } else { args.agg.apply(v) })
        .collect();
    let finite = values.iter().copied().filter(|v| v.is_finite());
    let range = finite.fold(None, |r: Option<(f64, f64)>, v| {
        Some(r.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))))
    });
    let Some(range) = range else {
        let why = if args.agg == Agg::Std && counts.iter().all(|&c| c <= 1) {
            "--agg std needs at least 2 runs per cell, every cell has 1 (no replicates, and \
             every other axis filtered?)"
                .to_string()
        } else {
            "null in every selected run (diverged runs have null statistics)".to_string()
        };
        return Err(PlotError::BadColumn {
            name: args.color.clone(),
            why,
        });
    };

    // Title: what, over how many runs per cell, the filters, the sweep's name.
    let (cmin, cmax) = counts
        .iter()
        .filter(|&&c| c > 0)
        .fold((u64::MAX, 0), |(a, b), &c| (a.min(c), b.max(c)));
    let what = if cmax > 1 || args.agg == Agg::Count {
        let per = if cmin == cmax {
            format!("{cmax} runs per cell")
        } else {
            format!("{cmin}-{cmax} runs per cell")
        };
        format!("{} of {} ({per})", args.agg.name(), args.color)
    } else {
        args.color.clone()
    };
    let mut title = what;
    if !filters.is_empty() {
        let fs: Vec<String> = filters
            .iter()
            .map(|(f, _)| match &f.value {
                FilterValue::Num(_) => {
                    let (c, v) = f.text.split_once('=').expect("checked");
                    format!("{} = {}", c.trim(), v.trim())
                }
                FilterValue::Str(s) => format!("{} = {s}", f.column),
            })
            .collect();
        title = format!("{title} where {}", fs.join(", "));
    }
    if let Some(name) = read_spec(dir).and_then(|s| s.name) {
        title = format!("{name}: {title}");
    }

    let summary = PlotSummary {
        out: out.to_path_buf(),
        width: args.width,
        height: args.height,
        title,
        x_values,
        y_values,
        values,
        counts,
        rows: used,
        range,
    };
    let colorbar_label = if args.agg == Agg::Count {
        format!("count of {}", args.color)
    } else if cmax > 1 {
        format!("{}({})", args.agg.name(), args.color)
    } else {
        args.color.clone()
    };
    let png = render(out, args.width, args.height, |root| {
        let bar = if unit_bar {
            (0.0, 1.0)
        } else {
            bar_range(summary.range)
        };
        draw_heatmap(root, &summary, (&args.x, &args.y), &colorbar_label, bar)
    })?;
    write_atomic(out, &png)?;
    Ok(summary)
}

/// The output must be a `.png` in an existing directory, of a sane size.
pub(super) fn check_out(out: &Path, width: u32, height: u32) -> Result<(), PlotError> {
    let name = out.display().to_string();
    let is_png = out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    if !is_png {
        return Err(PlotError::BadOutput {
            name,
            why: "only PNG output is written; give a file name ending in .png".into(),
        });
    }
    if let Some(parent) = out.parent()
        && !parent.as_os_str().is_empty()
        && !parent.is_dir()
    {
        return Err(PlotError::BadOutput {
            name,
            why: format!("directory {} does not exist", parent.display()),
        });
    }
    if out.is_dir() {
        return Err(PlotError::BadOutput {
            name,
            why: "is a directory".into(),
        });
    }
    for (flag, v) in [("--width", width), ("--height", height)] {
        if !(200..=8000).contains(&v) {
            return Err(PlotError::BadOutput {
                name: flag.into(),
                why: format!("must be 200 to 8000 pixels, got {v}"),
            });
        }
    }
    Ok(())
}
