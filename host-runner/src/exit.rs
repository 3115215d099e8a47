//! How a subcommand ended, and the one table of exit statuses; the error a
//! subcommand can end with, and the one printer of error lines.
//!
//! Every subcommand returns an [`Exit`] (or an [`Error`]); `main` prints the
//! error with [`print_error`] and exits with [`Exit::code`].

use std::fmt::Display;

use crate::commands::CommandError;
use crate::gate::{GateError, GateFailure, GateVerdict};
use crate::ministat;
use crate::report::ReportError;

/// How a subcommand ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done, nothing to flag.
    Success,
    /// `pvbench gate` found a regression.
    Regression,
    /// `pvbench ministat` proved a difference.
    Difference,
    /// `pvbench soak`: some cells failed.
    CellsFailed,
    /// stdout's reader went away (`| head`): it wants no more output and no
    /// message, but this is no success, as a death by SIGPIPE would not be.
    OutputClosed,
    /// `pvbench gate` could not judge everything.
    CannotJudge,
    /// An error, its message printed.
    Error,
    /// `pvbench boot`: the status the guest exited with.
    Guest(u8),
    /// `pvbench boot`: the guest crashed or exited without a status.
    GuestFailed,
    /// `pvbench boot`: the guest was killed after its timeout, or as stalled.
    TimedOut,
    /// `pvbench boot`: Ctrl-C or SIGTERM; the guest was killed.
    Interrupted,
}

impl Exit {
    /// The process's exit status.
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            // diff(1)'s convention: 1 = the answer is "different".
            Exit::Regression
            | Exit::Difference
            | Exit::CellsFailed
            | Exit::OutputClosed
            | Exit::GuestFailed => 1,
            // ministat's and the gate's status for "cannot say".
            Exit::CannotJudge | Exit::Error => 2,
            Exit::Guest(status) => status,
            // As timeout(1).
            Exit::TimedOut => 124,
            // A shell's status for a command ended by SIGINT.
            Exit::Interrupted => 130,
        }
    }
}

impl From<GateVerdict> for Exit {
    fn from(verdict: GateVerdict) -> Self {
        match verdict {
            GateVerdict::Pass => Exit::Success,
            GateVerdict::Regression => Exit::Regression,
            GateVerdict::CannotJudge => Exit::CannotJudge,
        }
    }
}

impl From<ministat::Outcome> for Exit {
    fn from(outcome: ministat::Outcome) -> Self {
        match outcome {
            ministat::Outcome::NoDifference => Exit::Success,
            ministat::Outcome::Difference => Exit::Difference,
            // ministat printed its own message, in ministat's words.
            ministat::Outcome::Failed => Exit::Error,
        }
    }
}

/// What a subcommand can fail with; each is printed by [`print_error`] under
/// the program name its command uses.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error(transparent)]
    Gate(#[from] GateFailure),
    #[error(transparent)]
    Baseline(GateError),
}

impl Error {
    /// The name the error lines start with.
    fn program(&self) -> &'static str {
        match self {
            Error::Command(_) | Error::Report(_) => "pvbench",
            Error::Gate(_) => "pvbench gate",
            Error::Baseline(_) => "pvbench baseline",
        }
    }
}

/// Prints `err` on stderr as `PROGRAM: error: MESSAGE`, one line per error
/// (a gate that failed and then could not write its summary has two).
pub fn print_error(err: &Error) {
    let program = err.program();
    match err {
        Error::Gate(failure) => {
            print_line(program, &failure.error);
            if let Some(summary) = &failure.summary {
                print_line(program, summary);
            }
        }
        other => print_line(program, other),
    }
}

fn print_line(program: &str, message: &dyn Display) {
    eprintln!("{program}: error: {message}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_the_documented_ones() {
        // README and the integration tests: gate 0/1/2, ministat 0/1/2,
        // boot's guest status and 124, errors 2.
        assert_eq!(Exit::from(GateVerdict::Pass).code(), 0);
        assert_eq!(Exit::from(GateVerdict::Regression).code(), 1);
        assert_eq!(Exit::from(GateVerdict::CannotJudge).code(), 2);
        assert_eq!(Exit::from(ministat::Outcome::NoDifference).code(), 0);
        assert_eq!(Exit::from(ministat::Outcome::Difference).code(), 1);
        assert_eq!(Exit::from(ministat::Outcome::Failed).code(), 2);
        assert_eq!(Exit::Guest(7).code(), 7);
        assert_eq!(Exit::GuestFailed.code(), 1);
        assert_eq!(Exit::TimedOut.code(), 124);
        assert_eq!(Exit::Interrupted.code(), 130);
        assert_eq!(Exit::CellsFailed.code(), 1);
        assert_eq!(Exit::OutputClosed.code(), 1);
        assert_eq!(Exit::Error.code(), 2);
    }
}
