//! The integration methods a spec can name: one kernel scheme each (rk2 runs heun's),
//! and the stability analysis of their one-step maps.

/// Integration scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `exp_euler` (default): exponential Euler, each equation linearised in its own
    /// variable with the factor `2v/tau` (as brainstate).
    ExpEuler,
    /// `euler`: forward Euler / Euler–Maruyama.
    Euler,
    /// `heun`: Heun's predictor–corrector (stochastic Heun with white noise).
    Heun,
    /// `rk2`: braintools' `ode_rk2_step`, the same map as heun (which it runs).
    Rk2,
    /// `rk4`: classical fourth-order Runge–Kutta; refuses white noise.
    Rk4,
    /// `dopri5`: the fifth-order solution of the Dormand–Prince pair as a fixed step;
    /// refuses white noise. With `simulation.adaptive`, the 5(4) pair's adaptive steps.
    Dopri5,
    /// `dop853`: the Dormand–Prince 8(5,3) pair (Hairer's DOP853), adaptive steps only
    /// (`simulation.adaptive`; there is no fixed-step form).
    Dop853,
}

impl Method {
    /// Every method, in the order the documentation lists them.
    pub const ALL: [Method; 7] = [
        Method::ExpEuler,
        Method::Euler,
        Method::Heun,
        Method::Rk2,
        Method::Rk4,
        Method::Dopri5,
        Method::Dop853,
    ];

    /// The methods with a fixed-step form (every one but dop853), whose one-step maps the
    /// step-size check judges.
    pub const FIXED_STEP: [Method; 6] = [
        Method::ExpEuler,
        Method::Euler,
        Method::Heun,
        Method::Rk2,
        Method::Rk4,
        Method::Dopri5,
    ];

    /// Whether the method has a fixed-step form (see [`Method::FIXED_STEP`]).
    pub fn has_fixed_step(self) -> bool {
        self != Method::Dop853
    }

    /// The method a spec names, if any.
    pub fn from_name(name: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The name used in specs, metadata and messages.
    pub fn name(self) -> &'static str {
        match self {
            Method::ExpEuler => "exp_euler",
            Method::Euler => "euler",
            Method::Heun => "heun",
            Method::Rk2 => "rk2",
            Method::Rk4 => "rk4",
            Method::Dopri5 => "dopri5",
            Method::Dop853 => "dop853",
        }
    }
}
