//! The guest toolchain: the pinned nightly with rust-src and llvm-tools, installed
//! through rustup when missing.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::layout::GUEST_TOOLCHAIN;

/// Why the guest toolchain is not available.
#[derive(Debug, thiserror::Error)]
pub enum ToolchainError {
    /// `rustup` is not on `PATH`.
    #[error(
        "rustup not found: install it (https://rustup.rs: `curl https://sh.rustup.rs -sSf | sh`), then rerun"
    )]
    NoRustup,
    /// `rustup toolchain install` failed, with this exit code.
    #[error("`rustup toolchain install {GUEST_TOOLCHAIN}` failed (exit {0:?}); check network access to the Rust dist server")]
    InstallFailed(Option<i32>),
    /// rustup could not be run, for another reason than its absence.
    #[error("cannot run {what}: {source}")]
    Spawn {
        /// The program.
        what: String,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A component is still missing after the install.
    #[error("{0} is missing from {GUEST_TOOLCHAIN} even after installing it")]
    Missing(String),
}

/// Paths of the installed guest toolchain.
pub struct Toolchain {
    /// The llvm-tools directory, holding `llvm-nm` and `llvm-objcopy`.
    pub llvm_bin: PathBuf,
    /// `rustc -vV` of the toolchain, part of the image's cache key.
    pub version: String,
}

impl Toolchain {
    /// The LLVM tool `name` (`llvm-objcopy`) of this toolchain.
    pub fn llvm_tool(&self, name: &str) -> PathBuf {
        self.llvm_bin.join(name)
    }

    /// A `cargo` command on the guest toolchain, with the host's cargo environment
    /// (from `cargo run`/`cargo test`) removed so it cannot leak into guest builds.
    pub fn cargo(&self) -> Command {
        let mut cmd = Command::new("rustup");
        cmd.args(["run", GUEST_TOOLCHAIN, "cargo"]);
        for var in [
            "RUSTUP_TOOLCHAIN",
            "RUSTC",
            "RUSTDOC",
            "RUSTC_WRAPPER",
            "RUSTC_WORKSPACE_WRAPPER",
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_TARGET",
            "CARGO_MAKEFLAGS",
            "CARGO",
        ] {
            cmd.env_remove(var);
        }
        cmd
    }
}

/// Finds the guest toolchain, installing it (or its components) if missing.
pub fn ensure(quiet: bool) -> Result<Toolchain, ToolchainError> {
    if let Some(toolchain) = probe()? {
        return Ok(toolchain);
    }
    if !quiet {
        eprintln!("pvbench: installing Rust {GUEST_TOOLCHAIN} with rust-src and llvm-tools (once)");
    }
    let status = Command::new("rustup")
        .args(["toolchain", "install", GUEST_TOOLCHAIN, "--profile", "minimal"])
        .args(["-c", "rust-src", "-c", "llvm-tools"])
        .stdout(if quiet { Stdio::null() } else { Stdio::inherit() })
        .status()
        .map_err(spawn_error("rustup"))?;
    if !status.success() {
        return Err(ToolchainError::InstallFailed(status.code()));
    }
    let toolchain = probe()?.ok_or_else(|| ToolchainError::Missing("rust-src or llvm-tools".into()))?;
    Ok(toolchain)
}

/// The toolchain if it is complete, without installing anything.
fn probe() -> Result<Option<Toolchain>, ToolchainError> {
    let output = match Command::new("rustup")
        .args(["run", GUEST_TOOLCHAIN, "rustc", "-vV"])
        .env_remove("RUSTUP_TOOLCHAIN")
        .stderr(Stdio::null())
        .output()
    {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ToolchainError::NoRustup),
        other => other.map_err(spawn_error("rustup"))?,
    };
    if !output.status.success() {
        return Ok(None);
    }
    let version = String::from_utf8_lossy(&output.stdout).into_owned();
    let Some(host) = version.lines().find_map(|l| l.strip_prefix("host: ")) else {
        return Ok(None);
    };
    let sysroot = Command::new("rustup")
        .args(["run", GUEST_TOOLCHAIN, "rustc", "--print", "sysroot"])
        .env_remove("RUSTUP_TOOLCHAIN")
        .output()
        .map_err(spawn_error("rustup"))?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    let llvm_bin = sysroot.join("lib/rustlib").join(host).join("bin");
    let complete = sysroot.join("lib/rustlib/src/rust/library/std").is_dir()
        && llvm_bin.join("llvm-objcopy").is_file()
        && llvm_bin.join("llvm-nm").is_file();
    Ok(complete.then_some(Toolchain { llvm_bin, version }))
}

fn spawn_error(what: &str) -> impl FnOnce(std::io::Error) -> ToolchainError + '_ {
    move |source| ToolchainError::Spawn {
        what: what.to_string(),
        source,
    }
}
