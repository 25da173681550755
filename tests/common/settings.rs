//! Test settings from the environment: whole numbers such as a fuzzing budget, and seeds
//! that default to the clock (printed by the tests, so a failure can be reproduced).

use std::time::{SystemTime, UNIX_EPOCH};

/// The whole number in the variable `name`, if set; a panic naming it if it is not one.
pub fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number")),
    )
}

/// The seed in the variable `name`, or else one from the clock.
pub fn seed_from_env(name: &str) -> u64 {
    env_u64(name).unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    })
}
