//! Shared by the integration tests: the `pvbench` binary, with the guest image
//! built once per test process.

#![allow(dead_code)]

use std::process::{Command, Output};
use std::sync::OnceLock;

pub fn pvbench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pvbench"))
}

/// Builds the guest image (a no-op when cached) and returns its directory.
pub fn image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let out = pvbench()
            .args(["build", "--quiet"])
            .output()
            .expect("run pvbench build");
        assert!(
            out.status.success(),
            "pvbench build failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    })
}

/// `pvbench boot` under TCG (tests never depend on the host's KVM) with extra
/// `flags` before the guest's words.
pub fn boot_with<S: AsRef<std::ffi::OsStr>>(
    flags: &[&str],
    vcpus: u32,
    timeout_s: u32,
    guest_args: &[S],
) -> Output {
    image();
    pvbench()
        .args(["boot", "--accel", "tcg"])
        .args(flags)
        .args([
            "--vcpus",
            &vcpus.to_string(),
            "--timeout",
            &timeout_s.to_string(),
            "--",
        ])
        .args(guest_args)
        .output()
        .expect("run pvbench boot")
}

/// `pvbench boot --quiet`: the guest's console only shows up on failure.
pub fn boot(vcpus: u32, timeout_s: u32, guest_args: &[&str]) -> Output {
    boot_with(&["--quiet"], vcpus, timeout_s, guest_args)
}

/// `pvbench boot` with a virtio-net NIC (for guests that stream metrics).
pub fn boot_networked(vcpus: u32, timeout_s: u32, guest_args: &[String]) -> Output {
    boot_with(&["--network"], vcpus, timeout_s, guest_args)
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `pvbench boot` of a cpuhog guest (one busy thread per vCPU) that runs
/// until `timeout_s` or until it is stopped; the caller picks its stdio.
pub fn hog_command(vcpus: u32, timeout_s: u32) -> Command {
    image();
    let mut cmd = pvbench();
    cmd.args(["boot", "--accel", "tcg", "--quiet", "--vcpus", &vcpus.to_string()])
        .args(["--timeout", &timeout_s.to_string(), "--"])
        .args([
            "workload=cpuhog",
            &format!("threads={vcpus}"),
            &format!("vcpus={vcpus}"),
        ]);
    cmd
}
