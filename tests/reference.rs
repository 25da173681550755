//! The kernel against brainmass 0.1.1 trajectories (tests/data, copied from the reference
//! set; see tests/data/README.md). At tau = 1 ms the models coincide once
//! delta = delta_Hz / 1000; every row must agree within 1e-9 * max(1, |ref|). The cases of
//! tests/data/methods (rk2, dopri5, and exp_euler where its step is unstable at the stable
//! state, so that brainmass rings forever) are checked the same way.

mod common;

use mpr_sweep::integrate::Isa;
use mpr_sweep::simulate::TracePoint;

use common::sim::{isas, simulate};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
const METHODS_DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/methods");

fn reference(dir: &str, case: &str) -> Vec<[f64; 3]> {
    let text = std::fs::read_to_string(format!("{dir}/ref_{case}.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let v: Vec<f64> = l.split(',').map(|x| x.parse().unwrap()).collect();
            [v[0], v[1], v[2]]
        })
        .collect()
}

/// The parameters and method of a case from cases.json (read with a minimal scan: the file
/// is flat).
fn case_spec(dir: &str, case: &str) -> String {
    let json = std::fs::read_to_string(format!("{dir}/cases.json")).unwrap();
    let start = json
        .find(&format!("\"{case}\": {{"))
        .expect("case in cases.json");
    let body = &json[start..start + json[start..].find('}').unwrap()];
    let get = |key: &str| -> f64 {
        let k = body
            .find(&format!("\"{key}\":"))
            .unwrap_or_else(|| panic!("{key}"));
        let rest = &body[k + key.len() + 3..];
        rest[..rest.find([',', '\n']).unwrap()]
            .trim()
            .parse()
            .unwrap()
    };
    assert_eq!(get("tau_ms"), 1.0, "reference cases are at tau = 1 ms");
    let m = body.find("\"method\": \"").expect("method in the case") + 11;
    let method = &body[m..m + body[m..].find('"').unwrap()];
    format!(
        "model: {{tau_ms: 1.0, eta: {}, J: {}, delta: {}}}\n\
         init: {{r_hz: {}, v: {}}}\n\
         input: {{r_hz: {}, v: {}}}\n\
         simulation: {{dt_ms: {}, duration_ms: {}, method: {method}}}\n\
         output: {{traces: {{every_ms: {}, runs: all}}}}\n",
        get("eta"),
        get("J"),
        get("delta_Hz") / 1000.0,
        get("r0_Hz"),
        get("v0"),
        get("r_inp_Hz"),
        get("v_inp"),
        get("dt_ms"),
        get("T_ms"),
        get("dt_ms"),
    )
}

/// The trace of a case's one run.
fn trace(dir: &str, case: &str, isa: Isa) -> Vec<TracePoint> {
    simulate(&case_spec(dir, case), isa).pop().unwrap().trace
}

fn check(case: &str) {
    check_in(DATA, case)
}

fn check_in(dir: &str, case: &str) {
    let want = reference(dir, case);
    for isa in isas() {
        let got = trace(dir, case, isa);
        assert_eq!(got.len(), want.len(), "{case}: rows");
        let mut worst = 0.0f64;
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g.t_ms - w[0]).abs() < 1e-12,
                "{case} row {i}: t {} vs {}",
                g.t_ms,
                w[0]
            );
            for (ours, theirs, name) in [(g.r_hz, w[1], "r"), (g.v, w[2], "v")] {
                let err = (ours - theirs).abs() / theirs.abs().max(1.0);
                worst = worst.max(err);
                assert!(
                    err <= 1e-9,
                    "{case} ({}) row {i} {name}: ours {ours} brainmass {theirs} (rel. err {err:.2e})",
                    isa.name()
                );
            }
        }
        eprintln!("{case} ({}): worst relative error {worst:.2e}", isa.name());
    }
}

#[test]
fn exp_euler_tiny_delta_resting_state() {
    check("a");
}

#[test]
fn exp_euler_tiny_delta_higher_eta() {
    check("b");
}

#[test]
fn exp_euler_low_coupling() {
    check("d");
}

#[test]
fn exp_euler_papers_default_parameters() {
    check("h_canon");
}

#[test]
fn exp_euler_with_constant_rate_input() {
    check("h_canon_rinp");
}

#[test]
fn rk4_papers_default_parameters() {
    check("f");
}

#[test]
fn rk2_papers_default_parameters() {
    check_in(METHODS_DATA, "rk2_canon");
}

#[test]
fn dopri5_papers_default_parameters() {
    check_in(METHODS_DATA, "dopri5_canon");
}

#[test]
fn dopri5_weakly_damped_high_rate_focus() {
    check_in(METHODS_DATA, "dopri5_highJ");
}

/// brainmass's exp_euler at dt = 0.01 ms rings around a stable state it cannot settle on;
/// the kernel reproduces the ringing, and the step-size diagnostic flags the point.
#[test]
fn exp_euler_ringing_where_its_step_is_unstable() {
    check_in(METHODS_DATA, "exp_euler_ringing");
    let row = simulate(&case_spec(METHODS_DATA, "exp_euler_ringing"), Isa::Portable)
        .pop()
        .unwrap()
        .row;
    let s = row
        .dt_stability
        .expect("constant inputs: the diagnostic is computed");
    assert!(!s.stable, "{s:?}");
    assert!(s.max_dt_ms < 0.01 && s.max_dt_ms > 0.009, "{s:?}");
}
