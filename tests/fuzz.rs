//! Time-bounded fuzzing of the spec parser and the plan (issue 7).
//!
//! A seeded xoshiro generator (no fuzzing dependency) makes inputs three ways:
//!
//! - **generated specs**: random trees over the spec schema (known keys at every level, now
//!   and then a key from another level or an unknown one), with random values: plain and
//!   extreme numbers (NaN, infinities, 1e400, subnormals, 2^53, 2^64, negative zero, hex),
//!   lists, nested maps, axis forms with random arguments, strings, booleans, null, anchors
//!   and aliases; rendered in block or flow style;
//! - **mutations** of the example specs in `sweeps/`, the bad-input corpus in `tests/bad/`
//!   and generated specs: byte flips, inserted YAML tokens and random bytes (NUL, invalid
//!   UTF-8, control characters), deletions, truncation, duplicated and swapped lines,
//!   indentation changes, extreme numbers in place of numbers, splices of two inputs;
//! - a few raw `--shard` strings for `Shard::from_str`.
//!
//! Each input goes to `mpr_sweep::spec::parse`, and when that succeeds to `Plan::new` and a
//! few `plan.values(point)`, `plan.address(run)` and `plan.shard_range(shard)` calls, under
//! `catch_unwind`. The test fails on a panic (the input is printed as a Rust string literal
//! and written to `target/tmp/fuzz-failures/`, ready to become a `tests/bad/` case) and on a
//! broken property: every error has a non-empty message and names a key path or a position
//! inside the text; a valid plan has consistent counts, addresses, finite parameter values
//! and shards that partition the runs.
//!
//! Environment:
//! - `MPR_SWEEP_FUZZ_SECONDS`: how long to fuzz (default 3, so `cargo test` stays quick);
//! - `MPR_SWEEP_FUZZ_SEED`: the seed (default: from the clock; printed to reproduce a run).
//!
//! Run longer, in release, and see the report:
//!
//! ```sh
//! MPR_SWEEP_FUZZ_SECONDS=600 cargo test --release --test fuzz -- --nocapture
//! MPR_SWEEP_FUZZ_SEED=1234 MPR_SWEEP_FUZZ_SECONDS=60 cargo test --test fuzz -- --nocapture
//! ```

mod common;

use std::fmt::Write as _;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mpr_sweep::plan::{Plan, Shard};
use mpr_sweep::spec::{self, Slot, SpecError};
use rand::{Rng, RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use common::settings::{env_u64, seed_from_env};

// ---------------------------------------------------------------------------------------
// A small YAML tree and its rendering
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Y {
    Scalar(String),
    Seq(Vec<Y>),
    Map(Vec<(String, Y)>),
    /// `&name value` (an anchor the generator may later refer to).
    Anchor(String, Box<Y>),
    /// `*name`
    Alias(String),
}

fn render(y: &Y, rng: &mut Xoshiro256PlusPlus) -> String {
    let mut out = String::new();
    if rng.random_bool(0.3) {
        flow(y, &mut out);
        out.push('\n');
    } else {
        block(y, 0, &mut out, rng);
    }
    out
}

fn flow(y: &Y, out: &mut String) {
    match y {
        Y::Scalar(s) => out.push_str(s),
        Y::Alias(a) => {
            let _ = write!(out, "*{a}");
        }
        Y::Anchor(a, v) => {
            let _ = write!(out, "&{a} ");
            flow(v, out);
        }
        Y::Seq(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                flow(item, out);
            }
            out.push(']');
        }
        Y::Map(entries) => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                let _ = write!(out, "{k}: ");
                flow(v, out);
            }
            out.push('}');
        }
    }
}

/// Block style for mappings at the top; inner collections are flow or block at random.
fn block(y: &Y, indent: usize, out: &mut String, rng: &mut Xoshiro256PlusPlus) {
    let pad = " ".repeat(indent);
    match y {
        Y::Map(entries) if !entries.is_empty() => {
            for (k, v) in entries {
                let _ = write!(out, "{pad}{k}:");
                match v {
                    Y::Map(m) if !m.is_empty() && rng.random_bool(0.6) => {
                        out.push('\n');
                        block(v, indent + 2, out, rng);
                    }
                    Y::Seq(s) if !s.is_empty() && rng.random_bool(0.3) => {
                        out.push('\n');
                        block(v, indent + 2, out, rng);
                    }
                    _ => {
                        out.push(' ');
                        flow(v, out);
                        out.push('\n');
                    }
                }
            }
        }
        Y::Seq(items) if !items.is_empty() => {
            for item in items {
                let _ = write!(out, "{pad}- ");
                flow(item, out);
                out.push('\n');
            }
        }
        other => {
            out.push_str(&pad);
            flow(other, out);
            out.push('\n');
        }
    }
}

// ---------------------------------------------------------------------------------------
// Generated specs
// ---------------------------------------------------------------------------------------

const TOP_KEYS: [&str; 8] = [
    "name",
    "model",
    "init",
    "input",
    "noise",
    "simulation",
    "sweep",
    "output",
];

/// Every key name the schema knows, at any level (used to put keys at the wrong level).
const ALL_KEYS: [&str; 40] = [
    "name",
    "model",
    "init",
    "input",
    "noise",
    "simulation",
    "sweep",
    "output",
    "tau_ms",
    "eta",
    "J",
    "delta",
    "r_hz",
    "v",
    "white",
    "ou",
    "sigma",
    "step",
    "pulse",
    "sine",
    "at_ms",
    "before",
    "after",
    "start_ms",
    "stop_ms",
    "amplitude",
    "freq_hz",
    "phase",
    "offset",
    "dt_ms",
    "duration_ms",
    "transient_ms",
    "method",
    "seed",
    "replicates",
    "zip",
    "traces",
    "every_ms",
    "runs",
    "linspace",
];

struct Gen {
    rng: Xoshiro256PlusPlus,
    anchors: Vec<String>,
}

impl Gen {
    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.rng.random_range(0..items.len())]
    }

    /// A number as YAML text: mostly ordinary, sometimes extreme or not quite a number.
    fn number(&mut self) -> String {
        match self.rng.random_range(0..20u32) {
            0..=7 => {
                let x: f64 = self.rng.random_range(-20.0..20.0);
                format!("{}", (x * 100.0).round() / 100.0)
            }
            8..=10 => format!("{}", self.rng.random_range(0..200u32)),
            11 => format!("{}", self.rng.random_range(0.001..0.1f64)),
            12 => {
                // Any f64 at all, from its bits.
                let x = f64::from_bits(self.rng.next_u64());
                format!("{x:e}")
            }
            13 => format!("{}", self.rng.next_u64()),
            _ => self
                .pick(&[
                    ".nan",
                    "NaN",
                    ".inf",
                    "-.inf",
                    "inf",
                    "1e400",
                    "-1e400",
                    "1e308",
                    "-1e308",
                    "1.7976931348623157e308",
                    "5e-324",
                    "-5e-324",
                    "2.2250738585072014e-308",
                    "0",
                    "-0",
                    "-0.0",
                    "1",
                    "-1",
                    "9007199254740992",
                    "9007199254740993",
                    "9223372036854775808",
                    "18446744073709551615",
                    "18446744073709551616",
                    "4294967295",
                    "4294967296",
                    "0x10",
                    "0xFFFFFFFFFFFFFFFF",
                    "-0x1",
                    "0o17",
                    "1_000",
                    "+5",
                    ".5",
                    "5.",
                    "1e-300",
                    "0.01",
                    "0.015",
                    "1e30",
                    "-1e30",
                ])
                .to_string(),
        }
    }

    fn small_count(&mut self) -> String {
        match self.rng.random_range(0..10u32) {
            0 => self.number(),
            1 => "0".into(),
            _ => format!("{}", self.rng.random_range(1..12u32)),
        }
    }

    /// A parameter: a number or an axis form with random arguments.
    fn param(&mut self) -> Y {
        match self.rng.random_range(0..12u32) {
            0..=4 => Y::Scalar(self.number()),
            5..=6 => {
                let n = self.rng.random_range(0..5usize);
                Y::Seq((0..n).map(|_| Y::Scalar(self.number())).collect())
            }
            7..=9 => {
                let form = *self.pick(&["linspace", "geomspace", "arange"]);
                let third = if form == "arange" {
                    self.number()
                } else {
                    self.small_count()
                };
                let mut args = vec![
                    Y::Scalar(self.number()),
                    Y::Scalar(self.number()),
                    Y::Scalar(third),
                ];
                if self.chance(0.1) {
                    args.truncate(self.rng.random_range(0..3usize));
                }
                if self.chance(0.05) {
                    args.push(Y::Scalar(self.number()));
                }
                Y::Map(vec![(form.to_string(), Y::Seq(args))])
            }
            _ => self.junk(2),
        }
    }

    /// Anything at all.
    fn junk(&mut self, depth: u32) -> Y {
        let pick = if depth == 0 {
            self.rng.random_range(0..5u32)
        } else {
            self.rng.random_range(0..8u32)
        };
        match pick {
            0 => Y::Scalar(self.number()),
            1 => Y::Scalar(
                self.pick(&[
                    "~",
                    "null",
                    "true",
                    "false",
                    "''",
                    "\"1.5\"",
                    "abc",
                    "all",
                    "none",
                    "rk4",
                    "eta",
                    "\"\\0\"",
                    "\"\\uFFFF\"",
                    "'a''b'",
                ])
                .to_string(),
            ),
            2 => Y::Scalar(self.pick(&ALL_KEYS).to_string()),
            3 if !self.anchors.is_empty() => Y::Alias(self.pick(&self.anchors.clone()).clone()),
            3 | 4 => Y::Scalar(self.number()),
            5 => {
                let n = self.rng.random_range(0..4usize);
                Y::Seq((0..n).map(|_| self.junk(depth - 1)).collect())
            }
            6 => {
                let n = self.rng.random_range(0..4usize);
                Y::Map(
                    (0..n)
                        .map(|_| (self.key(&ALL_KEYS), self.junk(depth - 1)))
                        .collect(),
                )
            }
            _ => {
                let name = format!("a{}", self.anchors.len());
                self.anchors.push(name.clone());
                Y::Anchor(name, Box::new(self.junk(depth - 1)))
            }
        }
    }

    /// A key: usually one of `known`, sometimes one of another level or an unknown one.
    fn key(&mut self, known: &[&str]) -> String {
        match self.rng.random_range(0..30u32) {
            0 => self.pick(&ALL_KEYS).to_string(),
            1 => format!("x{}", self.rng.random_range(0..100u32)),
            2 => self
                .pick(&["\"eta\"", "'J'", "Eta", "eta ", "1", "true", "~"])
                .to_string(),
            _ => self.pick(known).to_string(),
        }
    }

    fn map(&mut self, known: &[&str], value: &mut dyn FnMut(&mut Gen, &str) -> Y) -> Y {
        let n = self.rng.random_range(0..=known.len().min(4));
        let mut entries = Vec::new();
        for _ in 0..n {
            let k = self.key(known);
            let v = if self.chance(0.05) {
                self.junk(2)
            } else {
                value(self, &k)
            };
            entries.push((k, v));
        }
        // Known keys are usually distinct: keep the first of each (duplicates now and then).
        if self.chance(0.95) {
            let mut seen = Vec::new();
            entries.retain(|(k, _)| {
                let fresh = !seen.contains(k);
                seen.push(k.clone());
                fresh
            });
        }
        Y::Map(entries)
    }

    fn input_form(&mut self) -> Y {
        let (form, keys): (&str, &[&str]) = *self.pick(&[
            ("step", &["at_ms", "before", "after"][..]),
            ("pulse", &["start_ms", "stop_ms", "amplitude"][..]),
            ("sine", &["amplitude", "freq_hz", "phase", "offset"][..]),
        ]);
        let mut entries = Vec::new();
        for k in keys {
            if self.chance(0.85) {
                entries.push((k.to_string(), self.param()));
            }
        }
        if self.chance(0.05) {
            entries.push((self.key(&ALL_KEYS), self.param()));
        }
        Y::Map(vec![(form.to_string(), Y::Map(entries))])
    }

    fn spec(&mut self) -> Y {
        self.anchors.clear();
        self.map(&TOP_KEYS, &mut |g, key| match key {
            "name" => Y::Scalar(g.pick(&["test", "\"a b\"", "x: y", "42", "''"]).to_string()),
            "model" => g.map(&["tau_ms", "eta", "J", "delta"], &mut |g, _| g.param()),
            "init" => g.map(
                &["r_hz", "v"],
                &mut |g, _| match g.rng.random_range(0..4u32) {
                    0 => Y::Map(vec![(
                        "uniform".into(),
                        Y::Seq(vec![Y::Scalar(g.number()), Y::Scalar(g.number())]),
                    )]),
                    1 => Y::Map(vec![(
                        "normal".into(),
                        Y::Seq(vec![Y::Scalar(g.number()), Y::Scalar(g.number())]),
                    )]),
                    _ => g.param(),
                },
            ),
            "input" => g.map(&["r_hz", "v"], &mut |g, _| {
                if g.chance(0.5) {
                    g.input_form()
                } else {
                    g.param()
                }
            }),
            "noise" => g.map(&["r_hz", "v"], &mut |g, _| {
                let mut args = vec![("sigma".to_string(), g.param())];
                let kind = if g.chance(0.5) {
                    "white"
                } else {
                    if g.chance(0.9) {
                        args.push(("tau_ms".into(), g.param()));
                    }
                    "ou"
                };
                Y::Map(vec![(kind.into(), Y::Map(args))])
            }),
            "simulation" => g.map(
                &["dt_ms", "duration_ms", "transient_ms", "method"],
                &mut |g, k| match k {
                    "dt_ms" => {
                        if g.chance(0.5) {
                            Y::Scalar(g.pick(&["0.01", "0.005", "0.1", "0.02"]).to_string())
                        } else {
                            g.param()
                        }
                    }
                    "duration_ms" | "transient_ms" => {
                        if g.chance(0.6) {
                            Y::Scalar(format!("{}", g.rng.random_range(0..50u32)))
                        } else {
                            Y::Scalar(g.number())
                        }
                    }
                    _ => Y::Scalar(
                        g.pick(&["exp_euler", "euler", "heun", "rk4", "rk5", "1"])
                            .to_string(),
                    ),
                },
            ),
            "sweep" => g.map(&["seed", "replicates", "zip"], &mut |g, k| match k {
                "zip" => {
                    let groups = g.rng.random_range(0..3usize);
                    Y::Seq(
                        (0..groups)
                            .map(|_| {
                                let n = g.rng.random_range(0..4usize);
                                Y::Seq(
                                    (0..n)
                                        .map(|_| {
                                            let slot = *g.pick(&Slot::ALL);
                                            Y::Scalar(slot.column().to_string())
                                        })
                                        .collect(),
                                )
                            })
                            .collect(),
                    )
                }
                _ => Y::Scalar(g.small_count()),
            }),
            "output" => g.map(&["traces"], &mut |g, _| {
                g.map(&["every_ms", "runs"], &mut |g, k| match k {
                    "every_ms" => Y::Scalar(g.number()),
                    _ => match g.rng.random_range(0..5u32) {
                        0 => Y::Scalar("all".into()),
                        1 => Y::Scalar("none".into()),
                        2 => Y::Map(vec![("every".into(), Y::Scalar(g.small_count()))]),
                        3 => Y::Map(vec![(
                            "ids".into(),
                            Y::Seq(
                                (0..g.rng.random_range(0..4usize))
                                    .map(|_| Y::Scalar(g.number()))
                                    .collect(),
                            ),
                        )]),
                        _ => g.junk(1),
                    },
                })
            }),
            _ => g.junk(3),
        })
    }
}

// ---------------------------------------------------------------------------------------
// Mutations
// ---------------------------------------------------------------------------------------

const TOKENS: [&str; 30] = [
    ": ",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "&a ",
    "*a",
    "!!str ",
    "\t",
    "\0",
    "#",
    "'",
    "\"",
    "\n",
    "  ",
    "? ",
    "|",
    ">",
    "---\n",
    "...\n",
    "%YAML 1.2\n",
    "\r",
    "\u{feff}",
    "\u{2028}",
    "\\",
    "<<: *a",
    "~",
    "@",
];

fn mutate(input: &[u8], corpus: &[Vec<u8>], rng: &mut Xoshiro256PlusPlus) -> Vec<u8> {
    let mut b = input.to_vec();
    let rounds = 1 + rng.random_range(0..4u32);
    for _ in 0..rounds {
        let len = b.len();
        let at = if len == 0 {
            0
        } else {
            rng.random_range(0..=len)
        };
        match rng.random_range(0..13u32) {
            0 if len > 0 => {
                let i = rng.random_range(0..len);
                b[i] = (rng.next_u64() & 0xff) as u8;
            }
            1 => {
                let t = TOKENS[rng.random_range(0..TOKENS.len())];
                b.splice(at..at, t.bytes());
            }
            2 if len > 0 => {
                let end = (at + rng.random_range(1..32usize)).min(len);
                b.drain(at.min(end)..end);
            }
            3 => b.truncate(at),
            4..=6 => {
                let mut lines: Vec<Vec<u8>> =
                    b.split(|&c| c == b'\n').map(<[u8]>::to_vec).collect();
                let n = lines.len();
                let i = rng.random_range(0..n);
                match rng.random_range(0..4u32) {
                    0 => {
                        let line = lines[i].clone();
                        lines.insert(i, line);
                    }
                    1 => {
                        let j = rng.random_range(0..n);
                        lines.swap(i, j);
                    }
                    2 => {
                        let k = rng.random_range(1..5usize);
                        let mut line = vec![b' '; k];
                        line.extend_from_slice(&lines[i]);
                        lines[i] = line;
                    }
                    _ => {
                        let strip = lines[i].iter().take_while(|&&c| c == b' ').count();
                        let k = rng.random_range(0..=strip);
                        lines[i].drain(..k);
                    }
                }
                b = lines.join(&b'\n');
            }
            7 => {
                // Replace a number with an extreme one.
                let text = String::from_utf8_lossy(&b).into_owned();
                let starts: Vec<usize> = text
                    .char_indices()
                    .filter(|(_, c)| c.is_ascii_digit())
                    .map(|(i, _)| i)
                    .collect();
                if !starts.is_empty() {
                    let s = starts[rng.random_range(0..starts.len())];
                    let e = text[s..]
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'))
                        .map_or(text.len(), |k| s + k);
                    let mut g = Gen {
                        rng: Xoshiro256PlusPlus::seed_from_u64(rng.next_u64()),
                        anchors: Vec::new(),
                    };
                    let n = g.number();
                    b = format!("{}{n}{}", &text[..s], &text[e..]).into_bytes();
                }
            }
            8 if !corpus.is_empty() => {
                let other = &corpus[rng.random_range(0..corpus.len())];
                if !other.is_empty() {
                    let s = rng.random_range(0..other.len());
                    let e = (s + rng.random_range(1..200usize)).min(other.len());
                    b.splice(at..at, other[s..e].iter().copied());
                }
            }
            9 => {
                let n = rng.random_range(1..8usize);
                let bytes: Vec<u8> = (0..n)
                    .map(|_| match rng.random_range(0..4u32) {
                        0 => 0,
                        1 => 0xff,
                        2 => (rng.next_u64() & 0x1f) as u8,
                        _ => (rng.next_u64() & 0xff) as u8,
                    })
                    .collect();
                b.splice(at..at, bytes);
            }
            10 if len > 0 => {
                // Repeat a chunk (bounded, so inputs stay small).
                let s = rng.random_range(0..len);
                let e = (s + rng.random_range(1..64usize)).min(len);
                let chunk = b[s..e].to_vec();
                let times = rng.random_range(2..50usize);
                for _ in 0..times {
                    b.splice(e..e, chunk.iter().copied());
                }
            }
            11 => {
                // Nest: wrap the whole text as the value of a key.
                let mut text = b"model:\n".to_vec();
                for line in b.split(|&c| c == b'\n') {
                    text.extend_from_slice(b"  ");
                    text.extend_from_slice(line);
                    text.push(b'\n');
                }
                b = text;
            }
            _ => {
                let t = TOKENS[rng.random_range(0..TOKENS.len())];
                b.extend_from_slice(t.as_bytes());
            }
        }
        if b.len() > 1 << 16 {
            b.truncate(1 << 16);
        }
    }
    b
}

// ---------------------------------------------------------------------------------------
// The properties
// ---------------------------------------------------------------------------------------

/// What one input did.
enum Verdict {
    SpecError,
    PlanError,
    Planned,
}

fn check_spec_error(text: &str, e: &SpecError) -> Result<(), String> {
    if e.message.trim().is_empty() {
        return Err(format!("empty error message: {e:?}"));
    }
    if e.path.is_empty() && e.mark.is_none() {
        return Err(format!(
            "error names neither a key path nor a position: {e:?}"
        ));
    }
    if let Some(m) = e.mark {
        // Line breaks as YAML counts them (\n, \r\n, lone \r) bound the lines; the parser
        // may report the end of an unterminated last line as the start of the next one.
        let lines = text.matches('\n').count() + text.matches('\r').count() + 2;
        if m.line == 0 || m.col == 0 || m.line > lines {
            return Err(format!(
                "error position {m:?} is outside the text ({lines} lines): {e:?}"
            ));
        }
    }
    let shown = e.to_string();
    if !shown.contains(&e.message) {
        return Err(format!("Display {shown:?} lacks the message"));
    }
    Ok(())
}

fn check(text: &str, salt: u64) -> Result<Verdict, String> {
    let spec = match spec::parse(text) {
        Ok(s) => s,
        Err(e) => return check_spec_error(text, &e).map(|()| Verdict::SpecError),
    };
    if spec.text != text {
        return Err("Spec::text is not the text given".into());
    }
    let plan = match Plan::new(&spec) {
        Ok(p) => p,
        Err(e) => {
            let m = e.to_string();
            return if m.trim().is_empty() {
                Err("empty plan error".into())
            } else {
                Ok(Verdict::PlanError)
            };
        }
    };
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(salt);
    let r = u64::from(spec.replicates);
    if plan.points == 0 || plan.runs != plan.points * r {
        return Err(format!(
            "counts: {} points x {r} replicates != {} runs",
            plan.points, plan.runs
        ));
    }
    let mut points = vec![0, plan.points - 1, rng.random_range(0..plan.points)];
    points.push(plan.points / 2);
    for p in points {
        let v = plan.values(p);
        for param in &spec.params {
            let x = v.get(param.slot);
            if !x.is_finite() {
                return Err(format!(
                    "point {p}: {} = {x} (axis {:?})",
                    param.slot.column(),
                    param.axis
                ));
            }
        }
    }
    for run in [0, plan.runs - 1, rng.random_range(0..plan.runs)] {
        let a = plan.address(run);
        if a.run_id != run
            || a.point_id >= plan.points
            || u64::from(a.replicate) >= r
            || a.point_id * r + u64::from(a.replicate) != run
        {
            return Err(format!("address({run}) = {a:?}"));
        }
    }
    let counts = [
        1,
        2,
        3,
        7,
        plan.runs,
        plan.runs.saturating_add(1),
        u64::MAX,
        1 + rng.next_u64() % 1000,
    ];
    for count in counts {
        let first = plan.shard_range(Shard { index: 0, count });
        let last = plan.shard_range(Shard {
            index: count - 1,
            count,
        });
        if first.start != 0 || last.end != plan.runs {
            return Err(format!("shards of {count}: {first:?} .. {last:?}"));
        }
        let i = rng.random_range(0..count);
        let a = plan.shard_range(Shard { index: i, count });
        if a.start > a.end || a.end > plan.runs {
            return Err(format!("shard {i}/{count}: {a:?}"));
        }
        if i + 1 < count {
            let b = plan.shard_range(Shard {
                index: i + 1,
                count,
            });
            if a.end != b.start {
                return Err(format!("shards {i} and {} of {count}: {a:?} {b:?}", i + 1));
            }
        }
    }
    for dt in spec.dt_values() {
        let t = spec.timing(dt);
        if spec.traces.is_some() && t.trace_stride == 0 {
            return Err(format!("dt {dt}: trace stride 0"));
        }
    }
    let _ = spec.max_steps();
    Ok(Verdict::Planned)
}

/// `--shard` strings: no panic, and Ok only for `I/N` with `I < N`.
fn check_shard_string(s: &str) -> Result<(), String> {
    match s.parse::<Shard>() {
        Ok(sh) if sh.count == 0 || sh.index >= sh.count => Err(format!("{s:?} -> {sh:?}")),
        Ok(_) => Ok(()),
        Err(e) if e.to_string().is_empty() => Err(format!("{s:?}: empty error")),
        Err(_) => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------
// The driver
// ---------------------------------------------------------------------------------------

static PANIC_MESSAGE: Mutex<Option<String>> = Mutex::new(None);

/// The panic hook is process-wide: fuzz runs take turns.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn read_corpus() -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in ["sweeps", "tests/bad", "benches"] {
        if let Ok(entries) = std::fs::read_dir(root.join(dir)) {
            files.extend(
                entries
                    .map(|e| e.unwrap().path())
                    .filter(|p| p.extension().is_some_and(|e| e == "yaml")),
            );
        }
    }
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

struct Failure {
    case: u64,
    input: Vec<u8>,
    what: String,
}

#[test]
fn spec_parser_and_plan_survive_random_inputs() {
    fuzz("parse + plan", check);
}

/// A metamorphic property: text after a valid spec is never silently ignored. Appending a
/// line with an unknown top-level key to any accepted spec must make it an error (an
/// unknown key, invalid YAML or a second document, depending on how the text ends).
fn check_appended_key(text: &str, _salt: u64) -> Result<Verdict, String> {
    if spec::parse(text).is_err() {
        return Ok(Verdict::SpecError);
    }
    match spec::parse(&format!("{text}\nzz_fuzz_unknown_key: 1\n")) {
        Err(_) => Ok(Verdict::Planned),
        Ok(_) => Err("a key appended to a valid spec was silently ignored".into()),
    }
}

#[test]
fn text_after_a_valid_spec_is_never_ignored() {
    fuzz("appended key", check_appended_key);
}

fn fuzz(name: &str, check: fn(&str, u64) -> Result<Verdict, String>) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let seconds = env_u64("MPR_SWEEP_FUZZ_SECONDS").unwrap_or(3);
    let seed = seed_from_env("MPR_SWEEP_FUZZ_SEED");
    println!(
        "fuzz ({name}): seed {seed}, {seconds} s (reproduce with MPR_SWEEP_FUZZ_SEED={seed} MPR_SWEEP_FUZZ_SECONDS={seconds})"
    );
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut corpus = read_corpus();
    let examples = corpus.len();
    assert!(examples > 0, "no example specs found");
    let mut gen_ = Gen {
        rng: Xoshiro256PlusPlus::seed_from_u64(rng.next_u64()),
        anchors: Vec::new(),
    };

    let previous_hook = panic::take_hook();
    panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        *PANIC_MESSAGE.lock().unwrap() = Some(format!("{message} at {location}"));
    }));

    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut failures: Vec<Failure> = Vec::new();
    let (mut cases, mut spec_errors, mut plan_errors, mut planned) = (0u64, 0u64, 0u64, 0u64);
    let (mut generated, mut mutated, mut shard_strings) = (0u64, 0u64, 0u64);
    while Instant::now() < deadline && failures.len() < 20 {
        for _ in 0..64 {
            cases += 1;
            let input: Vec<u8> = match rng.random_range(0..10u32) {
                0..=2 => {
                    generated += 1;
                    let y = gen_.spec();
                    render(&y, &mut gen_.rng).into_bytes()
                }
                3 => {
                    shard_strings += 1;
                    let n = rng.random_range(0..12usize);
                    let s: String = (0..n)
                        .map(|_| {
                            *gen_.pick(&['0', '1', '7', '9', '/', '-', ' ', '+', 'x', '\u{0}', 'é'])
                        })
                        .collect();
                    let s = match rng.random_range(0..4u32) {
                        0 => format!("{}/{}", rng.next_u64(), rng.next_u64()),
                        1 => format!("{}/{}", rng.next_u64() % 5, rng.next_u64() % 5),
                        _ => s,
                    };
                    let result = panic::catch_unwind(AssertUnwindSafe(|| check_shard_string(&s)));
                    let what = match result {
                        Ok(Ok(())) => None,
                        Ok(Err(e)) => Some(format!("--shard property: {e}")),
                        Err(_) => Some(format!(
                            "--shard {s:?} PANICKED: {}",
                            PANIC_MESSAGE.lock().unwrap().take().unwrap_or_default()
                        )),
                    };
                    if let Some(what) = what {
                        failures.push(Failure {
                            case: cases,
                            input: s.into_bytes(),
                            what,
                        });
                    }
                    continue;
                }
                _ => {
                    mutated += 1;
                    let base = if rng.random_bool(0.7) {
                        corpus[rng.random_range(0..corpus.len())].clone()
                    } else {
                        let y = gen_.spec();
                        render(&y, &mut gen_.rng).into_bytes()
                    };
                    mutate(&base, &corpus, &mut rng)
                }
            };
            let text = String::from_utf8_lossy(&input).into_owned();
            let salt = rng.next_u64();
            let result = panic::catch_unwind(AssertUnwindSafe(|| check(&text, salt)));
            match result {
                Ok(Ok(Verdict::SpecError)) => spec_errors += 1,
                Ok(Ok(Verdict::PlanError)) => plan_errors += 1,
                Ok(Ok(Verdict::Planned)) => {
                    planned += 1;
                    // Valid specs are good seeds for further mutation.
                    if corpus.len() < examples + 2000 && rng.random_bool(0.05) {
                        corpus.push(input.clone());
                    }
                }
                Ok(Err(what)) => failures.push(Failure {
                    case: cases,
                    input: text.into_bytes(),
                    what: format!("property: {what}"),
                }),
                Err(_) => failures.push(Failure {
                    case: cases,
                    input: text.into_bytes(),
                    what: format!(
                        "PANICKED: {}",
                        PANIC_MESSAGE.lock().unwrap().take().unwrap_or_default()
                    ),
                }),
            }
        }
    }
    panic::set_hook(previous_hook);

    println!(
        "fuzz ({name}): {cases} cases tried ({generated} generated, {mutated} mutated from {examples} example and corpus specs, {shard_strings} --shard strings): {spec_errors} spec errors, {plan_errors} plan errors, {planned} planned; {} failures",
        failures.len()
    );
    if failures.is_empty() {
        return;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-failures");
    std::fs::create_dir_all(&dir).unwrap();
    let mut report = String::new();
    for f in &failures {
        let path = dir.join(format!("seed-{seed}-case-{}.yaml", f.case));
        std::fs::write(&path, &f.input).unwrap();
        let _ = writeln!(
            report,
            "case {}: {}\n  input (also in {}):\n  {:?}\n",
            f.case,
            f.what,
            path.display(),
            String::from_utf8_lossy(&f.input)
        );
    }
    panic!(
        "{} fuzz failures (seed {seed}):\n\n{report}",
        failures.len()
    );
}
