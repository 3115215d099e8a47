//! The kernel source the image is built from: hermit-kernel 0.11.0 as published
//! on crates.io (checksum-verified), unpacked, with pvbench's patch applied.
//!
//! The guest workspace points `[patch.crates-io] hermit-kernel` at the unpacked
//! copy. The `.crate` comes from cargo's cache, fetched through
//! `unikernel/kernel-source`, a manifest of its own that resolves without the copy.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::layout::Layout;
use crate::toolchain::Toolchain;
use crate::{io_error, BuildError};

/// The published crate the kernel source comes from, as cargo names its file.
pub const CRATE: &str = "hermit-kernel-0.11.0";
/// SHA-256 of the published `.crate` (also the checksum crates.io's index lists).
const CRATE_SHA256: &str = "e5a914a929e843e539267f5f8d1b6b53add9587db6caa5547b7bff16edba8e03";
/// Records which patch an unpacked copy carries.
const STAMP: &str = ".pvbench-patch";

/// Makes sure the patched source is in place; returns its directory.
pub fn prepare(layout: &Layout, toolchain: &Toolchain) -> Result<PathBuf, BuildError> {
    let dest = layout.kernel_source_dir();
    let patch = layout.kernel_patch();
    let patch_bytes = fs::read(&patch).map_err(io_error(&patch))?;
    let stamp = format!("{CRATE_SHA256} {}", hex(&Sha256::digest(&patch_bytes)));
    if fs::read_to_string(dest.join(STAMP)).is_ok_and(|s| s == stamp) {
        return Ok(dest);
    }

    let crate_file = match cached_crate() {
        Some(file) => file,
        None => {
            fetch(layout, toolchain)?;
            cached_crate().ok_or_else(|| {
                BuildError::KernelSource(format!(
                    "{CRATE}.crate is not in cargo's cache even after `cargo fetch`"
                ))
            })?
        }
    };
    let bytes = fs::read(&crate_file).map_err(io_error(&crate_file))?;
    let digest = hex(&Sha256::digest(&bytes));
    if digest != CRATE_SHA256 {
        return Err(BuildError::KernelSource(format!(
            "{} has SHA-256 {digest}, expected {CRATE_SHA256}: remove it and rebuild",
            crate_file.display()
        )));
    }

    let staging = dest.with_extension("staging");
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(&staging).map_err(io_error(&staging))?;
    run(
        Command::new("tar")
            .arg("xzf")
            .arg(&crate_file)
            .arg("-C")
            .arg(&staging),
        "tar",
    )?;
    let unpacked = staging.join(CRATE);
    // Stop git's repository discovery at the staging directory: `git apply`
    // then patches plain files instead of paths of an enclosing repository.
    run(
        Command::new("git")
            .current_dir(&unpacked)
            .env("GIT_CEILING_DIRECTORIES", &staging)
            .args(["apply", "-p2", "--whitespace=nowarn"])
            .arg(&patch),
        "git apply",
    )?;
    fs::write(unpacked.join(STAMP), &stamp).map_err(io_error(&unpacked))?;
    if dest.exists() {
        fs::remove_dir_all(&dest).map_err(io_error(&dest))?;
    }
    fs::rename(&unpacked, &dest).map_err(io_error(&dest))?;
    let _ = fs::remove_dir_all(&staging);
    Ok(dest)
}

fn cached_crate() -> Option<PathBuf> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))?;
    fs::read_dir(cargo_home.join("registry").join("cache"))
        .ok()?
        .filter_map(Result::ok)
        .map(|index| index.path().join(format!("{CRATE}.crate")))
        .find(|file| file.is_file())
}

fn fetch(layout: &Layout, toolchain: &Toolchain) -> Result<(), BuildError> {
    let manifest = layout.unikernel().join("kernel-source").join("Cargo.toml");
    run(
        toolchain
            .cargo()
            .arg("fetch")
            .arg("--locked")
            .arg("--manifest-path")
            .arg(&manifest),
        "cargo fetch",
    )
}

fn run(cmd: &mut Command, what: &str) -> Result<(), BuildError> {
    let output = cmd
        .output()
        .map_err(|e| BuildError::KernelSource(format!("cannot run {what}: {e}")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(BuildError::KernelSource(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
