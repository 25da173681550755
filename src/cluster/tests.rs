//! Unit tests of the Slurm environment, script helpers and part names.

use super::env::*;
use super::sbatch::*;
use super::status::*;
use crate::plan::Shard;
use std::collections::HashMap;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k: &str| map.get(k).cloned()
}

fn array(id: u64) -> Vec<(&'static str, String)> {
    vec![
        (TASK_ID, id.to_string()),
        (TASK_MIN, "10".into()),
        (TASK_MAX, "22".into()),
        (TASK_STEP, "2".into()),
        (TASK_COUNT, "7".into()),
        (ARRAY_JOB_ID, "4242".into()),
        (JOB_ID, (5000 + id).to_string()),
    ]
}

#[test]
fn array_10_22_step_2_gives_shards_0_to_6_of_7() {
    for (k, id) in (10..=22).step_by(2).enumerate() {
        let vars = array(id);
        let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let env = env_of(&pairs);
        assert_eq!(
            array_shard(&env).unwrap(),
            Some(Shard {
                index: k as u64,
                count: 7
            })
        );
        assert_eq!(job_label(&env).unwrap(), Some(format!("4242_{id}")));
    }
}

#[test]
fn outside_slurm_nothing_is_derived() {
    let env = env_of(&[]);
    assert_eq!(array_shard(&env).unwrap(), None);
    assert_eq!(slurm_cpus(&env).unwrap(), None);
    assert_eq!(job_label(&env).unwrap(), None);
    let env = env_of(&[(JOB_ID, "77"), (CPUS_ON_NODE, "8")]);
    assert_eq!(array_shard(&env).unwrap(), None);
    assert_eq!(job_label(&env).unwrap(), Some("77".into()));
    assert_eq!(slurm_cpus(&env).unwrap(), Some(8));
    let env = env_of(&[(CPUS_PER_TASK, "3"), (CPUS_ON_NODE, "8")]);
    assert_eq!(slurm_cpus(&env).unwrap(), Some(3));
}

#[test]
fn garbled_or_inconsistent_variables_name_the_variable() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[(TASK_ID, "x1")], TASK_ID),
        (&[(TASK_ID, "3")], TASK_MIN),
        (
            &[(TASK_ID, "3"), (TASK_MIN, "0"), (TASK_STEP, "1")],
            TASK_COUNT,
        ),
        (
            &[
                (TASK_ID, "3"),
                (TASK_MIN, "0"),
                (TASK_STEP, "0"),
                (TASK_COUNT, "4"),
            ],
            TASK_STEP,
        ),
        (
            &[
                (TASK_ID, "4"),
                (TASK_MIN, "0"),
                (TASK_STEP, "1"),
                (TASK_COUNT, "4"),
            ],
            TASK_ID,
        ),
        (
            &[
                (TASK_ID, "3"),
                (TASK_MIN, "0"),
                (TASK_STEP, "2"),
                (TASK_COUNT, "4"),
            ],
            TASK_ID,
        ),
        (
            &[
                (TASK_ID, "1"),
                (TASK_MIN, "2"),
                (TASK_STEP, "1"),
                (TASK_COUNT, "4"),
            ],
            TASK_ID,
        ),
        // --array=1,3,4: MIN=1 MAX=4 STEP=1 COUNT=3.
        (
            &[
                (TASK_ID, "3"),
                (TASK_MIN, "1"),
                (TASK_MAX, "4"),
                (TASK_STEP, "1"),
                (TASK_COUNT, "3"),
            ],
            TASK_COUNT,
        ),
        (&[(TASK_ID, "-1")], TASK_ID),
        (&[(TASK_ID, "")], TASK_ID),
    ];
    for (vars, named) in cases {
        let env = env_of(vars);
        let err = array_shard(&env).unwrap_err();
        assert_eq!(err.var, *named, "{vars:?}: {err}");
        assert!(err.to_string().contains(named), "{err}");
    }
    for (var, value) in [
        (CPUS_PER_TASK, "two"),
        (CPUS_PER_TASK, "0"),
        (CPUS_ON_NODE, "4x"),
    ] {
        let env = env_of(&[(var, value)]);
        let err = slurm_cpus(&env).unwrap_err();
        assert_eq!(err.var, var);
    }
    let env = env_of(&[(JOB_ID, "12a")]);
    assert_eq!(job_label(&env).unwrap_err().var, JOB_ID);
    let env = env_of(&[(TASK_ID, "1")]);
    assert_eq!(job_label(&env).unwrap_err().var, ARRAY_JOB_ID);
}

#[test]
fn regular_arrays_of_any_origin_and_single_tasks() {
    let env = env_of(&[
        (TASK_ID, "5"),
        (TASK_MIN, "5"),
        (TASK_MAX, "5"),
        (TASK_STEP, "1"),
        (TASK_COUNT, "1"),
    ]);
    assert_eq!(array_shard(&env).unwrap(), Some(Shard::WHOLE));
    // Without SLURM_ARRAY_TASK_MAX (older Slurm) the rule still applies.
    let env = env_of(&[
        (TASK_ID, "9"),
        (TASK_MIN, "3"),
        (TASK_STEP, "3"),
        (TASK_COUNT, "3"),
    ]);
    assert_eq!(
        array_shard(&env).unwrap(),
        Some(Shard { index: 2, count: 3 })
    );
}

#[test]
fn array_lists_compress_to_ranges() {
    assert_eq!(array_list(&[]), "");
    assert_eq!(array_list(&[3]), "3");
    assert_eq!(array_list(&[3, 7, 8, 9]), "3,7-9");
    assert_eq!(array_list(&[9, 8, 7, 3, 3]), "3,7-9");
    assert_eq!(array_list(&[0, 1, 2, 3]), "0-3");
    assert_eq!(array_list(&[0, 2, 4]), "0,2,4");
    assert_eq!(array_list(&[1, 2, 4, 5, 1000]), "1-2,4-5,1000");
}

#[test]
fn time_limits_in_slurm_forms() {
    let ok = |t: &str| parse_time_limit(t).unwrap();
    assert_eq!(ok("01:30:00"), Some(5400));
    assert_eq!(ok("1:30:00"), Some(5400));
    assert_eq!(ok("100:00:00"), Some(360000));
    assert_eq!(ok("2-00:00:00"), Some(172800));
    assert_eq!(ok("2-3"), Some(2 * 86400 + 3 * 3600));
    assert_eq!(ok("2-3:30"), Some(2 * 86400 + 3 * 3600 + 1800));
    assert_eq!(ok("90"), Some(5400));
    assert_eq!(ok("90:30"), Some(5430));
    assert_eq!(ok("UNLIMITED"), None);
    for bad in [
        "", "1:60:00", "1:00:60", "a", "1:2:3:4", "1-24", "-1", "1h", "0", "00:00:00", "1--2",
    ] {
        assert!(parse_time_limit(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn part_and_temporary_names() {
    assert_eq!(
        parse_part_name("part-00003-of-00016.parquet"),
        Some(Shard {
            index: 3,
            count: 16
        })
    );
    assert_eq!(
        parse_part_name("part-123456-of-200000.parquet"),
        Some(Shard {
            index: 123456,
            count: 200000
        })
    );
    assert_eq!(parse_part_name("part-1-of-.parquet"), None);
    assert_eq!(parse_part_name("x.parquet"), None);
    assert_eq!(
        parse_temp_name(".part-00001-of-00004.parquet.tmp-4242"),
        Some((Some(Shard { index: 1, count: 4 }), Some(4242)))
    );
    assert_eq!(parse_temp_name("part-00001-of-00004.parquet"), None);
}

#[test]
fn shell_quoting() {
    assert_eq!(shell_quote("/a/b-c.yaml"), "/a/b-c.yaml");
    assert_eq!(shell_quote("/a b/c"), "'/a b/c'");
    assert_eq!(shell_quote("it's"), r"'it'\''s'");
}
