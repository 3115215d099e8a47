//! Turns the kernel's static library into one an application can link.
//!
//! The kernel archive carries its own copies of core, alloc and compiler-builtins,
//! which would clash with the application's. As upstream Hermit does, every
//! defined symbol except the kernel's interface (entry points and `sys_*`) gets a
//! prefix, and every member is marked ELFOSABI_STANDALONE.

use std::path::Path;
use std::process::Command;
use std::{fs, io};

/// Prefix for the kernel's private symbols.
const PRIVATE_PREFIX: &str = "__pvbench_kernel_";
/// EI_OSABI (byte 7 of the ELF identification): 0xFF, "standalone".
const EI_OSABI: usize = 7;
const ELFOSABI_STANDALONE: u8 = 0xFF;

/// Why the kernel archive could not be processed.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// An LLVM tool could not be started.
    #[error("cannot run {tool}: {source}")]
    Spawn {
        /// The tool's path.
        tool: String,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// An LLVM tool exited unsuccessfully.
    #[error("{tool} failed on {path}: {stderr}")]
    Tool {
        /// The tool's path.
        tool: String,
        /// The archive it worked on.
        path: String,
        /// What it printed.
        stderr: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// objcopy's output does not parse as an `ar` archive.
    #[error("{path} is not a valid archive: {reason}")]
    Malformed {
        /// The archive.
        path: String,
        /// The parser's complaint.
        reason: String,
    },
    /// The archive defines no `_start`, so it is not a Hermit kernel and
    /// renaming its symbols would only hide that.
    #[error("{path} does not define the kernel entry `_start`: is it a Hermit kernel?")]
    NoEntry {
        /// The archive.
        path: String,
    },
}

/// Whether `symbol` is part of the kernel's interface to the application.
pub fn keeps_global(symbol: &str) -> bool {
    matches!(symbol, "_start" | "__bss_start" | "mcount" | "runtime_entry") || symbol.starts_with("sys_")
}

/// Writes the processed copy of `input` to `output`.
pub fn process(llvm_nm: &Path, llvm_objcopy: &Path, input: &Path, output: &Path) -> Result<(), ArchiveError> {
    let symbols = defined_globals(llvm_nm, input)?;
    if !symbols.iter().any(|s| s == "_start") {
        return Err(ArchiveError::NoEntry {
            path: input.display().to_string(),
        });
    }
    let renames: String = symbols
        .iter()
        .filter(|s| !keeps_global(s))
        .map(|s| format!("{s} {PRIVATE_PREFIX}{s}\n"))
        .collect();
    let map = output.with_extension("redefine-syms");
    fs::write(&map, renames).map_err(io_error(&map))?;

    run_tool(
        Command::new(llvm_objcopy)
            .arg(format!("--redefine-syms={}", map.display()))
            .arg(input)
            .arg(output),
        input,
    )?;
    fs::remove_file(&map).map_err(io_error(&map))?;

    let mut bytes = fs::read(output).map_err(io_error(output))?;
    set_osabi_standalone(&mut bytes).map_err(|reason| ArchiveError::Malformed {
        path: output.display().to_string(),
        reason,
    })?;
    fs::write(output, bytes).map_err(io_error(output))
}

fn defined_globals(llvm_nm: &Path, archive: &Path) -> Result<Vec<String>, ArchiveError> {
    let stdout = run_tool(
        Command::new(llvm_nm)
            .args(["--defined-only", "--extern-only", "--format=just-symbols"])
            .arg(archive),
        archive,
    )?;
    let mut symbols: Vec<String> = String::from_utf8_lossy(&stdout)
        .lines()
        // llvm-nm separates members with blank lines and "member.o:" headers.
        .filter(|line| !line.is_empty() && !line.ends_with(':'))
        .map(str::to_owned)
        .collect();
    symbols.sort_unstable();
    symbols.dedup();
    Ok(symbols)
}

/// Runs an LLVM tool on `path`; its stdout, or an error naming the tool.
fn run_tool(cmd: &mut Command, path: &Path) -> Result<Vec<u8>, ArchiveError> {
    let tool = cmd.get_program().to_string_lossy().into_owned();
    let result = cmd.output().map_err(|source| ArchiveError::Spawn {
        tool: tool.clone(),
        source,
    })?;
    if !result.status.success() {
        return Err(ArchiveError::Tool {
            tool,
            path: path.display().to_string(),
            stderr: String::from_utf8_lossy(&result.stderr).into_owned(),
        });
    }
    Ok(result.stdout)
}

/// Sets EI_OSABI to standalone in every ELF member, in place.
fn set_osabi_standalone(archive: &mut [u8]) -> Result<usize, String> {
    let ranges: Vec<(usize, usize)> = {
        let parsed = object::read::archive::ArchiveFile::parse(&*archive).map_err(|e| e.to_string())?;
        parsed
            .members()
            .map(|member| {
                let (offset, size) = member.map_err(|e| e.to_string())?.file_range();
                Ok((offset as usize, size as usize))
            })
            .collect::<Result<_, String>>()?
    };
    let mut patched = 0;
    for (offset, size) in ranges {
        let member = &mut archive[offset..offset + size];
        if member.len() > EI_OSABI && member.starts_with(b"\x7fELF") {
            member[EI_OSABI] = ELFOSABI_STANDALONE;
            patched += 1;
        }
    }
    Ok(patched)
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Io {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_symbols_stay_global() {
        for kept in [
            "_start",
            "__bss_start",
            "mcount",
            "runtime_entry",
            "sys_write",
            "sys_futex_wait",
        ] {
            assert!(keeps_global(kept), "{kept}");
        }
        for private in [
            "memcpy",
            "_ZN4core3fmt5write17h",
            "rust_begin_unwind",
            "syscall",
            "__start",
        ] {
            assert!(!keeps_global(private), "{private}");
        }
    }

    #[test]
    fn osabi_is_set_in_every_elf_member_only() {
        // A GNU archive with two members: an ELF header stub and a text file.
        let mut archive = b"!<arch>\n".to_vec();
        let mut add = |name: &str, data: &[u8]| {
            archive.extend(
                format!(
                    "{name:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
                    0,
                    0,
                    0,
                    644,
                    data.len()
                )
                .bytes(),
            );
            archive.extend_from_slice(data);
            if data.len() % 2 == 1 {
                archive.push(b'\n');
            }
        };
        add("a.o/", b"\x7fELF\x02\x01\x01\x00rest-of-header");
        add("notes.txt/", b"plain");
        assert_eq!(set_osabi_standalone(&mut archive), Ok(1));
        let elf = archive.windows(4).position(|w| w == b"\x7fELF").unwrap();
        assert_eq!(archive[elf + EI_OSABI], ELFOSABI_STANDALONE);
        assert!(archive.windows(5).any(|w| w == b"plain"));
    }

    #[test]
    fn garbage_is_not_an_archive() {
        assert!(set_osabi_standalone(&mut b"definitely not an archive".to_vec()).is_err());
    }
}
