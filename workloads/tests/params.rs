//! Argument parsing: errors name the key and what it accepts; nothing panics.

use pvbench_workloads::params::keys;
use pvbench_workloads::{
    parse_args, run, ConfigError, CpuhogConfig, KernbenchConfig, NullObserver, PgbenchConfig, Profile,
    RunLimit, WorkloadConfig, WorkloadError, KEYS,
};
use std::time::Duration;

fn err(words: &[&str]) -> String {
    parse_args(words).unwrap_err().to_string()
}

#[test]
fn parses_a_guest_command_line() {
    let c = parse_args(["workload=kernbench", "scale=2", "jobs=8", "reps=3"]).unwrap();
    let WorkloadConfig::Kernbench(k) = c else {
        panic!("wrong workload")
    };
    assert_eq!((k.scale, k.jobs, k.reps), (2, 8, 3));

    let c = parse_args(["workload=pgbench", "clients=32", "transactions=10", "vcpus=2"]).unwrap();
    let WorkloadConfig::Pgbench(p) = c else {
        panic!("wrong workload")
    };
    assert_eq!(p.clients, 32);
    assert_eq!(p.limit, RunLimit::Transactions(10));

    let c = parse_args(["workload=cpuhog", "vcpus=4", "duration_s=1.5", "interval_ms=100"]).unwrap();
    let WorkloadConfig::Cpuhog(h) = c else {
        panic!("wrong workload")
    };
    assert_eq!(h.threads, 4);
    assert_eq!(h.duration, Some(Duration::from_millis(1500)));
    assert_eq!(h.interval, Duration::from_millis(100));
    let WorkloadConfig::Cpuhog(h) = parse_args(["workload=cpuhog", "duration_s=forever"]).unwrap() else {
        panic!("wrong workload")
    };
    assert_eq!(h.duration, None);
}

#[test]
fn profiles_pick_defaults() {
    let quick = parse_args(["workload=kernbench", "vcpus=2"]).unwrap();
    let full = parse_args(["workload=kernbench", "vcpus=2", "profile=full"]).unwrap();
    assert_eq!(
        quick,
        WorkloadConfig::Kernbench(KernbenchConfig::for_profile(Profile::Quick, 2))
    );
    assert_eq!(
        full,
        WorkloadConfig::Kernbench(KernbenchConfig::for_profile(Profile::Full, 2))
    );
    let WorkloadConfig::Kernbench(k) = quick else {
        panic!("wrong workload")
    };
    assert_eq!(k.jobs, 8, "kernbench's optimal load: 4 x CPUs");
    // Explicit keys override the profile's defaults.
    let WorkloadConfig::Pgbench(p) =
        parse_args(["workload=pgbench", "profile=full", "scale=3", "vcpus=2"]).unwrap()
    else {
        panic!("wrong workload")
    };
    assert_eq!(p.scale, 3);
    assert_eq!(
        p,
        PgbenchConfig {
            scale: 3,
            ..PgbenchConfig::for_profile(Profile::Full, 2)
        }
    );
}

#[test]
fn unknown_key_lists_accepted_keys() {
    let e = err(&["workload=kernbench", "jbos=8"]);
    assert!(e.starts_with("unknown key `jbos`"), "{e}");
    for spec in KEYS {
        assert!(e.contains(spec.key), "{e} lacks {}", spec.key);
    }
}

#[test]
fn bad_values_name_key_and_accepted_values() {
    let e = err(&["workload=kernbench", "jobs=many"]);
    assert_eq!(
        e,
        "bad value `many` for key `jobs`: expected an integer in 1..=1024"
    );
    let e = err(&["workload=kernbench", "profile=fast"]);
    assert_eq!(e, "bad value `fast` for key `profile`: expected quick, full");
    let e = err(&["workload=kernbench", "spawn=fork"]);
    assert!(e.contains("`spawn`") && e.contains("job, pool"), "{e}");
    let e = err(&["workload=make"]);
    assert!(
        e.contains("`workload`") && e.contains("kernbench, pgbench, cpuhog"),
        "{e}"
    );
    let e = err(&["workload=pgbench", "duration_s=-1"]);
    assert!(e.contains("`duration_s`") && e.contains("seconds > 0"), "{e}");
    let e = err(&["workload=pgbench", "duration_s=forever"]);
    assert!(e.contains("`duration_s`"), "{e}");
    let e = err(&["workload=pgbench", "duration_s=NaN"]);
    assert!(e.contains("`duration_s`"), "{e}");
    let e = err(&["workload=cpuhog", "interval_ms=1"]);
    assert!(e.contains("`interval_ms`") && e.contains("10..=60000"), "{e}");
    let e = err(&["workload=kernbench", "scale="]);
    assert!(e.contains("bad value `` for key `scale`"), "{e}");
    let e = err(&["workload=kernbench", "root="]);
    assert!(e.contains("`root`"), "{e}");
}

#[test]
fn zero_threads_are_rejected() {
    for (workload, key) in [
        ("kernbench", keys::JOBS),
        ("pgbench", keys::CLIENTS),
        ("cpuhog", keys::THREADS),
        ("cpuhog", keys::VCPUS),
    ] {
        let e = err(&[&format!("workload={workload}"), &format!("{key}=0")]);
        assert_eq!(
            e,
            format!("bad value `0` for key `{key}`: expected an integer in 1..=1024")
        );
    }
    let e = err(&["workload=kernbench", "reps=0"]);
    assert!(e.contains("`reps`") && e.contains("1..=1000"), "{e}");
    let e = err(&["workload=pgbench", "transactions=0"]);
    assert!(e.contains("`transactions`") && e.contains(">= 1"), "{e}");
}

#[test]
fn zero_threads_in_a_built_config_fail_the_run_not_the_process() {
    let mut k = KernbenchConfig::for_profile(Profile::Quick, 1);
    k.jobs = 0;
    let e = run(&WorkloadConfig::Kernbench(k), &mut NullObserver).unwrap_err();
    assert!(
        matches!(
            e,
            WorkloadError::Config(ConfigError::BadValue { key: "jobs", .. })
        ),
        "{e}"
    );
    let mut p = PgbenchConfig::for_profile(Profile::Quick, 1);
    p.clients = 0;
    assert!(run(&WorkloadConfig::Pgbench(p), &mut NullObserver).is_err());
    let mut h = CpuhogConfig::for_profile(Profile::Quick, 1);
    h.threads = 0;
    let e = run(&WorkloadConfig::Cpuhog(h), &mut NullObserver).unwrap_err();
    assert!(e.to_string().contains("`threads`"), "{e}");
}

#[test]
fn structural_errors() {
    assert_eq!(
        err(&["scale=2"]),
        "missing key `workload` (accepted values: kernbench, pgbench, cpuhog)"
    );
    let e = err(&["workload=kernbench", "jobs"]);
    assert!(e.starts_with("`jobs` is not a key=value word"), "{e}");
    let e = err(&["workload=kernbench", "jobs=2", "jobs=3"]);
    assert_eq!(e, "key `jobs` is given more than once");
    let e = err(&["workload=kernbench", "clients=4"]);
    assert!(
        e.starts_with("key `clients` does not apply to workload kernbench"),
        "{e}"
    );
    assert!(e.contains("jobs") && !e.contains("threads"), "{e}");
    let e = err(&["workload=pgbench", "duration_s=1", "transactions=5"]);
    assert_eq!(e, "keys `duration_s` and `transactions` cannot be used together");
    // Empty words (doubled spaces on a command line) are ignored.
    assert!(parse_args(["", "workload=cpuhog", " "]).is_ok());
}
