//! Axis forms and their lazy expansion.
//!
//! An axis is never materialised: `get(i)` computes the i-th value, so a linspace of 10^9
//! points costs nothing until a run asks for its value. The formulas follow numpy
//! (`linspace`, `geomspace`, `arange`) so that users can reproduce a grid in Python exactly.

/// The values a parameter takes across a sweep.
#[derive(Debug, Clone, PartialEq)]
pub enum Axis {
    /// A single value: the parameter is not swept.
    Fixed(f64),
    /// `[a, b, ...]`
    List(Vec<f64>),
    /// `{linspace: [start, stop, num]}`, both ends included.
    Linspace {
        /// First value.
        start: f64,
        /// Last value.
        stop: f64,
        /// Number of values, >= 1.
        num: u64,
    },
    /// `{geomspace: [start, stop, num]}`, both ends included, equal ratios.
    Geomspace {
        /// First value, nonzero.
        start: f64,
        /// Last value, nonzero and of the same sign as `start`.
        stop: f64,
        /// Number of values, >= 1.
        num: u64,
    },
    /// `{arange: [start, stop, step]}`, stop excluded.
    Arange {
        /// First value.
        start: f64,
        /// Bound the values stay short of (excluded).
        stop: f64,
        /// Difference between consecutive values, nonzero.
        step: f64,
        /// Number of values, `ceil((stop - start) / step)`, >= 1.
        num: u64,
    },
}

impl Axis {
    /// Builds an arange axis, or says why it is empty or too long.
    pub fn arange(start: f64, stop: f64, step: f64) -> Result<Axis, String> {
        if step == 0.0 {
            return Err("arange step must not be 0".into());
        }
        let count = ((stop - start) / step).ceil();
        if count.is_nan() || count < 1.0 {
            return Err(format!("arange [{start}, {stop}, {step}] is empty"));
        }
        if count > (1u64 << 53) as f64 {
            return Err(format!(
                "arange [{start}, {stop}, {step}] has more than 2^53 values"
            ));
        }
        Ok(Axis::Arange {
            start,
            stop,
            step,
            num: count as u64,
        })
    }

    /// Number of values.
    pub fn len(&self) -> u64 {
        match self {
            Axis::Fixed(_) => 1,
            Axis::List(v) => v.len() as u64,
            Axis::Linspace { num, .. } | Axis::Geomspace { num, .. } | Axis::Arange { num, .. } => {
                *num
            }
        }
    }

    /// Whether the axis has no values (never true for a validated spec).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether this parameter is swept (written in an axis form) rather than fixed.
    pub fn is_swept(&self) -> bool {
        !matches!(self, Axis::Fixed(_))
    }

    /// The i-th value, `i < len()`.
    pub fn get(&self, i: u64) -> f64 {
        debug_assert!(i < self.len());
        match *self {
            Axis::Fixed(x) => x,
            Axis::List(ref v) => v[i as usize],
            Axis::Linspace { start, stop, num } => {
                if num == 1 {
                    start
                } else if i == num - 1 {
                    stop
                } else {
                    start + i as f64 * ((stop - start) / (num - 1) as f64)
                }
            }
            Axis::Geomspace { start, stop, num } => {
                if i == 0 {
                    start
                } else if i == num - 1 {
                    stop
                } else {
                    let (a, b) = (start.abs().ln(), stop.abs().ln());
                    let x = (a + i as f64 * ((b - a) / (num - 1) as f64)).exp();
                    x.copysign(start)
                }
            }
            Axis::Arange { start, step, .. } => start + i as f64 * step,
        }
    }

    /// Smallest and largest value (the forms are monotone, so the ends suffice).
    pub fn range(&self) -> (f64, f64) {
        match self {
            Axis::List(v) => v
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
                    (lo.min(x), hi.max(x))
                }),
            _ => {
                let (a, b) = (self.get(0), self.get(self.len() - 1));
                (a.min(b), a.max(b))
            }
        }
    }

    /// The spec form, for `plan` output.
    pub fn describe(&self) -> String {
        match self {
            Axis::Fixed(x) => format!("{x}"),
            Axis::List(v) if v.len() <= 6 => format!("{v:?}"),
            Axis::List(v) => format!(
                "[{}, {}, ..., {}] ({} values)",
                v[0],
                v[1],
                v[v.len() - 1],
                v.len()
            ),
            Axis::Linspace { start, stop, num } => format!("linspace({start}, {stop}, {num})"),
            Axis::Geomspace { start, stop, num } => format!("geomspace({start}, {stop}, {num})"),
            Axis::Arange {
                start,
                stop,
                step,
                num,
            } => format!("arange({start}, {stop}, {step}) ({num} values)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linspace_matches_numpy_including_ends() {
        let a = Axis::Linspace {
            start: -10.0,
            stop: 0.0,
            num: 101,
        };
        assert_eq!(a.len(), 101);
        assert_eq!(a.get(0), -10.0);
        assert_eq!(a.get(100), 0.0);
        // numpy: -10 + 37 * 0.1
        assert_eq!(a.get(37), -10.0 + 37.0 * 0.1);
        assert_eq!(
            Axis::Linspace {
                start: 3.0,
                stop: 5.0,
                num: 1
            }
            .get(0),
            3.0
        );
    }

    #[test]
    fn geomspace_has_equal_ratios_and_exact_ends() {
        let a = Axis::Geomspace {
            start: 0.01,
            stop: 100.0,
            num: 5,
        };
        let v: Vec<f64> = (0..5).map(|i| a.get(i)).collect();
        assert_eq!(v[0], 0.01);
        assert_eq!(v[4], 100.0);
        for (i, want) in [0.01, 0.1, 1.0, 10.0, 100.0].iter().enumerate() {
            assert!(
                (v[i] - want).abs() <= 1e-14 * want,
                "{i}: {} vs {want}",
                v[i]
            );
        }
        let n = Axis::Geomspace {
            start: -1.0,
            stop: -100.0,
            num: 3,
        };
        assert!((n.get(1) + 10.0).abs() < 1e-13);
    }

    #[test]
    fn arange_excludes_stop_and_rejects_empty() {
        let a = Axis::arange(0.0, 1.0, 0.25).unwrap();
        assert_eq!(a.len(), 4);
        assert_eq!(a.get(3), 0.75);
        assert_eq!(Axis::arange(0.0, 1.0, 0.3).unwrap().len(), 4);
        assert!(Axis::arange(1.0, 0.0, 0.5).is_err());
        assert!(Axis::arange(0.0, 1.0, 0.0).is_err());
        assert_eq!(Axis::arange(1.0, 0.0, -0.5).unwrap().len(), 2);
    }

    #[test]
    fn range_covers_every_value() {
        assert_eq!(Axis::List(vec![2.0, -1.0, 5.0]).range(), (-1.0, 5.0));
        assert_eq!(Axis::arange(1.0, 0.0, -0.5).unwrap().range(), (0.5, 1.0));
    }
}
