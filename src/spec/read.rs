//! Readers of YAML nodes into numbers, strings, axes and trace selections; each error
//! names the key path and position of the node it read.

use super::axis::Axis;
use super::suggest::did_you_mean;
use super::yaml::{self, Key, Node, Value};
use super::{SpecError, TraceRuns};

/// The forms an axis can take, besides a number and a list.
pub const AXIS_FORMS: [&str; 3] = ["linspace", "geomspace", "arange"];

pub(super) fn trace_runs(node: &Node, path: &str) -> Result<TraceRuns, SpecError> {
    let expected = "expected none, all, {every: k} or {ids: [..]}";
    match &node.value {
        Value::String(s) if s == "none" => Ok(TraceRuns::None),
        Value::String(s) if s == "all" => Ok(TraceRuns::All),
        Value::Null => Ok(TraceRuns::None),
        Value::Map(m) if m.len() == 1 && m[0].0 == "every" => {
            let p = yaml::join(path, "every");
            let k = integer(&m[0].1, &p, u64::MAX)?;
            if k == 0 {
                return Err(at(&m[0].1, &p, "every must be >= 1"));
            }
            Ok(TraceRuns::Every(k))
        }
        Value::Map(m) if m.len() == 1 && m[0].0 == "ids" => {
            let p = yaml::join(path, "ids");
            let Value::Seq(items) = &m[0].1.value else {
                return Err(at(&m[0].1, &p, "expected a list of run ids"));
            };
            let mut ids = items
                .iter()
                .enumerate()
                .map(|(i, n)| integer(n, &format!("{p}[{i}]"), u64::MAX))
                .collect::<Result<Vec<_>, _>>()?;
            ids.sort_unstable();
            ids.dedup();
            Ok(TraceRuns::Ids(ids))
        }
        Value::String(s) => Err(at(
            node,
            path,
            format!(
                "unknown trace selection `{s}`{}; {expected}",
                did_you_mean(s, &["none", "all"])
            ),
        )),
        Value::Map(m) if m.len() == 1 => {
            let key = &m[0].0;
            Err(SpecError::new(
                &yaml::join(path, key),
                Some(key.mark),
                format!(
                    "unknown key `{key}`{}; {expected}",
                    did_you_mean(key, &["every", "ids"])
                ),
            ))
        }
        other => Err(at(node, path, format!("{expected}, got {}", other.kind()))),
    }
}

pub(super) fn at(node: &Node, path: &str, message: impl Into<String>) -> SpecError {
    SpecError::new(path, Some(node.mark), message)
}

/// Adds the other accepted forms to an "expected a number, ..." message, before its
/// ", got ..." part.
pub(super) fn hint(mut e: SpecError, extra: &str) -> SpecError {
    if e.message.starts_with("expected a number")
        && let Some(i) = e.message.find(", got ")
    {
        e.message.insert_str(i, &format!(", {extra}"));
    }
    e
}

/// The entries of a mapping (null counts as empty), refusing keys not in `allowed`.
pub(super) fn entries<'a>(
    node: &'a Node,
    path: &str,
    allowed: &[&str],
) -> Result<&'a [(Key, Node)], SpecError> {
    match &node.value {
        Value::Null => Ok(&[]),
        Value::Map(entries) => {
            for (key, _) in entries {
                if !allowed.contains(&key.as_str()) {
                    return Err(SpecError::new(
                        &yaml::join(path, key),
                        Some(key.mark),
                        format!(
                            "unknown key `{key}`{}; expected one of: {}",
                            did_you_mean(key, allowed),
                            allowed.join(", ")
                        ),
                    ));
                }
            }
            Ok(entries)
        }
        other => Err(at(
            node,
            path,
            format!(
                "expected a mapping with keys {}, got {}",
                allowed.join(", "),
                other.kind()
            ),
        )),
    }
}

pub(super) fn number(node: &Node, path: &str) -> Result<f64, SpecError> {
    match &node.value {
        Value::Number { value, .. } if value.is_nan() => Err(at(node, path, "NaN is not allowed")),
        Value::Number { value, .. } if value.is_infinite() => {
            Err(at(node, path, "infinite values are not allowed"))
        }
        Value::Number { value, .. } => Ok(*value),
        other => Err(at(
            node,
            path,
            format!("expected a number, got {}", other.kind()),
        )),
    }
}

pub(super) fn integer(node: &Node, path: &str, max: u64) -> Result<u64, SpecError> {
    let bad = || {
        at(
            node,
            path,
            format!("expected a whole number from 0 to {max}"),
        )
    };
    match &node.value {
        Value::Number { text, value } => {
            let parsed = text.parse::<u64>().ok().or_else(|| {
                (value.fract() == 0.0 && *value >= 0.0 && *value < 2f64.powi(53))
                    .then_some(*value as u64)
            });
            parsed.filter(|v| *v <= max).ok_or_else(bad)
        }
        _ => Err(bad()),
    }
}

pub(super) fn string(node: &Node, path: &str) -> Result<String, SpecError> {
    match &node.value {
        Value::String(s) => Ok(s.clone()),
        other => Err(at(
            node,
            path,
            format!("expected a string, got {}", other.kind()),
        )),
    }
}

pub(super) fn pair(node: &Node, path: &str) -> Result<[f64; 2], SpecError> {
    match &node.value {
        Value::Seq(items) if items.len() == 2 => Ok([
            number(&items[0], &format!("{path}[0]"))?,
            number(&items[1], &format!("{path}[1]"))?,
        ]),
        _ => Err(at(node, path, "expected a list of two numbers")),
    }
}

/// The error for a one-key mapping whose key is not one of `forms` nor an axis form, naming
/// the key, every accepted form and the closest one; `None` for anything else.
pub(super) fn unknown_form(node: &Node, path: &str, forms: &[&str]) -> Option<SpecError> {
    let Value::Map(m) = &node.value else {
        return None;
    };
    let [(form, _)] = m.as_slice() else {
        return None;
    };
    if forms.contains(&form.as_str()) || AXIS_FORMS.contains(&form.as_str()) {
        return None;
    }
    let accepted: Vec<&str> = forms.iter().chain(&AXIS_FORMS).copied().collect();
    Some(SpecError::new(
        &yaml::join(path, form),
        Some(form.mark),
        format!(
            "unknown form `{form}`{}; expected a number, a list, or a mapping with one of: {}",
            did_you_mean(form, &accepted),
            accepted.join(", ")
        ),
    ))
}

/// Reads a number or an axis form.
pub(super) fn axis(node: &Node, path: &str) -> Result<Axis, SpecError> {
    let axis = axis_form(node, path)?;
    // The forms are monotone, so the ends and their neighbours show any overflow (a
    // linspace from -1e308 to 1e308 has an infinite step).
    let n = axis.len();
    if [0, 1, n.saturating_sub(2), n - 1]
        .into_iter()
        .any(|i| i < n && !axis.get(i).is_finite())
    {
        return Err(at(
            node,
            path,
            "the axis has values beyond the range of f64",
        ));
    }
    Ok(axis)
}

fn axis_form(node: &Node, path: &str) -> Result<Axis, SpecError> {
    match &node.value {
        Value::Number { .. } => Ok(Axis::Fixed(number(node, path)?)),
        Value::Seq(items) => {
            if items.is_empty() {
                return Err(at(node, path, "an axis needs at least one value"));
            }
            let values = items
                .iter()
                .enumerate()
                .map(|(i, n)| number(n, &format!("{path}[{i}]")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Axis::List(values))
        }
        Value::Map(m)
            if m.len() == 1 && matches!(m[0].0.as_str(), "linspace" | "geomspace" | "arange") =>
        {
            let (form, args) = (&m[0].0, &m[0].1);
            let fpath = yaml::join(path, form);
            let Value::Seq(items) = &args.value else {
                return Err(at(
                    args,
                    &fpath,
                    format!(
                        "expected [start, stop, {}]",
                        if form == "arange" { "step" } else { "num" }
                    ),
                ));
            };
            if items.len() != 3 {
                return Err(at(
                    args,
                    &fpath,
                    format!("expected three numbers, got {}", items.len()),
                ));
            }
            let start = number(&items[0], &format!("{fpath}[0]"))?;
            let stop = number(&items[1], &format!("{fpath}[1]"))?;
            if form == "arange" {
                let step = number(&items[2], &format!("{fpath}[2]"))?;
                return Axis::arange(start, stop, step).map_err(|m| at(args, &fpath, m));
            }
            let num = integer(&items[2], &format!("{fpath}[2]"), 1 << 53)?;
            if num == 0 {
                return Err(at(
                    &items[2],
                    &format!("{fpath}[2]"),
                    "an axis needs at least one value (num >= 1)",
                ));
            }
            if form == "linspace" {
                Ok(Axis::Linspace { start, stop, num })
            } else {
                if start == 0.0 || stop == 0.0 || (start < 0.0) != (stop < 0.0) {
                    return Err(at(
                        args,
                        &fpath,
                        "geomspace needs start and stop non-zero and of the same sign",
                    ));
                }
                Ok(Axis::Geomspace { start, stop, num })
            }
        }
        Value::Map(m) if m.len() == 1 => {
            let form = &m[0].0;
            Err(SpecError::new(
                &yaml::join(path, form),
                Some(form.mark),
                format!(
                    "unknown axis form `{form}`{}; expected a number, a list, or one of {{linspace|geomspace|arange: [..]}}",
                    did_you_mean(form, &AXIS_FORMS)
                ),
            ))
        }
        other => Err(at(
            node,
            path,
            format!(
                "expected a number, a list, or {{linspace|geomspace|arange: [..]}}, got {}",
                other.kind()
            ),
        )),
    }
}
