//! Recognising a panic on the serial console, so a failed guest is reported as
//! "guest kernel panic at scheduler/task.rs:690: ..." instead of a bare status.
//!
//! Two printers exist. Hermit's kernel panic handler prints
//! `[CORE][PANIC] panicked at FILE:LINE:COL:` and the message on the next line;
//! Rust's std in the application prints `thread 'NAME' panicked at
//! FILE:LINE:COL:` and the message on the next line. Both then stop the VM with
//! the kernel's failure status, which alone cannot tell them apart.

use std::fmt;

/// Where a panic was raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PanicSource {
    /// Hermit's kernel (`[N][PANIC] panicked at ...`).
    Kernel,
    /// The guest application's std (`thread '...' panicked at ...`).
    Application,
}

/// The first panic a guest printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestPanic {
    /// Which printer it came from: kernel or application.
    pub source: PanicSource,
    /// `FILE:LINE` with the file shortened to its crate-relative path
    /// (`scheduler/task.rs:690`).
    pub location: String,
    /// The panic message (its first line), empty if none followed.
    pub message: String,
}

impl fmt::Display for GuestPanic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = match self.source {
            PanicSource::Kernel => "guest kernel panic",
            PanicSource::Application => "guest application panic",
        };
        write!(f, "{who} at {}", self.location)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

/// Watches serial lines for the first panic and its message.
#[derive(Debug, Default, Clone)]
pub struct PanicWatch {
    found: Option<GuestPanic>,
    /// The header was seen; the next line is the message.
    awaiting_message: bool,
}

impl PanicWatch {
    /// Feeds one serial line (without its newline).
    pub fn feed(&mut self, line: &str) {
        if self.awaiting_message {
            self.awaiting_message = false;
            if let Some(panic) = self.found.as_mut() {
                panic.message = line.trim().to_string();
            }
            return;
        }
        if self.found.is_some() {
            return;
        }
        if let Some((source, location, inline)) = parse_header(line) {
            self.awaiting_message = inline.is_empty();
            self.found = Some(GuestPanic {
                source,
                location,
                message: inline,
            });
        }
    }

    /// The first panic fed so far, with its message once that line arrived.
    pub fn panic(&self) -> Option<&GuestPanic> {
        self.found.as_ref()
    }
}

/// `[0][PANIC] panicked at /x/hermit-kernel-0.11.0/src/scheduler/task.rs:690:9:`
/// or `thread 'main' panicked at app/src/main.rs:68:20:`. Older Rust printed the
/// message on the same line after `'...', `: that is returned as the third part.
fn parse_header(line: &str) -> Option<(PanicSource, String, String)> {
    const AT: &str = "panicked at ";
    let (before, after) = line.split_once(AT)?;
    let source = if before.contains("[PANIC]") {
        PanicSource::Kernel
    } else if before.trim_start().starts_with("thread '") {
        PanicSource::Application
    } else {
        return None;
    };
    let after = after.trim_end();
    let (place, inline) = match after.strip_suffix(':') {
        Some(place) => (place, String::new()),
        // `panicked at 'message', file:line:col`
        None => match after.rsplit_once(", ") {
            Some((message, place)) => (place, message.trim_matches('\'').to_string()),
            None => (after, String::new()),
        },
    };
    Some((source, short_location(place), inline))
}

/// `.../hermit-kernel-0.11.0/src/scheduler/task.rs:690:9` -> `scheduler/task.rs:690`:
/// the path below the last `src/` and the line, without the column.
fn short_location(place: &str) -> String {
    let mut parts = place.rsplitn(3, ':');
    let (col, line, file) = (parts.next(), parts.next(), parts.next());
    let (file, line) = match (file, line, col) {
        (Some(file), Some(line), Some(_)) if line.parse::<u32>().is_ok() => (file, line),
        _ => return place.to_string(),
    };
    let file = match file.rfind("/src/") {
        Some(i) if file.contains("hermit-kernel") => &file[i + "/src/".len()..],
        _ => file,
    };
    format!("{file}:{line}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch(lines: &[&str]) -> Option<GuestPanic> {
        let mut w = PanicWatch::default();
        for line in lines {
            w.feed(line);
        }
        w.panic().cloned()
    }

    #[test]
    fn kernel_panic_with_message_on_the_next_line() {
        let p = watch(&[
            "some output",
            "[1][PANIC] panicked at /work/target/guest/src/hermit-kernel-0.11.0/src/scheduler/task.rs:690:9:",
            "internal error: entered unreachable code",
            "",
            "exit status 1",
        ])
        .expect("panic found");
        assert_eq!(p.source, PanicSource::Kernel);
        assert_eq!(p.location, "scheduler/task.rs:690");
        assert_eq!(p.message, "internal error: entered unreachable code");
        assert_eq!(
            p.to_string(),
            "guest kernel panic at scheduler/task.rs:690: internal error: entered unreachable code"
        );
    }

    #[test]
    fn application_panic_keeps_its_path() {
        let p = watch(&[
            "thread 'main' panicked at app/src/main.rs:68:20:",
            "mode=panic asked for a panic",
        ])
        .unwrap();
        assert_eq!(p.source, PanicSource::Application);
        assert_eq!(
            p.to_string(),
            "guest application panic at app/src/main.rs:68: mode=panic asked for a panic"
        );
    }

    #[test]
    fn first_panic_wins_and_old_format_parses() {
        let p = watch(&[
            "thread 'w' panicked at 'boom', src/lib.rs:3:5",
            "[0][PANIC] panicked at x/src/a.rs:1:1:",
            "later",
        ])
        .unwrap();
        assert_eq!(
            (p.location.as_str(), p.message.as_str()),
            ("src/lib.rs:3", "boom")
        );
    }

    #[test]
    fn ordinary_lines_are_not_panics() {
        assert_eq!(watch(&["pvbench-guest: nobody panicked at all", "[PANIC]"]), None);
        assert_eq!(watch(&[]), None);
    }
}
