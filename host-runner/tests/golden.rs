//! `pvbench report` on every committed results directory prints exactly what
//! it printed when the directory was published (text, Markdown, JSON): a
//! refactoring or a new feature must not change a published report by
//! accident. An intended change is blessed with
//! `PVBENCH_BLESS=1 cargo test -p pvbench --test golden`, and its diff reviewed.

mod common;

use std::path::{Path, PathBuf};

use common::{pvbench, text};

/// The committed results directories, relative to the project root.
const DIRS: [&str; 3] = ["quick-tcg-2vcpu", "full-tcg-2vcpu", "full-tcg-4vcpu"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/golden")
        .join(name)
}

/// Compares `got` with the golden file, or rewrites it when blessing.
fn check(name: &str, got: &str) {
    let path = golden(name);
    if std::env::var_os("PVBENCH_BLESS").is_some() {
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if got != want {
        let line = got
            .lines()
            .zip(want.lines())
            .position(|(g, w)| g != w)
            .unwrap_or(0);
        panic!(
            "{name} differs from its golden file, first at line {}:\n  got:  {:?}\n  want: {:?}\n(bless with PVBENCH_BLESS=1 if intended)",
            line + 1,
            got.lines().nth(line).unwrap_or(""),
            want.lines().nth(line).unwrap_or("")
        );
    }
}

/// `pvbench report results/<dir> ARGS` run from the project root, as a user would.
fn report(dir: &str, args: &[&str]) -> String {
    let out = pvbench()
        .current_dir(root())
        .args(["report", &format!("results/{dir}"), "--no-plots"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{dir}: {}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn published_reports_are_unchanged() {
    let scratch = std::env::temp_dir().join(format!("pvbench-golden-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    for dir in DIRS {
        check(&format!("{dir}.txt"), &report(dir, &[]));
        check(&format!("{dir}.json"), &report(dir, &["--json"]));
        let md = scratch.join(format!("{dir}.md"));
        report(dir, &["--markdown", md.to_str().unwrap()]);
        check(&format!("{dir}.md"), &std::fs::read_to_string(&md).unwrap());
    }
    let _ = std::fs::remove_dir_all(scratch);
}
