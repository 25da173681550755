//! "Did you mean" suggestions for misspelt keys, form names and method names.

/// Edit distance (insertions, deletions, substitutions, and transpositions of neighbours)
/// between `a` and `b`.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Rows i-2, i-1 and i of the dynamic-programming table.
    let mut two_back = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut row = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        row[0] = i;
        for j in 1..=b.len() {
            let substitute = prev[j - 1] + usize::from(a[i - 1] != b[j - 1]);
            row[j] = substitute.min(prev[j] + 1).min(row[j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                row[j] = row[j].min(two_back[j - 2] + 1);
            }
        }
        std::mem::swap(&mut two_back, &mut prev);
        std::mem::swap(&mut prev, &mut row);
    }
    prev[b.len()]
}

/// The accepted name closest to `given`, if it is close enough to be a likely typo: one
/// edit per five characters (at least one), or a difference of case only. `logspace` is
/// not taken for `linspace` (two edits in eight characters).
pub fn closest<'a>(given: &str, accepted: &[&'a str]) -> Option<&'a str> {
    let limit = (given.chars().count() / 5).max(1);
    accepted
        .iter()
        .map(|&name| {
            let d = if name.eq_ignore_ascii_case(given) {
                0
            } else {
                distance(given, name)
            };
            (d, name)
        })
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, name)| name)
}

/// `" (did you mean `x`?)"` when a close name exists, else nothing.
pub fn did_you_mean(given: &str, accepted: &[&str]) -> String {
    closest(given, accepted)
        .map(|name| format!(" (did you mean `{name}`?)"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_the_intended_name_and_strangers_find_none() {
        let forms = ["linspace", "geomspace", "arange"];
        assert_eq!(closest("lnspace", &forms), Some("linspace"));
        assert_eq!(closest("geomspcae", &forms), Some("geomspace"));
        assert_eq!(closest("Arange", &forms), Some("arange"));
        assert_eq!(closest("logspace", &forms), None);
        assert_eq!(closest("x", &forms), None);
        assert_eq!(closest("dt", &["dt_ms", "duration_ms"]), None);
        assert_eq!(closest("dt_m", &["dt_ms", "duration_ms"]), Some("dt_ms"));
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("ab", "ba"), 1);
    }

    #[test]
    fn the_suggestion_text_names_the_key() {
        assert_eq!(
            did_you_mean("rk", &["rk4", "euler"]),
            " (did you mean `rk4`?)"
        );
        assert_eq!(did_you_mean("zzz", &["rk4", "euler"]), "");
    }
}
