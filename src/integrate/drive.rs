//! Time-varying inputs and Ornstein–Uhlenbeck input noise, per lane.

use super::{LANES, Lanes};

/// The time course of one input, with its parameters per lane in kernel units.
// One per variable and batch, built once: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Waveform {
    /// Constant inputs are folded into the coefficients: nothing to add.
    None,
    /// `before` for t < `at`, then `after`.
    Step {
        /// Time of the step, ms.
        at: Lanes,
        /// Input before the step (kHz/ms for r, dimensionless for v).
        before: Lanes,
        /// Input from the step on (kHz/ms for r, dimensionless for v).
        after: Lanes,
    },
    /// `amplitude` for `start <= t < stop`, else 0.
    Pulse {
        /// Pulse onset, ms (included).
        start: Lanes,
        /// Pulse end, ms (excluded).
        stop: Lanes,
        /// Input during the pulse (kHz/ms for r, dimensionless for v).
        amplitude: Lanes,
    },
    /// `offset + amplitude sin(omega t + phase)`, omega in rad/ms.
    Sine {
        /// Amplitude (kHz/ms for r, dimensionless for v).
        amplitude: Lanes,
        /// Angular frequency, rad/ms (`2 pi freq_hz / 1000`).
        omega: Lanes,
        /// Phase at t = 0, rad.
        phase: Lanes,
        /// Value the sine oscillates around (kHz/ms for r, dimensionless for v).
        offset: Lanes,
    },
}

impl Waveform {
    /// Writes the input at time `t` (ms) into `out`.
    #[inline(always)]
    fn eval(&self, t: f64, out: &mut Lanes) {
        match self {
            Waveform::None => *out = [0.0; LANES],
            Waveform::Step { at, before, after } => {
                for l in 0..LANES {
                    out[l] = if t < at[l] { before[l] } else { after[l] };
                }
            }
            Waveform::Pulse {
                start,
                stop,
                amplitude,
            } => {
                for l in 0..LANES {
                    out[l] = if start[l] <= t && t < stop[l] {
                        amplitude[l]
                    } else {
                        0.0
                    };
                }
            }
            Waveform::Sine {
                amplitude,
                omega,
                phase,
                offset,
            } => {
                for l in 0..LANES {
                    out[l] = offset[l] + amplitude[l] * (omega[l] * t + phase[l]).sin();
                }
            }
        }
    }
}

impl Waveform {
    /// Lane `l`'s input over a step that starts at `t_start` (ms), at the stage time
    /// `t_stage` within it. A continuous input is evaluated at `t_stage`; a step or a pulse
    /// at `t_start`, which gives its value over the whole step because the adaptive kernel
    /// never lets a step straddle an edge (see [`Waveform::next_edge`]).
    #[inline(always)]
    pub(super) fn lane_value(&self, l: usize, t_start: f64, t_stage: f64) -> f64 {
        match self {
            Waveform::None => 0.0,
            Waveform::Step { at, before, after } => {
                if t_start < at[l] {
                    before[l]
                } else {
                    after[l]
                }
            }
            Waveform::Pulse {
                start,
                stop,
                amplitude,
            } => {
                if start[l] <= t_start && t_start < stop[l] {
                    amplitude[l]
                } else {
                    0.0
                }
            }
            Waveform::Sine {
                amplitude,
                omega,
                phase,
                offset,
            } => offset[l] + amplitude[l] * (omega[l] * t_stage + phase[l]).sin(),
        }
    }

    /// The first edge of lane `l`'s input strictly after `t` (ms), or +inf.
    #[inline(always)]
    pub(super) fn next_edge(&self, l: usize, t: f64) -> f64 {
        let after = |e: f64| if e > t { e } else { f64::INFINITY };
        match self {
            Waveform::None | Waveform::Sine { .. } => f64::INFINITY,
            Waveform::Step { at, .. } => after(at[l]),
            Waveform::Pulse { start, stop, .. } => after(start[l]).min(after(stop[l])),
        }
    }
}

/// An OU process per lane, updated exactly: `x' = x e + sigma sqrt(1 - e^2) xi`,
/// `e = exp(-dt/tau)`, from `x = 0`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ou {
    /// Per-step decay factor `e = exp(-dt/tau)`, in (0, 1).
    pub decay: Lanes,
    /// Scale of the per-step normal kick, `sigma sqrt(1 - e^2)` (the input's units).
    pub kick: Lanes,
}

impl Ou {
    /// Every lane at zero decay and kick: the process stays at 0 until lanes are set.
    pub fn new() -> Ou {
        Ou {
            decay: [0.0; LANES],
            kick: [0.0; LANES],
        }
    }

    /// Sets lane `l` for stationary std `sigma` and correlation time `tau_ms`.
    pub fn set_lane(&mut self, l: usize, sigma: f64, tau_ms: f64, dt: f64) {
        let e = (-dt / tau_ms).exp();
        self.decay[l] = e;
        self.kick[l] = sigma * (1.0 - e * e).sqrt();
    }
}

impl Ou {
    /// One exact step of every lane's process, given standard normals `xi`.
    #[inline(always)]
    pub fn advance(&self, state: &mut Lanes, xi: &Lanes) {
        for l in 0..LANES {
            state[l] = state[l] * self.decay[l] + self.kick[l] * xi[l];
        }
    }
}

impl Default for Ou {
    fn default() -> Ou {
        Ou::new()
    }
}

/// Everything that varies the inputs over time, for r (index 0) and v (index 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Drive {
    /// Deterministic time course of each input.
    pub waveform: [Waveform; 2],
    /// OU noise added to each input; `None` without.
    pub ou: [Option<Ou>; 2],
}

impl Default for Drive {
    fn default() -> Drive {
        Drive {
            waveform: [Waveform::None; 2],
            ou: [None; 2],
        }
    }
}

impl Drive {
    /// Whether the inputs change at all (if not, the kernel skips evaluating them).
    pub fn is_active(&self) -> bool {
        self.waveform.iter().any(|w| *w != Waveform::None) || self.ou.iter().any(Option::is_some)
    }

    /// Inputs at time `t` given the OU states.
    #[inline(always)]
    pub(super) fn eval(&self, t: f64, ou_state: &[Lanes; 2], out: &mut [Lanes; 2]) {
        for x in 0..2 {
            self.waveform[x].eval(t, &mut out[x]);
            if self.ou[x].is_some() {
                for l in 0..LANES {
                    out[x][l] += ou_state[x][l];
                }
            }
        }
    }
}
