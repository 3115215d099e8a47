//! Where things are: the one place that knows the project's paths and file names.

use std::path::{Path, PathBuf};

/// The nightly Hermit 0.11 needs (also pinned in unikernel/rust-toolchain.toml).
pub const GUEST_TOOLCHAIN: &str = "nightly-2025-03-15";

/// The project checkout pvbench works in: `PVBENCH_ROOT`, else the tree it was
/// built from.
pub fn project_root() -> PathBuf {
    match std::env::var_os("PVBENCH_ROOT") {
        Some(root) => PathBuf::from(root),
        // This crate sits at <root>/host-runner/crates/build.
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .nth(3)
            .expect("host-runner/crates/build sits inside the project")
            .to_path_buf(),
    }
}

pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    /// The guest workspace.
    pub fn unikernel(&self) -> PathBuf {
        self.root.join("unikernel")
    }

    /// Everything pvbench writes for itself (images, probes) lives under here.
    pub fn state_dir(&self) -> PathBuf {
        self.root.join("target").join("pvbench")
    }

    /// cargo's target directory for one guest component; one each, because they
    /// use different rustflags for the same target.
    pub fn guest_target_dir(&self, component: &str) -> PathBuf {
        self.root.join("target").join("guest").join(component)
    }

    /// The unpacked, patched hermit-kernel; unikernel/Cargo.toml's
    /// `[patch.crates-io]` points here.
    pub fn kernel_source_dir(&self) -> PathBuf {
        self.root
            .join("target")
            .join("guest")
            .join("src")
            .join("hermit-kernel-0.11.0")
    }

    pub fn kernel_patch(&self) -> PathBuf {
        self.unikernel()
            .join("kernel")
            .join("patches")
            .join("hermit-kernel-0.11.0.patch")
    }

    pub fn images_dir(&self) -> PathBuf {
        self.state_dir().join("images")
    }
}

/// File names inside an image directory.
pub mod image_files {
    pub const LOADER: &str = "loader.elf32";
    pub const APP: &str = "app.elf";
    pub const KERNEL_LIB_DIR: &str = "lib";
    pub const MANIFEST: &str = "image.json";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_project_root_holds_the_guest_workspace() {
        if std::env::var_os("PVBENCH_ROOT").is_none() {
            let layout = Layout::new(project_root());
            assert!(
                layout.unikernel().join("Cargo.toml").is_file(),
                "{}",
                layout.root.display()
            );
        }
    }
}
