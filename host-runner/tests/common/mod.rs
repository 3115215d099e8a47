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

/// `pvbench boot` under TCG (tests never depend on the host's KVM).
pub fn boot(vcpus: u32, timeout_s: u32, guest_args: &[&str]) -> Output {
    image();
    pvbench()
        .args(["boot", "--accel", "tcg", "--quiet"])
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

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `pvbench boot` under TCG with a virtio-net NIC (for guests that stream metrics).
pub fn boot_networked(vcpus: u32, timeout_s: u32, guest_args: &[String]) -> Output {
    image();
    pvbench()
        .args(["boot", "--accel", "tcg", "--network"])
        .args([
            "--vcpus",
            &vcpus.to_string(),
            "--timeout",
            &timeout_s.to_string(),
            "--",
        ])
        .args(guest_args)
        .output()
        .expect("run pvbench boot --network")
}
