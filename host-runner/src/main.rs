//! `pvbench`: parses the command line and dispatches; the library does the work.

use std::process::ExitCode;

use clap::Parser;
use pvbench::cli::{BaselineCommand, Cli, Command};
use pvbench::exit::{self, Error, Exit};
use pvbench::{commands, gate, ministat};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: Result<Exit, Error> = match cli.command {
        Command::Build(args) => commands::build(&args).map_err(Error::from),
        Command::Boot(args) => commands::boot(&args).map_err(Error::from),
        Command::Run(args) => commands::run(&args).map_err(Error::from),
        Command::Plan(args) => commands::plan(&args).map_err(Error::from),
        Command::Merge(args) => commands::merge(&args).map_err(Error::from),
        Command::Soak(args) => commands::soak(&args).map_err(Error::from),
        Command::Calibrate(args) => commands::calibrate(&args).map_err(Error::from),
        Command::Ministat(args) => Ok(ministat::run(&args.into())),
        Command::Report(args) => commands::report_results(args).map_err(Error::from),
        Command::Gate(args) => gate::run(&args.into()).map_err(Error::from),
        Command::Baseline(args) => match args.command {
            BaselineCommand::Save(save) => gate::save_baseline(&save.into()).map_err(Error::Baseline),
        },
    };
    // The one place a subcommand's end becomes the process's status.
    let exit = result.unwrap_or_else(|err| {
        exit::print_error(&err);
        Exit::Error
    });
    ExitCode::from(exit.code())
}
