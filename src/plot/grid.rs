//! Filters (`--where`) and the grid of distinct x and y values a heatmap is drawn on.

use super::*;

/// `a` and `b` are the same value within [`REL_TOL`].
pub fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= REL_TOL * a.abs().max(b.abs())
}

/// Index of the value of the sorted, distinct `axis` that `x` matches.
pub(super) fn position(axis: &[f64], x: f64) -> Option<usize> {
    if !x.is_finite() {
        return None;
    }
    let i = axis.partition_point(|&a| a < x);
    [i.checked_sub(1), Some(i)]
        .into_iter()
        .flatten()
        .find(|&j| j < axis.len() && close(axis[j], x))
}

/// The sorted distinct finite values of `values` (values within [`REL_TOL`] merged).
pub(super) fn distinct(values: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    let mut out: Vec<f64> = Vec::new();
    for x in v {
        if out.last().is_none_or(|&l| !close(l, x)) {
            out.push(x);
        }
    }
    out
}

/// One `COLUMN=VALUE`.
#[derive(Debug, Clone)]
pub(super) struct Filter {
    pub(super) text: String,
    pub(super) column: String,
    pub(super) value: FilterValue,
}

#[derive(Debug, Clone)]
pub(super) enum FilterValue {
    Num(f64),
    Str(String),
}

pub(super) fn parse_filter(
    text: &str,
    columns: &[(String, Option<Kind>)],
) -> Result<(Filter, Kind), PlotError> {
    let bad = |why: String| PlotError::BadFilter {
        filter: text.to_string(),
        why,
    };
    let Some((column, value)) = text.split_once('=') else {
        return Err(bad("expected COLUMN=VALUE, e.g. delta=1".into()));
    };
    let (column, value) = (column.trim(), value.trim());
    if column.is_empty() || value.is_empty() {
        return Err(bad("expected COLUMN=VALUE, e.g. delta=1".into()));
    }
    let kind = lookup(columns, column)?;
    let value = match kind {
        Kind::Str => FilterValue::Str(value.to_string()),
        Kind::Bool => FilterValue::Num(match value.to_ascii_lowercase().as_str() {
            "true" | "1" => 1.0,
            "false" | "0" => 0.0,
            _ => return Err(bad(format!("{column} is true or false, got {value:?}"))),
        }),
        Kind::Num => match value.parse::<f64>() {
            Ok(v) if v.is_finite() => FilterValue::Num(v),
            _ => return Err(bad(format!("{column} takes a number, got {value:?}"))),
        },
    };
    Ok((
        Filter {
            text: text.trim().to_string(),
            column: column.to_string(),
            value,
        },
        kind,
    ))
}

/// Up to 20 distinct values of `col` among the rows in `mask`, as text.
pub(super) fn available_values(col: &Col, kind: Kind, mask: &[bool]) -> Vec<String> {
    const SHOW: usize = 20;
    let mut out: Vec<String> = match col {
        Col::Num(v) => {
            let d = distinct(v.iter().zip(mask).filter(|(_, m)| **m).map(|(x, _)| *x));
            let nulls = v.iter().zip(mask).any(|(x, m)| *m && x.is_nan());
            let mut s: Vec<String> = d
                .iter()
                .map(|&x| match kind {
                    Kind::Bool => (x != 0.0).to_string(),
                    _ => x.to_string(),
                })
                .collect();
            if nulls {
                s.push("null".into());
            }
            s
        }
        Col::Str(v) => {
            let set: std::collections::BTreeSet<String> = v
                .iter()
                .zip(mask)
                .filter(|(_, m)| **m)
                .map(|(s, _)| s.clone().unwrap_or_else(|| "null".into()))
                .collect();
            set.into_iter().collect()
        }
    };
    if out.len() > SHOW {
        let n = out.len();
        let last = out.pop().expect("non-empty");
        out.truncate(SHOW - 1);
        out.push(format!("... {last} ({n} values)"));
    }
    out
}

/// Applies the filters in order; an error names the first that leaves nothing.
pub(super) fn apply_filters(
    filters: &[(Filter, Kind)],
    cols: &[&Col],
    rows: usize,
) -> Result<Vec<bool>, PlotError> {
    let mut mask = vec![true; rows];
    for (i, (f, kind)) in filters.iter().enumerate() {
        let col = cols[i];
        let next: Vec<bool> = match (&f.value, col) {
            (FilterValue::Num(want), Col::Num(v)) => mask
                .iter()
                .zip(v)
                .map(|(m, x)| *m && close(*x, *want))
                .collect(),
            (FilterValue::Str(want), Col::Str(v)) => mask
                .iter()
                .zip(v)
                .map(|(m, s)| *m && s.as_deref() == Some(want.as_str()))
                .collect(),
            _ => unreachable!("filter values follow the column kind"),
        };
        if !next.iter().any(|&m| m) {
            let context = if i == 0 {
                String::new()
            } else {
                let earlier: Vec<&str> =
                    filters[..i].iter().map(|(f, _)| f.text.as_str()).collect();
                format!(" among the runs with {}", earlier.join(", "))
            };
            return Err(PlotError::NoMatch {
                filter: f.text.clone(),
                column: f.column.clone(),
                context,
                values: available_values(col, *kind, &mask),
            });
        }
        mask = next;
    }
    Ok(mask)
}

/// How an axis is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Scale {
    Linear,
    Log,
}

/// Cell edges of the values of an axis: midway between neighbours (geometrically on a log
/// axis, chosen when the values are in equal ratios and not equally spaced).
pub(super) fn edges(values: &[f64]) -> (Scale, Vec<f64>) {
    let n = values.len();
    if n == 1 {
        let v = values[0];
        let h = if v == 0.0 { 0.5 } else { 0.05 * v.abs() };
        return (Scale::Linear, vec![v - h, v + h]);
    }
    let span = values[n - 1] - values[0];
    let d0 = values[1] - values[0];
    let uniform = values
        .windows(2)
        .all(|w| ((w[1] - w[0]) - d0).abs() <= 1e-6 * span);
    let r0 = values[1] / values[0];
    let geometric = !uniform
        && n >= 3
        && values[0] > 0.0
        && values
            .windows(2)
            .all(|w| ((w[1] / w[0]) - r0).abs() <= 1e-6 * r0);
    if geometric {
        let mut e = vec![values[0] / r0.sqrt()];
        e.extend(values.windows(2).map(|w| (w[0] * w[1]).sqrt()));
        e.push(values[n - 1] * r0.sqrt());
        (Scale::Log, e)
    } else {
        let mut e = vec![values[0] - 0.5 * d0];
        e.extend(values.windows(2).map(|w| 0.5 * (w[0] + w[1])));
        e.push(values[n - 1] + 0.5 * (values[n - 1] - values[n - 2]));
        (Scale::Linear, e)
    }
}
