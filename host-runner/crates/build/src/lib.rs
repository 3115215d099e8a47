//! The guest image (loader + application with the kernel linked in), built
//! with the pinned nightly and cached by content hash: what `pvbench build`
//! does. [`layout`] knows where the project's files are, [`toolchain`]
//! installs the pinned nightly.
//!
//! An image is a directory `target/pvbench/images/<id>/` holding `loader.elf32`,
//! `app.elf` and `image.json`. `<id>` hashes every input: the guest sources, the
//! lock file, the toolchain's version and the exact build commands. The directory
//! appears atomically (built under a temporary name, then renamed), so a cached
//! image is always complete.

#![warn(missing_docs)]

mod archive;
mod kernel_source;
pub mod layout;
pub mod toolchain;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::layout::{image_files, Layout};
use crate::toolchain::{Toolchain, ToolchainError};

pub use archive::ArchiveError;

/// Source trees the image is built from (relative to the project root).
const SOURCE_DIRS: &[&str] = &["unikernel", "workloads"];
const KERNEL_TARGET: &str = "x86_64-unknown-none";
const APP_TARGET: &str = "x86_64-unknown-hermit";

/// Why the image could not be built or opened.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The guest toolchain is missing and could not be installed.
    #[error(transparent)]
    Toolchain(#[from] ToolchainError),
    /// A cargo step, or the loader's objcopy, failed.
    #[error("building the {step} failed (cargo exit {code:?}); its last output:\n{tail}")]
    Cargo {
        /// `kernel`, `application`, `loader` or `loader (objcopy)`.
        step: &'static str,
        /// Its exit code; `None` if a signal ended it.
        code: Option<i32>,
        /// The last 40 lines of its stderr; empty for objcopy.
        tail: String,
    },
    /// Renaming the kernel archive's private symbols failed.
    #[error("processing the kernel archive: {0}")]
    Archive(#[from] ArchiveError),
    /// Reading, writing or running something failed.
    #[error("{path}: {source}")]
    Io {
        /// The file, directory or program.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// Fetching, verifying, unpacking or patching hermit-kernel's source
    /// failed; the text says which.
    #[error("preparing the kernel source: {0}")]
    KernelSource(String),
    /// The guest workspace's `Cargo.lock` locks no hermit-kernel.
    #[error("cannot find hermit-kernel's version in {0}")]
    KernelVersion(PathBuf),
    /// A cached image's `image.json` does not parse: written by another
    /// pvbench version, or damaged.
    #[error("image manifest {path} is unreadable ({reason}): rebuild with `pvbench build --force`")]
    Manifest {
        /// The `image.json`.
        path: PathBuf,
        /// The JSON error.
        reason: String,
    },
}

/// What `image.json` records about an image.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// The hash of every input, also the directory's name.
    pub id: String,
    /// `hermit-kernel VERSION`.
    pub kernel: String,
    /// The first line of the guest toolchain's `rustc -vV`.
    pub toolchain: String,
    /// When the build finished, in seconds since the Unix epoch.
    pub built_unix: u64,
    /// Wall time from taking the build lock to writing the manifest.
    pub build_seconds: f64,
    /// Size of the loader file.
    pub loader_bytes: u64,
    /// Size of the application file.
    pub app_bytes: u64,
}

/// A built guest image.
#[derive(Debug, Clone)]
pub struct Image {
    /// `target/pvbench/images/<id>/`.
    pub dir: PathBuf,
    /// What its `image.json` records.
    pub manifest: Manifest,
}

impl Image {
    /// The multiboot loader, a 32-bit ELF: QEMU's `-kernel`.
    pub fn loader(&self) -> PathBuf {
        self.dir.join(image_files::LOADER)
    }

    /// The application with the kernel linked in: the loader's module.
    pub fn app(&self) -> PathBuf {
        self.dir.join(image_files::APP)
    }

    /// Reads an existing image directory.
    pub fn open(dir: &Path) -> Result<Self, BuildError> {
        let path = dir.join(image_files::MANIFEST);
        let text = fs::read_to_string(&path).map_err(io_error(&path))?;
        let manifest = serde_json::from_str(&text).map_err(|e| BuildError::Manifest {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            dir: dir.to_path_buf(),
            manifest,
        })
    }
}

/// How [`build`] goes about it.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuildOptions {
    /// Rebuild even if a cached image matches.
    pub force: bool,
    /// No progress lines on stderr.
    pub quiet: bool,
}

/// One cargo invocation of the recipe.
struct Step {
    name: &'static str,
    package: &'static str,
    target: &'static str,
    build_std: &'static str,
    rustflags: &'static [&'static str],
    /// Compile-time environment.
    env: &'static [(&'static str, &'static str)],
}

impl Step {
    fn describe(&self) -> String {
        format!(
            "{} {} {} {} {:?} {:?}",
            self.name, self.package, self.target, self.build_std, self.rustflags, self.env
        )
    }
}

const KERNEL: Step = Step {
    name: "kernel",
    package: "pvbench-kernel",
    target: KERNEL_TARGET,
    build_std: "core,alloc",
    // As upstream builds the kernel.
    rustflags: &["-Zmutable-noalias=no"],
    // Boot chatter costs serial time under TCG and buries the guest's own lines.
    env: &[("HERMIT_LOG_LEVEL_FILTER", "warn"), ("NO_COLOR", "1")],
};
const APP: Step = Step {
    name: "application",
    package: "pvbench-guest",
    target: APP_TARGET,
    build_std: "std,panic_abort",
    rustflags: &["-Dwarnings"],
    env: &[],
};
const LOADER: Step = Step {
    name: "loader",
    package: "pvbench-loader",
    target: KERNEL_TARGET,
    build_std: "core,alloc",
    // The 32-bit entry uses absolute addresses: link at a fixed address, not PIE.
    rustflags: &["-Crelocation-model=static", "-Dwarnings"],
    env: &[],
};

/// Builds the image, or returns the cached one.
pub fn build(layout: &Layout, options: BuildOptions) -> Result<Image, BuildError> {
    let toolchain = toolchain::ensure(options.quiet)?;
    let id = image_id(layout, &toolchain)?;
    let dir = layout.images_dir().join(&id);
    if let Some(image) = cached(&dir, options)? {
        return Ok(image);
    }
    // One builder at a time (tests build concurrently); the loser finds the cache.
    let _lock = lock_images(layout)?;
    if let Some(image) = cached(&dir, options)? {
        return Ok(image);
    }

    let started = Instant::now();
    let staging = layout
        .images_dir()
        .join(format!(".staging-{id}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    let lib_dir = staging.join(image_files::KERNEL_LIB_DIR);
    fs::create_dir_all(&lib_dir).map_err(io_error(&lib_dir))?;
    let kernel_version = kernel_version(layout)?;
    let say = |what: &str| {
        if !options.quiet {
            eprintln!("pvbench: {what}");
        }
    };

    say(&format!("building guest image {id} (Hermit {kernel_version})"));
    say("  kernel");
    build_kernel(layout, &toolchain, &lib_dir)?;
    say("  application");
    let app = staging.join(image_files::APP);
    build_app(layout, &toolchain, &lib_dir, &kernel_version, &id, &app)?;
    say("  loader");
    let loader = staging.join(image_files::LOADER);
    build_loader(layout, &toolchain, &loader)?;

    let manifest = Manifest {
        id: id.clone(),
        kernel: format!("hermit-kernel {kernel_version}"),
        toolchain: toolchain.version.lines().next().unwrap_or_default().to_string(),
        built_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        build_seconds: started.elapsed().as_secs_f64(),
        loader_bytes: file_len(&loader)?,
        app_bytes: file_len(&app)?,
    };
    write_manifest(&staging, &manifest)?;
    publish(&staging, &dir)?;
    say(&format!(
        "built guest image {id} in {:.1} s",
        manifest.build_seconds
    ));
    Ok(Image { dir, manifest })
}

/// The complete image in `dir`, unless `--force` asks for a rebuild.
fn cached(dir: &Path, options: BuildOptions) -> Result<Option<Image>, BuildError> {
    if options.force || !dir.join(image_files::MANIFEST).is_file() {
        return Ok(None);
    }
    Image::open(dir).map(Some)
}

/// Takes the builders' lock on the image cache; it is held until the returned
/// file is dropped.
fn lock_images(layout: &Layout) -> Result<File, BuildError> {
    fs::create_dir_all(layout.images_dir()).map_err(io_error(&layout.images_dir()))?;
    let lock_path = layout.state_dir().join("build.lock");
    let lock = File::create(&lock_path).map_err(io_error(&lock_path))?;
    lock.lock().map_err(io_error(&lock_path))?;
    Ok(lock)
}

/// Builds the kernel from the patched source and writes the archive the
/// application links against, `libhermit.a`, into `lib_dir`.
fn build_kernel(layout: &Layout, toolchain: &Toolchain, lib_dir: &Path) -> Result<(), BuildError> {
    kernel_source::prepare(layout, toolchain)?;
    let kernel_dir = cargo_build(layout, toolchain, &KERNEL, &[])?;
    archive::process(
        &toolchain.llvm_tool("llvm-nm"),
        &toolchain.llvm_tool("llvm-objcopy"),
        &kernel_dir.join("libpvbench_kernel.a"),
        &lib_dir.join("libhermit.a"),
    )?;
    Ok(())
}

/// Builds the application, linked with the kernel in `lib_dir`, and copies it
/// to `app`.
fn build_app(
    layout: &Layout,
    toolchain: &Toolchain,
    lib_dir: &Path,
    kernel_version: &str,
    id: &str,
    app: &Path,
) -> Result<(), BuildError> {
    let lib_dir_env = lib_dir.display().to_string();
    let app_dir = cargo_build(
        layout,
        toolchain,
        &APP,
        &[
            ("PVBENCH_KERNEL_LIB_DIR", &lib_dir_env),
            ("PVBENCH_KERNEL_VERSION", kernel_version),
            // The guest names its image in the metrics Hello.
            ("PVBENCH_IMAGE_ID", id),
        ],
    )?;
    copy(&app_dir.join("pvbench-guest"), app)
}

/// Builds the loader and writes it to `loader` as a 32-bit ELF.
fn build_loader(layout: &Layout, toolchain: &Toolchain, loader: &Path) -> Result<(), BuildError> {
    let loader_dir = cargo_build(layout, toolchain, &LOADER, &[])?;
    // QEMU's multiboot support only loads 32-bit ELF files.
    let status = Command::new(toolchain.llvm_tool("llvm-objcopy"))
        .args(["-O", "elf32-i386"])
        .arg(loader_dir.join("pvbench-loader"))
        .arg(loader)
        .status()
        .map_err(io_error(&toolchain.llvm_tool("llvm-objcopy")))?;
    if !status.success() {
        return Err(BuildError::Cargo {
            step: "loader (objcopy)",
            code: status.code(),
            tail: String::new(),
        });
    }
    Ok(())
}

/// Writes `image.json` into the staged image.
fn write_manifest(staging: &Path, manifest: &Manifest) -> Result<(), BuildError> {
    let manifest_path = staging.join(image_files::MANIFEST);
    let json = serde_json::to_string_pretty(manifest).expect("manifest serializes");
    fs::write(&manifest_path, json).map_err(io_error(&manifest_path))
}

/// Moves the staged image to `dir`, replacing an older one (`--force`). The
/// rename is what makes a cached image always complete.
fn publish(staging: &Path, dir: &Path) -> Result<(), BuildError> {
    if dir.exists() {
        fs::remove_dir_all(dir).map_err(io_error(dir))?;
    }
    fs::rename(staging, dir).map_err(io_error(dir))
}

/// Runs one cargo step and returns the directory holding its artifacts.
fn cargo_build(
    layout: &Layout,
    toolchain: &Toolchain,
    step: &Step,
    env: &[(&str, &str)],
) -> Result<PathBuf, BuildError> {
    let target_dir = layout.guest_target_dir(step.name);
    let mut cmd = toolchain.cargo();
    cmd.current_dir(layout.unikernel())
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            step.package,
            "--target",
            step.target,
        ])
        .arg(format!("-Zbuild-std={}", step.build_std))
        .arg("-Zbuild-std-features=compiler-builtins-mem")
        .arg("--target-dir")
        .arg(&target_dir)
        .env("CARGO_ENCODED_RUSTFLAGS", step.rustflags.join("\x1f"))
        .envs(step.env.iter().copied())
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let output = cmd.output().map_err(io_error(Path::new("rustup")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        return Err(BuildError::Cargo {
            step: step.name,
            code: output.status.code(),
            tail,
        });
    }
    Ok(target_dir.join(step.target).join("release"))
}

/// The cache key: a hash over every input of the image.
fn image_id(layout: &Layout, toolchain: &Toolchain) -> Result<String, BuildError> {
    let mut hasher = Sha256::new();
    hasher.update(toolchain.version.as_bytes());
    for step in [&KERNEL, &APP, &LOADER] {
        hasher.update(step.describe().as_bytes());
    }
    for dir in SOURCE_DIRS {
        let mut files = Vec::new();
        collect_sources(&layout.root.join(dir), &mut files)?;
        files.sort();
        for file in files {
            let relative = file.strip_prefix(&layout.root).unwrap_or(&file);
            hasher.update(relative.to_string_lossy().as_bytes());
            hasher.update([0]);
            hasher.update(fs::read(&file).map_err(io_error(&file))?);
            hasher.update([0]);
        }
    }
    Ok(short_id(&hasher.finalize()))
}

/// The short id of a SHA-256 digest: its first 8 bytes in hex.
fn short_id(digest: &[u8]) -> String {
    kernel_source::hex(&digest[..8])
}

/// Cargo target directories that `cargo build` of a library or binary never
/// compiles: editing a test or an example must not change the image's id
/// (a results directory would then look measured with another guest).
const NOT_IMAGE_INPUTS: &[&str] = &["tests", "examples", "benches"];

/// Files under `dir`, skipping build output, hidden entries and
/// [`NOT_IMAGE_INPUTS`].
fn collect_sources(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), BuildError> {
    if !dir.is_dir() {
        return Ok(());
    }
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            // Only a crate's own target directories (beside its Cargo.toml):
            // a `tests` module directory under src/ is compiled.
            if NOT_IMAGE_INPUTS.contains(&name.as_ref()) && dir.join("Cargo.toml").is_file() {
                continue;
            }
            collect_sources(&path, files)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}

/// hermit-kernel's version as locked in the guest workspace.
fn kernel_version(layout: &Layout) -> Result<String, BuildError> {
    let lock = layout.unikernel().join("Cargo.lock");
    let text = fs::read_to_string(&lock).map_err(io_error(&lock))?;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line == "name = \"hermit-kernel\"" {
            if let Some(version) = lines.next().and_then(|l| l.strip_prefix("version = \"")) {
                return Ok(version.trim_end_matches('"').to_string());
            }
        }
    }
    Err(BuildError::KernelVersion(lock))
}

fn copy(from: &Path, to: &Path) -> Result<(), BuildError> {
    fs::copy(from, to).map(|_| ()).map_err(io_error(from))
}

fn file_len(path: &Path) -> Result<u64, BuildError> {
    Ok(fs::metadata(path).map_err(io_error(path))?.len())
}

pub(crate) fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> BuildError + '_ {
    move |source| BuildError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_id_hashes_what_cargo_build_compiles_and_no_tests_or_examples() {
        let root = std::env::temp_dir().join(format!("pvbench-sources-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        for file in [
            "lock/Cargo.toml",
            "lock/src/lib.rs",
            "lock/src/tests/helpers.rs",
            "lock/tests/stress.rs",
            "lock/examples/uncontended.rs",
            "lock/benches/b.rs",
            "lock/target/debug/x",
            "lock/.hidden",
        ] {
            let path = root.join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, file).unwrap();
        }
        let mut files = Vec::new();
        collect_sources(&root, &mut files).unwrap();
        files.sort();
        let relative: Vec<_> = files
            .iter()
            .map(|f| f.strip_prefix(&root).unwrap().to_path_buf())
            .collect();
        fs::remove_dir_all(&root).unwrap();
        // A `tests` module directory inside src/ is compiled (cfg(test) or
        // not, cargo cannot tell): only the crate-level target directories go.
        assert_eq!(
            relative,
            ["lock/Cargo.toml", "lock/src/lib.rs", "lock/src/tests/helpers.rs"].map(PathBuf::from)
        );
    }
}
