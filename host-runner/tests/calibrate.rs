//! `pvbench calibrate` with real guests under TCG: a tiny A/A matrix, its
//! comparisons, the native reference and the same work run natively, written
//! where a user finds them.

mod common;

use common::{image, pvbench, text};

#[test]
fn a_tiny_calibration_judges_its_aa_comparisons() {
    let dir = std::env::temp_dir().join(format!("pvbench-test-calibrate-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let matrix = dir.join("aa.toml");
    // Two lock modes given: calibration keeps the first in every cell.
    std::fs::write(
        &matrix,
        r#"locks = ["pv", "base"]
overcommit = ["1x"]
reps = 4
vcpus = 2
memory_mib = 512
spin_tcg = 256
# Function, not figures: no waiting out the host's CPUs apart (up to 90 s a cell).
apart_reruns = 0
[kernbench]
scale = 1
cap_s = 30
"#,
    )
    .unwrap();
    image();
    let out = dir.join("out");
    let run = pvbench()
        .args([
            "calibrate",
            "--accel",
            "tcg",
            "--quiet",
            "--aa-runs",
            "2",
            "--matrix",
        ])
        .arg(&matrix)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert!(
        text(&run.stdout).contains("comparisons of 2 vs 2 runs"),
        "{}",
        text(&run.stdout)
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("calibration.json")).unwrap()).unwrap();
    assert_eq!(json["comparisons"], 1);
    assert_eq!(json["groups"][0]["runs"], 4);
    assert_eq!(json["reference_before"]["runs_ms"].as_array().unwrap().len(), 30);
    // The group's own work ran natively, 6 times before and 6 after the matrix.
    let native = &json["native"][0];
    assert_eq!(native["words"][0], "workload=kernbench", "{native}");
    for side in ["before", "after"] {
        let runs = native[side].as_array().unwrap();
        assert_eq!(runs.len(), 6, "{native}");
        assert!(runs.iter().all(|v| v.as_f64().unwrap() > 0.0), "{native}");
    }
    assert!(json["groups"][0]["native_cv_percent"].is_number(), "{json}");
    assert!(
        text(&run.stdout).contains("## The same work natively"),
        "{}",
        text(&run.stdout)
    );
    let cells: Vec<_> = std::fs::read_dir(out.join("aa/cells"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".json"))
        .collect();
    assert_eq!(cells.len(), 4, "{cells:?}");
    assert!(
        cells.iter().all(|n| n.contains("-pv-")),
        "one lock mode: {cells:?}"
    );
    // Too few repetitions for one comparison: refused before any guest starts.
    let refused = pvbench()
        .args(["calibrate", "--accel", "tcg", "--aa-runs", "5", "--matrix"])
        .arg(&matrix)
        .arg("--out")
        .arg(dir.join("refused"))
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        text(&refused.stderr).contains("raise reps"),
        "{}",
        text(&refused.stderr)
    );
    let _ = std::fs::remove_dir_all(dir);
}
