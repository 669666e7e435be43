//! `qdn`: the ops team's CLI for the QDN SMS relay.
//!
//! Every command is built on `relay-core`, the functions' own crate: the same number
//! normalisation, dispatcher item, rota and "who is primary at T", configuration
//! check, secret cache, token signer, message trail and Twilio signature, so the CLI
//! can never disagree with the functions. Exit status: 0 success; 1 problems found, or an unknown dispatcher ID
//! or message SID; 2 bad usage or a failed AWS call, with one line on stderr.

mod cli;
mod context;
mod dispatchers;
mod format;
mod message_trail;
mod messages;
mod redeliver;
mod rota;
mod store;
mod timers;
mod token;
mod trail;
mod webhook;
mod who;

use std::panic::AssertUnwindSafe;
use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

use crate::cli::{Cli, Command};
use crate::context::{CommandResult, Done, Failure, Settings};
use crate::format::one_line;

fn main() -> ExitCode {
    // Nothing may print a backtrace: a bug is one line too, and exit 2.
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        eprintln!("qdn: internal error: {}", one_line(&what));
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(&Failure::aws(format!("cannot start the runtime: {e}"))),
    };
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| runtime.block_on(run(cli))));
    match result {
        Ok(Ok(Done::Ok)) => ExitCode::SUCCESS,
        Ok(Ok(Done::Problems)) => ExitCode::from(1),
        Ok(Err(failure)) => fail(&failure),
        // The hook has said what happened.
        Err(_) => ExitCode::from(2),
    }
}

async fn run(cli: Cli) -> CommandResult {
    let settings = Settings::resolve(&cli.global)?;
    match cli.command {
        Command::Who => who::run(&settings).await,
        Command::Rota { command } => rota::run(&settings, command).await,
        Command::Dispatchers { command } => dispatchers::run(&settings, command).await,
        Command::Token(args) => token::run(&settings, args).await,
        Command::Trail(args) => trail::run(&settings, args).await,
        Command::Messages(args) => messages::run(&settings, args).await,
        Command::Redeliver(args) => redeliver::run(&settings, &cli.global, args).await,
        Command::Timers { command } => timers::run(&settings, command).await,
        Command::Webhook(args) => webhook::run(&settings, args).await,
    }
}

fn fail(failure: &Failure) -> ExitCode {
    eprintln!("qdn: {}", one_line(&failure.message));
    ExitCode::from(failure.status)
}

/// Help and version go to stdout (exit 0); a usage error is one line on stderr
/// (clap's message, its tips, and where to find help) and exit 2.
fn usage_error(error: clap::Error) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = error.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            eprintln!("qdn: {}", missing_command_line(&args));
            ExitCode::from(2)
        }
        _ => {
            let rendered = error.render().to_string();
            eprintln!("qdn: {}", usage_line(&rendered, &help_command(&args)));
            ExitCode::from(2)
        }
    }
}

/// The deepest subcommand the arguments name, and its path (`qdn dispatchers`).
fn deepest_command(args: &[String]) -> (Vec<String>, clap::Command) {
    use clap::CommandFactory;
    let mut command = Cli::command();
    let mut path = vec!["qdn".to_string()];
    for arg in args {
        // Options, their values and positionals are not subcommands: skip them.
        if let Some(sub) = command.find_subcommand(arg).cloned() {
            path.push(arg.clone());
            command = sub;
        }
    }
    (path, command)
}

/// `qdn dispatchers put --help`: the help of the deepest subcommand the arguments
/// name.
fn help_command(args: &[String]) -> String {
    let (path, _) = deepest_command(args);
    format!("{} --help", path.join(" "))
}

/// `qdn dispatchers` alone: which commands it takes, on one line.
fn missing_command_line(args: &[String]) -> String {
    let (path, command) = deepest_command(args);
    let names: Vec<&str> = command
        .get_subcommands()
        .map(|c| c.get_name())
        .filter(|name| *name != "help")
        .collect();
    let path = path.join(" ");
    format!(
        "`{path}` needs a command: {} (see `{path} --help`)",
        names.join(", ")
    )
}

/// clap's rendered error as one line: the message and tips before `Usage:`, then a
/// pointer to `help`.
fn usage_line(rendered: &str, help: &str) -> String {
    let mut line = String::new();
    for raw in rendered.lines() {
        let text = raw.trim();
        if text.starts_with("Usage:") || text.starts_with("For more information") {
            break;
        }
        if text.is_empty() {
            continue;
        }
        let text = text.strip_prefix("error: ").unwrap_or(text);
        if !line.is_empty() {
            // Indented lines continue a list (missing arguments); tips are their own.
            let continues = raw.starts_with(' ') && !text.starts_with("tip:");
            line.push_str(if line.ends_with(':') || text.starts_with('[') {
                " "
            } else if continues {
                ", "
            } else {
                "; "
            });
        }
        line.push_str(text);
    }
    format!("{} (see `{help}`)", one_line(&line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_become_one_line() {
        let rendered = "error: unrecognized subcommand 'lst'\n\n  tip: a similar subcommand exists: 'list'\n\nUsage: qdn dispatchers [OPTIONS] <COMMAND>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            usage_line(rendered, "qdn dispatchers --help"),
            "unrecognized subcommand 'lst'; tip: a similar subcommand exists: 'list' (see `qdn dispatchers --help`)"
        );
        let rendered = "error: the following required arguments were not provided:\n  --url <URL>\n  --from <N>\n\nUsage: qdn webhook --url <URL> --from <N> --body <TEXT>\n";
        assert_eq!(
            usage_line(rendered, "qdn webhook --help"),
            "the following required arguments were not provided: --url <URL>, --from <N> (see `qdn webhook --help`)"
        );
    }

    #[test]
    fn a_missing_command_is_one_line() {
        let args = vec!["--json".to_string(), "dispatchers".to_string()];
        assert_eq!(
            missing_command_line(&args),
            "`qdn dispatchers` needs a command: list, show, put, check (see `qdn dispatchers --help`)"
        );
        assert_eq!(
            missing_command_line(&[]),
            "`qdn` needs a command: who, rota, dispatchers, token, trail, messages, redeliver, timers, webhook (see `qdn --help`)"
        );
    }

    #[test]
    fn help_names_the_deepest_subcommand() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(help_command(&args(&[])), "qdn --help");
        assert_eq!(
            help_command(&args(&[
                "--json",
                "dispatchers",
                "put",
                "x",
                "--on-duty",
                "maybe"
            ])),
            "qdn dispatchers put --help"
        );
        assert_eq!(
            help_command(&args(&["dispatchers", "frobnicate"])),
            "qdn dispatchers --help"
        );
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
