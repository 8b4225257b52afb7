//! One module per subcommand.

pub mod backends;
pub mod data;
pub mod freeze;
pub mod ignore;
pub mod new;
pub mod package;
pub mod plan;
pub mod replay;
pub mod run;
pub mod schema;
pub mod validate;
pub mod verify;

use crate::cli::{Cli, Command};

/// Run the chosen subcommand and return its exit code.
pub fn dispatch(cli: Cli) -> miette::Result<u8> {
    let global = &cli.global;
    match cli.command {
        Command::Plan(args) => plan::run(global, args),
        Command::Validate(args) => validate::run(global, args),
        Command::Schema(args) => schema::run(global, args),
        Command::Backends(args) => backends::run(global, args),
        Command::Run(args) => run::run(global, args),
        Command::Data(args) => data::run(global, args),
        Command::New(args) => new::run(global, args),
        Command::Ignore(args) => ignore::run(global, args),
        Command::Package(args) => package::run(global, args),
        Command::Replay(args) => replay::run(global, args),
        Command::Freeze(args) => freeze::run(global, args),
        Command::Verify(args) => verify::run(global, args),
    }
}
