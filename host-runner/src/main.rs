//! `pvbench`: parses the command line and dispatches; the library does the work.

use std::process::ExitCode;

use clap::Parser;
use pvbench::cli::{Cli, Command};
use pvbench::{commands, gate, ministat};

/// Exit status for errors before or around the guest (bad input, missing tools).
const EXIT_ERROR: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Build(args) => commands::build(args),
        Command::Boot(args) => commands::boot(args),
        Command::Run(args) => commands::run(args),
        Command::Soak(args) => commands::soak(args),
        // ministat has its own exit statuses (0 no difference, 1 difference, 2 error).
        Command::Ministat(args) => return ministat::run(args),
        Command::Report(args) => {
            return pvbench::report::run(args).unwrap_or_else(|err| {
                eprintln!("pvbench: error: {err}");
                ExitCode::from(EXIT_ERROR)
            })
        }
        // The gate's statuses are its verdict (0 pass, 1 regression, 2 cannot judge).
        Command::Gate(args) => return gate::run(args),
        Command::Baseline(args) => return gate::baseline(args),
    };
    result.unwrap_or_else(|err| {
        eprintln!("pvbench: error: {err}");
        ExitCode::from(EXIT_ERROR)
    })
}
