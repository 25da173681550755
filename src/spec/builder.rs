//! The spec builder: walks the positioned YAML tree section by section, fills a [`Spec`]
//! with defaults, and checks the rules that span sections (zip groups, trace steps, the
//! method's noise, transient before duration).

use super::axis::Axis;
use super::read::{
    at, axis, entries, hint, integer, number, pair, string, trace_runs, unknown_form,
};
use super::suggest::did_you_mean;
use super::yaml::{self, Node, Value};
use super::*;

pub(super) struct SpecBuilder {
    pub(super) spec: Spec,
    /// The `network` section, read once the simulation's steps are known.
    pub(super) network_node: Option<Node>,
    /// `output.fc` when given.
    fc_node: Option<Node>,
    zip_node: Option<Node>,
    traces_node: Option<Node>,
    transient_mark: Option<Mark>,
    duration_mark: Option<Mark>,
    method_mark: Option<Mark>,
    adaptive_mark: Option<Mark>,
    /// `simulation.adaptive.dt_max_ms` when given, with its mark.
    dt_max: Option<(f64, Mark)>,
    noise_marks: [Option<Mark>; 2],
}

impl SpecBuilder {
    pub(super) fn new(text: &str) -> SpecBuilder {
        SpecBuilder {
            spec: Spec {
                text: text.to_string(),
                name: None,
                params: Vec::new(),
                init_r_hz: InitDist::Uniform { lo: 0.0, hi: 0.05 },
                init_v: InitDist::Uniform { lo: 0.0, hi: 0.05 },
                input: [InputForm::Constant; 2],
                noise: [NoiseKind::None; 2],
                duration_ms: 100.0,
                transient_ms: 0.0,
                method: Method::ExpEuler,
                adaptive: None,
                seed: 0,
                replicates: 1,
                zip: Vec::new(),
                traces: None,
                network: None,
                fc_output: false,
            },
            network_node: None,
            fc_node: None,
            zip_node: None,
            traces_node: None,
            transient_mark: None,
            duration_mark: None,
            method_mark: None,
            adaptive_mark: None,
            dt_max: None,
            noise_marks: [None; 2],
        }
    }

    pub(super) fn push(&mut self, slot: Slot, node: &Node, path: &str) -> Result<&Axis, SpecError> {
        let axis = axis(node, path)?;
        self.spec.params.push(Param {
            slot,
            axis,
            mark: Some(node.mark),
        });
        Ok(&self.spec.params.last().unwrap().axis)
    }

    pub(super) fn model(&mut self, node: &Node) -> Result<(), SpecError> {
        for (key, value) in entries(node, "model", &["tau_ms", "eta", "J", "delta"])? {
            let path = yaml::join("model", key);
            match key.as_str() {
                "tau_ms" => {
                    let (lo, _) = self.push(Slot::TauMs, value, &path)?.range();
                    if lo <= 0.0 {
                        return Err(at(value, &path, format!("tau_ms must be > 0, got {lo}")));
                    }
                }
                "eta" => drop(self.push(Slot::Eta, value, &path)?),
                "J" => drop(self.push(Slot::J, value, &path)?),
                "delta" => {
                    let (lo, _) = self.push(Slot::Delta, value, &path)?.range();
                    if lo < 0.0 {
                        return Err(at(value, &path, format!("delta must be >= 0, got {lo}")));
                    }
                }
                _ => unreachable!(),
            }
        }
        Ok(())
    }

    pub(super) fn init(&mut self, node: &Node) -> Result<(), SpecError> {
        for (key, value) in entries(node, "init", &["r_hz", "v"])? {
            let path = yaml::join("init", key);
            let (slot, dist) = match key.as_str() {
                "r_hz" => (Slot::InitRHz, &mut self.spec.init_r_hz),
                _ => (Slot::InitV, &mut self.spec.init_v),
            };
            if let Value::Map(m) = &value.value
                && let [(form, args)] = m.as_slice()
                && (form == "uniform" || form == "normal")
            {
                let form_path = yaml::join(&path, form);
                let [a, b] = pair(args, &form_path)?;
                *dist = if form == "uniform" {
                    if a > b {
                        return Err(at(
                            args,
                            &form_path,
                            format!("uniform [lo, hi] needs lo <= hi, got [{a}, {b}]"),
                        ));
                    }
                    if !(b - a).is_finite() {
                        return Err(at(args, &form_path, "the range hi - lo overflows f64"));
                    }
                    InitDist::Uniform { lo: a, hi: b }
                } else {
                    if b < 0.0 {
                        return Err(at(
                            args,
                            &form_path,
                            format!("normal [mean, std] needs std >= 0, got {b}"),
                        ));
                    }
                    // Box-Muller normals stay below 8.6 in magnitude (uniforms >= 2^-53).
                    if !(a.abs() + 9.0 * b).is_finite() {
                        return Err(at(args, &form_path, "mean + 9 std overflows f64"));
                    }
                    InitDist::Normal { mean: a, std: b }
                };
            } else {
                if let Some(e) = unknown_form(value, &path, &["uniform", "normal"]) {
                    return Err(e);
                }
                *dist = InitDist::Param;
                self.push(slot, value, &path)
                    .map_err(|e| hint(e, "or {uniform: [lo, hi]} or {normal: [mean, std]}"))?;
            }
        }
        Ok(())
    }

    pub(super) fn input(&mut self, node: &Node) -> Result<(), SpecError> {
        for (key, value) in entries(node, "input", &["r_hz", "v"])? {
            let var = Var::parse(key);
            let path = yaml::join("input", key);
            let Value::Map(forms) = &value.value else {
                self.push(var.input_slot(), value, &path)
                    .map_err(|e| hint(e, "or {step: {..}}, {pulse: {..}} or {sine: {..}}"))?;
                continue;
            };
            let form = match forms.as_slice() {
                [(f, _)] if f == "step" => InputForm::Step,
                [(f, _)] if f == "pulse" => InputForm::Pulse,
                [(f, _)] if f == "sine" => InputForm::Sine,
                _ => {
                    if let Some(e) = unknown_form(value, &path, &["step", "pulse", "sine"]) {
                        return Err(e);
                    }
                    // An axis form (linspace, ...) or an error message about one.
                    self.push(var.input_slot(), value, &path)
                        .map_err(|e| hint(e, "or {step: {..}}, {pulse: {..}} or {sine: {..}}"))?;
                    continue;
                }
            };
            let (form_key, args) = (&forms[0].0, &forms[0].1);
            let form_path = yaml::join(&path, form_key);
            let allowed: Vec<&str> = form.keys().iter().map(|(k, _)| *k).collect();
            let given = entries(args, &form_path, &allowed)?;
            for &(k, default) in form.keys() {
                let slot = Slot::input(var, k).expect("input keys have slots");
                match given.iter().find(|(g, _)| g == k) {
                    Some((_, v)) => {
                        let p = yaml::join(&form_path, k);
                        let (lo, _) = self.push(slot, v, &p)?.range();
                        if k == "freq_hz" && lo < 0.0 {
                            return Err(at(v, &p, format!("freq_hz must be >= 0, got {lo}")));
                        }
                    }
                    None => match default {
                        Some(d) => self.spec.params.push(Param {
                            slot,
                            axis: Axis::Fixed(d),
                            mark: None,
                        }),
                        None => {
                            return Err(at(args, &form_path, format!("{form_key} needs `{k}`")));
                        }
                    },
                }
            }
            self.spec.input[var as usize] = form;
        }
        Ok(())
    }

    pub(super) fn noise(&mut self, node: &Node) -> Result<(), SpecError> {
        for (key, value) in entries(node, "noise", &["r_hz", "v"])? {
            let var = Var::parse(key);
            let path = yaml::join("noise", key);
            let kinds = entries(value, &path, &["white", "ou"])?;
            let [(kind_key, args)] = kinds else {
                return Err(at(
                    value,
                    &path,
                    "give one of white: {sigma} or ou: {sigma, tau_ms}",
                ));
            };
            let kind_path = yaml::join(&path, kind_key);
            let (kind, keys): (NoiseKind, &[&str]) = if kind_key == "white" {
                (NoiseKind::White, &["sigma"])
            } else {
                (NoiseKind::Ou, &["sigma", "tau_ms"])
            };
            let given = entries(args, &kind_path, keys)?;
            for &k in keys {
                let Some((_, v)) = given.iter().find(|(g, _)| g == k) else {
                    return Err(at(
                        args,
                        &kind_path,
                        format!("{kind_key} noise needs `{k}`"),
                    ));
                };
                let p = yaml::join(&kind_path, k);
                let slot = Slot::noise(var, k).expect("noise keys have slots");
                let (lo, _) = self.push(slot, v, &p)?.range();
                if k == "sigma" && lo < 0.0 {
                    return Err(at(v, &p, format!("sigma must be >= 0, got {lo}")));
                }
                if k == "tau_ms" && lo <= 0.0 {
                    return Err(at(v, &p, format!("tau_ms must be > 0, got {lo}")));
                }
            }
            self.spec.noise[var as usize] = kind;
            self.noise_marks[var as usize] = Some(kind_key.mark);
        }
        Ok(())
    }

    pub(super) fn simulation(&mut self, node: &Node) -> Result<(), SpecError> {
        for (key, value) in entries(
            node,
            "simulation",
            &["dt_ms", "duration_ms", "transient_ms", "method", "adaptive"],
        )? {
            let path = yaml::join("simulation", key);
            match key.as_str() {
                "dt_ms" => {
                    let axis = self.push(Slot::DtMs, value, &path)?;
                    let (lo, _) = axis.range();
                    if axis.len() > MAX_DT_VALUES {
                        return Err(at(
                            value,
                            &path,
                            format!("dt_ms takes at most {MAX_DT_VALUES} values"),
                        ));
                    }
                    if lo <= 0.0 {
                        return Err(at(value, &path, format!("dt_ms must be > 0, got {lo}")));
                    }
                }
                "duration_ms" => {
                    self.spec.duration_ms = number(value, &path)?;
                    self.duration_mark = Some(value.mark);
                    if self.spec.duration_ms <= 0.0 {
                        return Err(at(value, &path, "duration_ms must be > 0"));
                    }
                }
                "transient_ms" => {
                    self.spec.transient_ms = number(value, &path)?;
                    self.transient_mark = Some(value.mark);
                    if self.spec.transient_ms < 0.0 {
                        return Err(at(value, &path, "transient_ms must be >= 0"));
                    }
                }
                "adaptive" => self.adaptive(value)?,
                "method" => {
                    self.method_mark = Some(value.mark);
                    let name = string(value, &path)?;
                    self.spec.method = Method::from_name(&name).ok_or_else(|| {
                        let names = Method::ALL.map(Method::name);
                        at(
                            value,
                            &path,
                            format!(
                                "unknown method `{name}`{}; expected one of: {}",
                                did_you_mean(&name, &names),
                                names.join(", ")
                            ),
                        )
                    })?;
                }
                _ => unreachable!(),
            }
        }
        Ok(())
    }

    /// `simulation.adaptive: {rtol, atol_r_hz, atol_v, dt_max_ms}`; the rules that involve
    /// other sections are checked in [`SpecBuilder::check_adaptive`].
    fn adaptive(&mut self, node: &Node) -> Result<(), SpecError> {
        self.adaptive_mark = Some(node.mark);
        let base = "simulation.adaptive";
        for (key, value) in entries(node, base, &["rtol", "atol_r_hz", "atol_v", "dt_max_ms"])? {
            let path = yaml::join(base, key);
            match key.as_str() {
                "rtol" => {
                    let (lo, hi) = self.push(Slot::Rtol, value, &path)?.range();
                    if lo < 1e-14 || hi >= 1.0 {
                        return Err(at(
                            value,
                            &path,
                            format!(
                                "rtol must be in [1e-14, 1) (double precision cannot meet less), got {}",
                                if lo < 1e-14 { lo } else { hi }
                            ),
                        ));
                    }
                }
                "atol_r_hz" | "atol_v" => {
                    let slot = if key == "atol_v" {
                        Slot::AtolV
                    } else {
                        Slot::AtolRHz
                    };
                    let (lo, _) = self.push(slot, value, &path)?.range();
                    if lo < 0.0 {
                        return Err(at(value, &path, format!("{key} must be >= 0, got {lo}")));
                    }
                }
                "dt_max_ms" => {
                    let x = number(value, &path)?;
                    if x <= 0.0 {
                        return Err(at(value, &path, format!("dt_max_ms must be > 0, got {x}")));
                    }
                    self.dt_max = Some((x, value.mark));
                }
                _ => unreachable!(),
            }
        }
        Ok(())
    }

    /// With `simulation.adaptive`: the method must be dopri5 or dop853 and there must be no
    /// noise; fills in the defaults. Without it, the method must have a fixed step.
    fn check_adaptive(&mut self) -> Result<(), SpecError> {
        let Some(mark) = self.adaptive_mark else {
            if !self.spec.method.has_fixed_step() {
                return Err(SpecError::new(
                    "simulation.method",
                    self.method_mark,
                    format!(
                        "method {} takes adaptive steps only: add `simulation.adaptive` (for example `adaptive: {{rtol: 1e-8}}`), or use dopri5 or rk4 for a fixed step",
                        self.spec.method.name()
                    ),
                ));
            }
            return Ok(());
        };
        if !matches!(self.spec.method, Method::Dopri5 | Method::Dop853) {
            return Err(SpecError::new(
                "simulation.adaptive",
                Some(mark),
                format!(
                    "adaptive steps need `method: dopri5` or `method: dop853` (the embedded error estimates of the Dormand-Prince pairs), got method {}",
                    self.spec.method.name()
                ),
            ));
        }
        for var in Var::BOTH {
            let kind = match self.spec.noise[var as usize] {
                NoiseKind::None => continue,
                NoiseKind::White => "white",
                NoiseKind::Ou => "ou",
            };
            return Err(SpecError::new(
                &format!("noise.{}.{kind}", var.name()),
                self.noise_marks[var as usize],
                format!(
                    "{kind} noise cannot be used with simulation.adaptive (error control needs a deterministic right-hand side); remove the noise or the adaptive section"
                ),
            ));
        }
        for (slot, default) in ADAPTIVE_DEFAULTS {
            if self.spec.param(slot).is_none() {
                self.spec.params.push(Param {
                    slot,
                    axis: Axis::Fixed(default),
                    mark: None,
                });
            }
        }
        let dt_max_ms = match self.dt_max {
            Some((x, _)) => x,
            None => self.spec.duration_ms,
        };
        self.spec.adaptive = Some(Adaptive { dt_max_ms });
        Ok(())
    }

    pub(super) fn sweep(&mut self, node: &Node) -> Result<(), SpecError> {
        for (key, value) in entries(node, "sweep", &["seed", "replicates", "zip"])? {
            let path = yaml::join("sweep", key);
            match key.as_str() {
                "seed" => self.spec.seed = integer(value, &path, u64::MAX)?,
                "replicates" => {
                    self.spec.replicates = integer(value, &path, u32::MAX as u64)? as u32;
                    if self.spec.replicates == 0 {
                        return Err(at(value, &path, "replicates must be >= 1"));
                    }
                }
                "zip" => self.zip_node = Some(value.clone()),
                _ => unreachable!(),
            }
        }
        Ok(())
    }

    pub(super) fn output(&mut self, node: &Node) -> Result<(), SpecError> {
        for (key, value) in entries(node, "output", &["traces", "fc"])? {
            if key == "traces" && value.value != Value::Null {
                self.traces_node = Some(value.clone());
            }
            if key == "fc" {
                self.fc_node = Some(value.clone());
            }
        }
        Ok(())
    }

    pub(super) fn finish(mut self) -> Result<Spec, SpecError> {
        // Named at duration_ms when the spec gives it, else at dt_ms.
        let (step_path, step_mark) = match self.duration_mark {
            Some(m) => ("simulation.duration_ms", Some(m)),
            None => (
                "simulation.dt_ms",
                self.spec.param(Slot::DtMs).and_then(|p| p.mark),
            ),
        };
        let dt_min = self.spec.dt_ms_or_default();
        let steps = self.spec.duration_ms / dt_min;
        if steps > MAX_STEPS as f64 {
            return Err(SpecError::new(
                step_path,
                step_mark,
                format!("duration_ms / dt_ms = {steps:.3e} steps; at most 2^53 are supported"),
            ));
        }
        let defaults = [
            (Slot::TauMs, 1.0),
            (Slot::Eta, -5.0),
            (Slot::J, 15.0),
            (Slot::Delta, 1.0),
            (Slot::DtMs, 0.01),
        ];
        let constant_inputs = Var::BOTH
            .into_iter()
            .filter(|v| self.spec.input[*v as usize] == InputForm::Constant)
            .map(|v| (v.input_slot(), 0.0));
        for (slot, default) in defaults
            .into_iter()
            .chain(constant_inputs)
            .collect::<Vec<_>>()
        {
            if self.spec.param(slot).is_none() {
                self.spec.params.push(Param {
                    slot,
                    axis: Axis::Fixed(default),
                    mark: None,
                });
            }
        }
        if matches!(self.spec.method, Method::Rk4 | Method::Dopri5) {
            for var in Var::BOTH {
                if self.spec.noise[var as usize] == NoiseKind::White {
                    return Err(SpecError::new(
                        &format!("noise.{}.white", var.name()),
                        self.noise_marks[var as usize],
                        format!(
                            "white noise cannot be used with method {} (no strong-order scheme here); use heun, rk2, euler or exp_euler, or ou noise",
                            self.spec.method.name()
                        ),
                    ));
                }
            }
        }
        if self.spec.transient_ms >= self.spec.duration_ms {
            return Err(SpecError::new(
                "simulation.transient_ms",
                self.transient_mark,
                format!(
                    "transient_ms ({}) must be smaller than duration_ms ({})",
                    self.spec.transient_ms, self.spec.duration_ms
                ),
            ));
        }
        self.check_adaptive()?;
        // Runs end at duration_ms and statistics start at transient_ms exactly (adaptive
        // steps land there by themselves).
        if self.spec.adaptive.is_none() {
            let dts = self.spec.dt_values();
            let given = if self.duration_mark.is_some() {
                ""
            } else {
                ", the default"
            };
            whole_steps_of_every_dt("duration_ms", given, self.spec.duration_ms, 1, &dts)
                .map_err(|m| SpecError::new(step_path, step_mark, m))?;
            whole_steps_of_every_dt("transient_ms", "", self.spec.transient_ms, 0, &dts)
                .map_err(|m| SpecError::new("simulation.transient_ms", self.transient_mark, m))?;
        }
        if let Some(node) = self.zip_node.take() {
            self.spec.zip = self.zip(&node)?;
        }
        for var in Var::BOTH {
            self.check_input_window(var)?;
        }
        if let Some(node) = self.traces_node.take() {
            self.spec.traces = Some(self.traces(&node)?);
        }
        if let Some(node) = self.network_node.take() {
            self.network(&node)?;
        }
        if let Some(node) = self.fc_node.take() {
            self.spec.fc_output = match &node.value {
                Value::Bool(b) => *b,
                other => {
                    return Err(at(
                        &node,
                        "output.fc",
                        format!("expected true or false, got {}", other.kind()),
                    ));
                }
            };
            if self.spec.fc_output && self.spec.network.is_none() {
                return Err(at(
                    &node,
                    "output.fc",
                    "functional connectivity needs a `network` section",
                ));
            }
        }
        Ok(self.spec)
    }

    /// Refuses a pulse whose `stop_ms` is not after its `start_ms` (an empty or inverted
    /// window, which would run as if there were no pulse) for any combination of their
    /// values that the sweep makes. A window outside [0, duration_ms) is allowed: the run
    /// then sees a constant input, as a control condition may want.
    fn check_input_window(&self, var: Var) -> Result<(), SpecError> {
        if self.spec.input[var as usize] != InputForm::Pulse {
            return Ok(());
        }
        let param = |key: &str| {
            let slot = Slot::input(var, key).expect("input keys have slots");
            self.spec.param(slot).expect("the form's keys are set")
        };
        let (start, stop) = (param("start_ms"), param("stop_ms"));
        let zipped = self
            .spec
            .zip
            .iter()
            .any(|group| group.contains(&start.slot) && group.contains(&stop.slot));
        // Zipped axes pair their values; otherwise every start meets every stop.
        let pairs: Vec<(f64, f64)> = if zipped {
            (0..start.axis.len())
                .map(|i| (start.axis.get(i), stop.axis.get(i)))
                .collect()
        } else {
            vec![(start.axis.range().1, stop.axis.range().0)]
        };
        match pairs.into_iter().find(|(a, b)| b <= a) {
            Some((a, b)) => Err(SpecError::new(
                &format!("input.{}.pulse.stop_ms", var.name()),
                stop.mark,
                format!(
                    "a pulse needs stop_ms > start_ms (a window of positive width), got start_ms {a} and stop_ms {b}"
                ),
            )),
            None => Ok(()),
        }
    }

    fn zip(&self, node: &Node) -> Result<Vec<Vec<Slot>>, SpecError> {
        let Value::Seq(groups) = &node.value else {
            return Err(at(
                node,
                "sweep.zip",
                format!(
                    "expected a list of lists of axis names, got {}",
                    node.value.kind()
                ),
            ));
        };
        let mut seen = Vec::new();
        let mut out = Vec::new();
        for (g, group) in groups.iter().enumerate() {
            let gpath = format!("sweep.zip[{g}]");
            let Value::Seq(names) = &group.value else {
                return Err(at(
                    group,
                    &gpath,
                    format!("expected a list of axis names, got {}", group.value.kind()),
                ));
            };
            if names.len() < 2 {
                return Err(at(group, &gpath, "a zip group needs at least two axes"));
            }
            let mut slots = Vec::new();
            let mut len = None;
            for (i, name_node) in names.iter().enumerate() {
                let npath = format!("{gpath}[{i}]");
                let name = string(name_node, &npath)?;
                let slot = Slot::from_column(&name).ok_or_else(|| {
                    at(name_node, &npath, format!("unknown parameter `{name}` (names are column names such as eta, J, delta, noise_v_sigma, init_r_hz)"))
                })?;
                let param = self
                    .spec
                    .param(slot)
                    .filter(|p| p.axis.is_swept())
                    .ok_or_else(|| {
                        at(
                            name_node,
                            &npath,
                            format!("`{name}` is not an axis in this spec"),
                        )
                    })?;
                if seen.contains(&slot) {
                    return Err(at(
                        name_node,
                        &npath,
                        format!("`{name}` appears in more than one zip position"),
                    ));
                }
                seen.push(slot);
                let n = param.axis.len();
                match len {
                    None => len = Some((n, name)),
                    Some((m, ref first)) if m != n => {
                        return Err(at(
                            name_node,
                            &npath,
                            format!(
                                "zipped axes need equal lengths: `{first}` has {m} values, `{name}` has {n}"
                            ),
                        ));
                    }
                    _ => {}
                }
                slots.push(slot);
            }
            out.push(slots);
        }
        Ok(out)
    }

    fn traces(&self, node: &Node) -> Result<Traces, SpecError> {
        let mut every_ms = None;
        let mut runs = TraceRuns::None;
        let dts = self.spec.dt_values();
        for (key, value) in entries(node, "output.traces", &["every_ms", "runs"])? {
            let path = yaml::join("output.traces", key);
            if key == "every_ms" {
                let e = number(value, &path)?;
                if self.spec.adaptive.is_some() {
                    // The dense output serves any time: only a positive period is needed.
                    if e <= 0.0 {
                        return Err(at(value, &path, format!("every_ms must be > 0, got {e}")));
                    }
                } else if let Some(dt) = dts.iter().find(|&&dt| e <= 0.0 || !is_multiple(e, dt)) {
                    return Err(at(
                        value,
                        &path,
                        format!("every_ms ({e}) must be a positive multiple of dt_ms ({dt})"),
                    ));
                }
                every_ms = Some(e);
            } else {
                runs = trace_runs(value, &path)?;
            }
        }
        let every_ms = match (every_ms, dts.as_slice()) {
            (Some(e), _) => e,
            (None, [dt]) => *dt,
            (None, _) => {
                return Err(at(
                    node,
                    "output.traces",
                    "with dt_ms as an axis, give every_ms (a multiple of every dt value)",
                ));
            }
        };
        Ok(Traces { every_ms, runs })
    }
}
