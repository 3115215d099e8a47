//! `pvbench`: parses the command line and dispatches; the modules do the work.

mod accel;
mod build;
mod cli;
mod commands;
mod guest;
mod layout;
mod qemu;
mod toolchain;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

/// Exit status for errors before or around the guest (bad input, missing tools).
const EXIT_ERROR: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Build(args) => commands::build(args),
        Command::Boot(args) => commands::boot(args),
        Command::Run(args) => commands::run(args),
    };
    result.unwrap_or_else(|err| {
        eprintln!("pvbench: error: {err}");
        ExitCode::from(EXIT_ERROR)
    })
}
