//! Migration of a running guest (`pvbench boot --migrate-every S`) under TCG:
//! QEMU's own migration to a fresh QEMU over a local socket, repeatedly, live
//! and paused; the console goes on from the destination, a 4-vCPU lock stress
//! in every paravirtual lock design finishes intact while its waiters halt and
//! kick across the migrations, and no QEMU or socket outlives the guest,
//! whether the migrations succeed, the destination fails or the guest ends
//! while a migration is being set up.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use common::{image, pvbench, text};

/// Runs `pvbench boot --migrate-every EVERY` with `options` on a guest of
/// `vcpus` running `words`, with `env` set; returns (exit code, stdout, stderr,
/// pid).
fn boot_migrating(
    env: &[(&str, &str)],
    options: &[&str],
    vcpus: u32,
    every: &str,
    timeout_s: u32,
    words: &[&str],
) -> (Option<i32>, String, String, u32) {
    image();
    let mut cmd = pvbench();
    cmd.args(["boot", "--accel", "tcg", "--vcpus", &vcpus.to_string()])
        .args(["--migrate-every", every])
        .args(options)
        .args(["--timeout", &timeout_s.to_string(), "--"])
        .args(words)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("run pvbench boot");
    let pid = child.id();
    let out = child.wait_with_output().expect("wait for pvbench boot");
    (out.status.code(), text(&out.stdout), text(&out.stderr), pid)
}

/// A scratch directory `name`, and in it an executable `qemu` wrapper script
/// made by `script` from the directory and the real QEMU's path.
fn qemu_wrapper(
    name: &str,
    script: impl Fn(&str, &str) -> String,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("pvbench-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let real = Command::new("sh")
        .args(["-c", "command -v qemu-system-x86_64"])
        .output()
        .unwrap();
    let real = text(&real.stdout).trim().to_string();
    let wrapper = dir.join("qemu");
    std::fs::write(&wrapper, script(&dir.display().to_string(), &real)).unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    (dir, wrapper)
}

/// Processes whose command line mentions this pvbench's migration sockets.
fn leftovers(pid: u32) -> Vec<String> {
    let marker = format!("pvbench-mig-{pid}-");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(&marker) {
                found.push(cmdline);
            }
        }
    }
    let dirs = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&marker))
        .map(|e| e.path().display().to_string());
    found.extend(dirs);
    found
}

/// The number of `kind` migrations pvbench reports on stderr.
fn migrations(stderr: &str, kind: &str) -> u32 {
    stderr
        .lines()
        .find_map(|l| {
            l.strip_prefix("pvbench: ")?
                .split_once(&format!(" {kind} migrations"))?
                .0
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no count of {kind} migrations in:\n{stderr}"))
}

#[test]
fn a_guest_migrates_live_repeatedly_and_its_console_goes_on() {
    // mode=hang idles: nothing for live migration's copy to miss.
    let (code, stdout, stderr, pid) =
        boot_migrating(&[], &["--migration", "live"], 2, "1", 7, &["mode=hang"]);
    // mode=hang never ends: the timeout stops it, not a failed migration.
    assert_eq!(code, Some(124), "{stderr}");
    let migrations = migrations(&stderr, "live");
    assert!(migrations >= 3, "{migrations} migrations in 7 s:\n{stderr}");
    // Killed at its timeout: where each vCPU was, from QEMU's monitor.
    assert!(stderr.contains("the vCPUs when it was killed"), "{stderr}");
    for cpu in ["CPU#0", "CPU#1"] {
        assert!(stderr.contains(&format!("  | {cpu}")), "{stderr}");
    }
    // Three samples at a timeout, 0.5 s apart, of both vCPUs.
    assert_eq!(stderr.matches("  | RIP=").count(), 3 * 2, "{stderr}");
    assert!(!stderr.contains("failed"), "{stderr}");
    // The guest booted once: the destinations took its state over, they did
    // not boot it again.
    assert_eq!(stdout.matches("pvbench-guest: hello").count(), 1, "{stdout}");
    assert_eq!(leftovers(pid), Vec::<String>::new());
}

#[test]
fn a_destination_that_cannot_start_fails_the_guest_and_leaves_nothing() {
    // A QEMU that refuses to be a migration destination.
    let (dir, wrapper) = qemu_wrapper("qemu", |_, real| {
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = -incoming ] && {{ echo 'no room for a destination' >&2; exit 1; }}; done\nexec {real} \"$@\"\n"
        )
    });
    let (code, _, stderr, pid) = boot_migrating(
        &[("PVBENCH_QEMU", wrapper.to_str().unwrap())],
        &[],
        2,
        "1",
        60,
        &["mode=hang"],
    );
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "paused migration 1 failed: the migration destination did not start: no room for a destination"
        ),
        "{stderr}"
    );
    assert_eq!(leftovers(pid), Vec::<String>::new());
}

#[test]
fn a_guest_that_ends_while_its_migration_is_set_up_is_its_own_exit() {
    // The race the soak met: the guest finished, its QEMU closed its monitor
    // and the migration then due failed, but the QEMU process took a while
    // longer to end. Here the source's QEMU is wrapped so that its process
    // ends a second after QEMU itself, and the destination fails only once
    // the source's QEMU is gone: the migration fails while the source still
    // runs, and pvbench must report the guest's own exit status.
    let (dir, wrapper) = qemu_wrapper("qemu-exit", |d, real| {
        format!(
            "#!/bin/sh
for a in \"$@\"; do
  if [ \"$a\" = -incoming ]; then
    touch {d}/destination-started
    while [ ! -e {d}/source-exited ]; do sleep 0.02; done
    echo 'the source is gone' >&2
    exit 1
  fi
done
{real} \"$@\"
status=$?
touch {d}/source-exited
sleep 1
exit $status
"
        )
    });
    // The first migration is due long before the guest has booted.
    let (code, _, stderr, pid) = boot_migrating(
        &[("PVBENCH_QEMU", wrapper.to_str().unwrap())],
        &[],
        2,
        "0.05",
        60,
        &["mode=exit", "status=7"],
    );
    let started = dir.join("destination-started").exists();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(started, "no migration was attempted:\n{stderr}");
    assert_eq!(code, Some(7), "{stderr}");
    assert!(!stderr.contains("failed"), "{stderr}");
    assert_eq!(leftovers(pid), Vec::<String>::new());
}

/// A 4-vCPU lock stress in `mode`, migrated (paused: the default under TCG)
/// every half second while its waiters spin, halt and kick: it must finish with
/// its own checks passed (data intact, the mode's counters adding up, no vCPU
/// left waiting) after several migrations, booted once.
fn stress_across_migrations(mode: &str) {
    let word = format!("pvlock={mode}");
    let words = [
        word.as_str(),
        // Waiters halt often: kicks are in flight at every migration.
        "pvlock.spin=16",
        "mode=lockstress",
        "threads=8",
        "rounds=1000",
    ];
    let (code, stdout, stderr, pid) = boot_migrating(&[], &[], 4, "0.5", 300, &words);
    assert_eq!(code, Some(0), "{mode}:\n{stdout}\n{stderr}");
    assert!(stdout.contains("counter=8000"), "{stdout}");
    // Whole lines only: one the guest was writing when it moved comes out
    // once, not as the source's half and the destination's (a run lost its
    // `pvlock stats` line that way).
    for line in stdout.lines() {
        assert!(
            line.starts_with("pvbench-guest: ") || line.starts_with('['),
            "{line:?} in:\n{stdout}"
        );
    }
    let stats = stdout
        .lines()
        .find(|l| l.contains("pvlock stats"))
        .unwrap_or_else(|| panic!("no pvlock stats line in:\n{stdout}"));
    assert!(stats.contains("waiting_cpus=0x0"), "{stats}");
    // The waiters really halted and were kicked, across the migrations.
    let halted: u64 = stats
        .split_whitespace()
        .find_map(|w| w.strip_prefix("halted=")?.parse().ok())
        .unwrap_or_else(|| panic!("no halted= in {stats}"));
    assert!(halted > 0, "{stats}");
    let migrations = migrations(&stderr, "paused");
    assert!(migrations >= 3, "{mode}: {migrations} migrations:\n{stderr}");
    assert_eq!(stdout.matches("pvbench-guest: hello").count(), 1, "{stdout}");
    assert_eq!(leftovers(pid), Vec::<String>::new());
}

#[test]
fn pv_waiters_halted_and_kicked_survive_migrations() {
    stress_across_migrations("pv");
}

#[test]
fn pvqspin_waiters_halted_and_kicked_survive_migrations() {
    stress_across_migrations("pvqspin");
}

/// A matrix with `[migration]`: its one group runs left alone and migrated
/// (paused, every second, while the pgbench-like works), base and pv. Every
/// cell completes with all its metrics (the stream resumed after each
/// migration broke it), the migrated cells say how often they moved, and the
/// report prices a migration for each mode.
#[test]
fn a_matrix_prices_a_migration_for_each_lock_mode() {
    image();
    let dir = std::env::temp_dir().join(format!("pvbench-test-migmatrix-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let matrix = dir.join("matrix.toml");
    std::fs::write(
        &matrix,
        r#"locks = ["base", "pv"]
overcommit = []
reps = 1
vcpus = 2
memory_mib = 512
spin_tcg = 256
# Function, not figures: no waiting out the host's CPUs apart (up to 90 s a cell).
apart_reruns = 0
[pgbench]
clients = [2]
overcommit = ["1x"]
scale = 1
duration_s = 4
cap_s = 30
[migration]
every_s = 1
"#,
    )
    .unwrap();
    let out = dir.join("out");
    let run = pvbench()
        .args(["run", "--accel", "tcg", "--quiet", "--matrix"])
        .arg(&matrix)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(out.join("cells")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let cell: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let id = path.file_stem().unwrap().to_string_lossy().to_string();
        assert_eq!(cell["status"], "completed", "{id}: {cell}");
        let migrations = &cell["migrations"];
        if id.contains("-mig-") {
            assert_eq!(migrations["kind"], "paused", "{id}");
            assert!(migrations["count"].as_u64().unwrap() >= 1, "{id}: {migrations}");
            // The stream broke at a migration and went on: resumed, complete.
            assert!(migrations["resumes"].as_u64().unwrap() >= 1, "{id}: {migrations}");
        } else {
            assert!(migrations.is_null(), "{id}: {migrations}");
        }
        ids.push(id);
    }
    ids.sort();
    assert_eq!(
        ids,
        [
            "pgbench-1x-c2-base-r1",
            "pgbench-1x-c2-mig-base-r1",
            "pgbench-1x-c2-mig-pv-r1",
            "pgbench-1x-c2-pv-r1"
        ]
    );
    let report = pvbench().args(["report", "--json"]).arg(&out).output().unwrap();
    assert_eq!(report.status.code(), Some(0), "{}", text(&report.stderr));
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    let rows = report["migration"].as_array().expect("a migration section");
    assert_eq!(rows.len(), 2, "{rows:?}");
    for (row, lock) in rows.iter().zip(["base", "pv"]) {
        assert_eq!(row["lock"], lock);
        assert_eq!(
            (row["runs_still"].as_u64(), row["runs_migrated"].as_u64()),
            (Some(1), Some(1))
        );
        assert!(row["cost_pct"].as_f64().is_some(), "{row}");
        assert!(row["migrations_per_cell"].as_f64().unwrap() >= 1.0, "{row}");
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("## Migration cost per lock mode"), "{md}");
    std::fs::remove_dir_all(&dir).unwrap();
}
