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

/// The project's paths, all derived from its root.
pub struct Layout {
    /// The project checkout, usually [`project_root`].
    pub root: PathBuf,
}

impl Layout {
    /// The layout of the checkout at `root`.
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

    /// pvbench's patch to hermit-kernel, applied to the unpacked source.
    pub fn kernel_patch(&self) -> PathBuf {
        self.unikernel()
            .join("kernel")
            .join("patches")
            .join("hermit-kernel-0.11.0.patch")
    }

    /// The image cache: one directory per image id.
    pub fn images_dir(&self) -> PathBuf {
        self.state_dir().join("images")
    }
}

/// File names inside an image directory.
pub mod image_files {
    /// The multiboot loader, converted to 32-bit ELF.
    pub const LOADER: &str = "loader.elf32";
    /// The application with the kernel linked in.
    pub const APP: &str = "app.elf";
    /// Holds the processed kernel archive the application was linked with.
    pub const KERNEL_LIB_DIR: &str = "lib";
    /// The image's [`Manifest`](crate::Manifest), as JSON.
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
