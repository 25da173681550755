//! Times as numbers of steps: a run ends at `duration_ms` and its statistics start at
//! `transient_ms` exactly, so both must be whole numbers of steps of every dt value.

/// Steps of `dt` in `t`, a whole number of them up to rounding in t/dt
/// (500/0.01 = 50000.000000000004); see [`is_whole_steps`].
pub(super) fn steps_to(t: f64, dt: f64) -> u64 {
    (t / dt).round() as u64
}

/// Whether `t` is a whole number of steps of `dt`, within the rounding of t/dt.
fn is_whole_steps(t: f64, dt: f64) -> bool {
    let x = t / dt;
    (x - x.round()).abs() <= 1e-9 * x.round().max(1.0)
}

/// Multiples of the largest dt searched on each side of a time for one that suits every dt.
const SEARCH: u64 = 10_000;

/// Refuses a time `t` (`key`; `given` is `""` or `", the default"`) that is not a whole
/// number, at least `min_steps`, of steps of every dt value, naming the nearest times that
/// are. Those are multiples of the largest dt, so these are searched.
pub(super) fn whole_steps_of_every_dt(
    key: &str,
    given: &str,
    t: f64,
    min_steps: u64,
    dts: &[f64],
) -> Result<(), String> {
    let fits_one = |t: f64, dt: f64| is_whole_steps(t, dt) && steps_to(t, dt) >= min_steps;
    let fits = |t: f64| dts.iter().all(|&dt| fits_one(t, dt));
    let Some(&dt) = dts.iter().find(|&&dt| !fits_one(t, dt)) else {
        return Ok(());
    };
    let dt_max = dts.iter().copied().fold(0.0, f64::max);
    let k0 = (t / dt_max).floor() as u64;
    let below = (0..SEARCH)
        .map_while(|i| k0.checked_sub(i))
        .map(|k| k as f64 * dt_max)
        .find(|&c| c < t && fits(c));
    let above = (1..=SEARCH)
        .map(|i| (k0 + i) as f64 * dt_max)
        .find(|&c| fits(c));
    let of = if dts.len() > 1 {
        "every dt_ms value"
    } else {
        "dt_ms"
    };
    let nearest = match (below, above) {
        (Some(b), Some(a)) => format!("the nearest that are: {} and {}", tidy(b), tidy(a)),
        (None, Some(a)) => format!("the nearest that is: {}", tidy(a)),
        _ => format!(
            "none within {SEARCH} steps of dt_ms {dt_max} is: choose dt_ms values with a common multiple"
        ),
    };
    Err(format!(
        "{key} ({t}{given}) must be a whole number of steps of {of}, and is {:.4} steps of dt_ms {dt}; {nearest}",
        t / dt
    ))
}

/// `x` rounded to 12 significant digits, so that 3 x 0.3 shows as 0.9.
fn tidy(x: f64) -> f64 {
    format!("{x:.11e}").parse().unwrap_or(x)
}
