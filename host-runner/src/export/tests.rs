//! Each exporter's output against its format's documented shape, and the
//! rules for censored and failed cells.

use std::path::PathBuf;

use serde_json::Value;

use super::*;
use crate::results::{CellKey, CellResult, FailureKind, LockMode, Overcommit, RunManifest, Workload};
use crate::test_support::provenance;

fn key(workload: Workload, overcommit: Overcommit, lock: LockMode, rep: u32) -> CellKey {
    CellKey {
        workload,
        overcommit,
        clients: (workload == Workload::Pgbench).then_some(4),
        migrated: false,
        lock,
        rep,
    }
}

/// kernbench 1x: base 2, 4 s; pv 3, 5 s. kernbench 3x: base one censored at
/// 60 s and one at 20 s, pv one failed and one at 10 s. pgbench 1x c4: base
/// 100, 200 tps; pv 300 tps and one censored at <= 50 tps.
fn results() -> Results {
    use LockMode::{Base, Pv};
    use Overcommit::{X1, X3};
    use Workload::{Kernbench, Pgbench};
    let done = |k: CellKey, v: f64| {
        let mut c = CellResult::new(k, CellStatus::Completed);
        c.elapsed_s = v;
        if k.workload == Pgbench {
            c.elapsed_s = 10.0;
            c.tps = Some(v);
        }
        c
    };
    let censored = |k: CellKey, v: f64| {
        let mut c = done(k, v);
        c.status = CellStatus::Censored;
        c
    };
    let cells = vec![
        done(key(Kernbench, X1, Base, 1), 2.0),
        done(key(Kernbench, X1, Pv, 1), 3.0),
        done(key(Kernbench, X1, Base, 2), 4.0),
        done(key(Kernbench, X1, Pv, 2), 5.0),
        censored(key(Kernbench, X3, Base, 1), 60.0),
        done(key(Kernbench, X3, Base, 2), 20.0),
        CellResult::new(
            key(Kernbench, X3, Pv, 1),
            CellStatus::failed(FailureKind::Stall, "guest stalled"),
        ),
        done(key(Kernbench, X3, Pv, 2), 10.0),
        done(key(Pgbench, X1, Base, 1), 100.0),
        done(key(Pgbench, X1, Base, 2), 200.0),
        done(key(Pgbench, X1, Pv, 1), 300.0),
        censored(key(Pgbench, X1, Pv, 2), 50.0),
    ];
    // One planned cell without a result: an arm of nothing has no entry.
    let mut planned: Vec<CellKey> = cells.iter().map(|c| c.key).collect();
    planned.push(key(Kernbench, Overcommit::X2, Base, 1));
    Results {
        dir: PathBuf::from("r"),
        manifest: RunManifest {
            provenance: provenance(),
            matrix: Value::Null,
            cells: planned,
            target_mde_pct: None,
            sharding: None,
        },
        cells,
    }
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// github-action-benchmark's custom tools: an array of objects with `name`
/// (string), `unit` (string) and `value` (number), and optionally `range`
/// and `extra` (strings); nothing else.
fn check_github_shape(doc: &Value) -> &Vec<Value> {
    let entries = doc.as_array().expect("a JSON array");
    for e in entries {
        let o = e.as_object().expect("each entry an object");
        assert!(o["name"].is_string() && o["unit"].is_string(), "{e}");
        assert!(o["value"].is_number(), "{e}");
        for (k, v) in o {
            match k.as_str() {
                "name" | "unit" | "value" => {}
                "range" | "extra" => assert!(v.is_string(), "{k}: {v}"),
                other => panic!("{other} is not a field of the format: {e}"),
            }
        }
    }
    entries
}

/// The BMF JSON schema as Bencher documents it: an object of benchmarks
/// (non-empty names), each an object of measures (non-empty names), each an
/// object with a number `value` and optionally `lower_value` and
/// `upper_value` numbers.
fn check_bmf_shape(doc: &Value) {
    let benchmarks = doc.as_object().expect("an object of benchmarks");
    assert!(!benchmarks.is_empty());
    for (name, measures) in benchmarks {
        assert!(!name.is_empty());
        let measures = measures.as_object().expect("an object of measures");
        for (measure, metric) in measures {
            assert!(!measure.is_empty() && measure.len() <= 64, "{measure}");
            let m = metric.as_object().expect("a metric object");
            assert!(m["value"].is_number(), "{metric}");
            for (k, v) in m {
                assert!(
                    ["value", "lower_value", "upper_value"].contains(&k.as_str()),
                    "{k} is not a field of a BMF metric"
                );
                assert!(v.is_number(), "{k}: {v}");
            }
        }
    }
}

fn entry<'a>(entries: &'a [Value], name: &str) -> &'a Value {
    entries
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {entries:?}"))
}

#[test]
fn smaller_is_better_holds_the_seconds_of_every_arm_with_runs() {
    let arms = summarize(&results());
    let doc = parse(&Format::SmallerIsBetter.render(&arms));
    let entries = check_github_shape(&doc);
    let names: Vec<&str> = entries.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "kernbench 1x base",
            "kernbench 1x pv",
            "kernbench 3x base",
            "kernbench 3x pv"
        ]
    );
    let base = entry(entries, "kernbench 1x base");
    assert_eq!(base["unit"], "s");
    assert_eq!(base["value"], 3.0);
    // sd of 2 and 4.
    assert_eq!(base["range"], format!("± {:.4}", 2f64.sqrt()));
    assert_eq!(base["extra"], "2 runs");
    // A censored run counts at its cap: the mean is a lower bound, no range.
    let capped = entry(entries, "kernbench 3x base");
    assert_eq!(capped["value"], 40.0);
    assert!(capped.get("range").is_none(), "{capped}");
    assert!(
        capped["extra"].as_str().unwrap().contains("1 censored")
            && capped["extra"].as_str().unwrap().contains("lower bound"),
        "{capped}"
    );
    // A failed run is left out and said so.
    let pv = entry(entries, "kernbench 3x pv");
    assert_eq!(pv["value"], 10.0);
    assert_eq!(pv["extra"], "1 runs, 1 failed (left out)");
}

#[test]
fn bigger_is_better_holds_the_throughput() {
    let doc = parse(&Format::BiggerIsBetter.render(&summarize(&results())));
    let entries = check_github_shape(&doc);
    assert_eq!(entries.len(), 2);
    let base = entry(entries, "pgbench 1x clients=4 base");
    assert_eq!(
        (base["unit"].as_str(), base["value"].as_f64()),
        (Some("tps"), Some(150.0))
    );
    let pv = entry(entries, "pgbench 1x clients=4 pv");
    assert_eq!(pv["value"], 175.0);
    assert!(pv["extra"].as_str().unwrap().contains("upper bound"), "{pv}");
}

#[test]
fn bmf_holds_every_arm_under_its_measure() {
    let doc = parse(&Format::Bmf.render(&summarize(&results())));
    check_bmf_shape(&doc);
    assert_eq!(doc.as_object().unwrap().len(), 6);
    let m = &doc["kernbench 1x pv"][bmf::ELAPSED_MEASURE];
    assert_eq!(
        (
            m["value"].as_f64(),
            m["lower_value"].as_f64(),
            m["upper_value"].as_f64()
        ),
        (Some(4.0), Some(3.0), Some(5.0))
    );
    // Censored: no upper time, no lower throughput.
    let m = &doc["kernbench 3x base"][bmf::ELAPSED_MEASURE];
    assert_eq!(
        (m["lower_value"].as_f64(), m.get("upper_value")),
        (Some(20.0), None)
    );
    let m = &doc["pgbench 1x clients=4 pv"][bmf::THROUGHPUT_MEASURE];
    assert_eq!(
        (m.get("lower_value"), m["upper_value"].as_f64()),
        (None, Some(300.0))
    );
}

#[test]
fn an_empty_direction_is_an_empty_array() {
    let mut r = results();
    r.cells.retain(|c| c.key.workload == Workload::Kernbench);
    r.manifest.cells.retain(|k| k.workload == Workload::Kernbench);
    let doc = parse(&Format::BiggerIsBetter.render(&summarize(&r)));
    assert_eq!(check_github_shape(&doc).len(), 0);
}
