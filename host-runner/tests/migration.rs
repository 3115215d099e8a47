//! Live migration of a running guest (`pvbench boot --migrate-every S`) under
//! TCG: QEMU's own migration to a fresh QEMU over a local socket, repeatedly;
//! the console goes on from the destination, and no QEMU or socket outlives
//! the guest, whether the migrations succeed or the destination fails.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use common::{image, pvbench, text};

/// Runs `pvbench boot --migrate-every 1` on a guest that never ends by itself
/// (`mode=hang`), with `env` set; returns (exit code, stdout, stderr, pid).
fn boot_migrating(env: &[(&str, &str)], timeout_s: u32) -> (Option<i32>, String, String, u32) {
    image();
    let mut cmd = pvbench();
    cmd.args(["boot", "--accel", "tcg", "--vcpus", "2", "--migrate-every", "1"])
        .args(["--timeout", &timeout_s.to_string(), "--", "mode=hang"])
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("run pvbench boot");
    let pid = child.id();
    let out = child.wait_with_output().expect("wait for pvbench boot");
    (out.status.code(), text(&out.stdout), text(&out.stderr), pid)
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

#[test]
fn a_guest_migrates_repeatedly_and_its_console_goes_on() {
    let (code, stdout, stderr, pid) = boot_migrating(&[], 7);
    // mode=hang never ends: the timeout stops it, not a failed migration.
    assert_eq!(code, Some(124), "{stderr}");
    let migrations: u32 = stderr
        .lines()
        .find_map(|l| {
            l.strip_prefix("pvbench: ")?
                .split_once(" live migrations")?
                .0
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no migration count in:\n{stderr}"));
    assert!(migrations >= 3, "{migrations} migrations in 7 s:\n{stderr}");
    assert!(!stderr.contains("failed"), "{stderr}");
    // The guest booted once: the destinations took its state over, they did
    // not boot it again.
    assert_eq!(stdout.matches("pvbench-guest: hello").count(), 1, "{stdout}");
    assert_eq!(leftovers(pid), Vec::<String>::new());
}

#[test]
fn a_destination_that_cannot_start_fails_the_guest_and_leaves_nothing() {
    // A QEMU that refuses to be a migration destination.
    let dir = std::env::temp_dir().join(format!("pvbench-test-qemu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wrapper = dir.join("qemu");
    let real = Command::new("sh")
        .args(["-c", "command -v qemu-system-x86_64"])
        .output()
        .unwrap();
    let real = text(&real.stdout).trim().to_string();
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = -incoming ] && {{ echo 'no room for a destination' >&2; exit 1; }}; done\nexec {real} \"$@\"\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (code, _, stderr, pid) = boot_migrating(&[("PVBENCH_QEMU", wrapper.to_str().unwrap())], 60);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "live migration 1 failed: the migration destination did not start: no room for a destination"
        ),
        "{stderr}"
    );
    assert_eq!(leftovers(pid), Vec::<String>::new());
}
