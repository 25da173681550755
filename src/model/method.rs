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
    /// refuses white noise.
    Dopri5,
}

impl Method {
    /// Every method, in the order the documentation lists them.
    pub const ALL: [Method; 6] = [
        Method::ExpEuler,
        Method::Euler,
        Method::Heun,
        Method::Rk2,
        Method::Rk4,
        Method::Dopri5,
    ];

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
        }
    }
}
