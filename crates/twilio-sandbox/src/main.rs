//! `twilio-sandbox [--port N] [--host IP] [--account-sid AC…] [--auth-token T]`
//!
//! Runs the sandbox until SIGTERM or ctrl-c. Flags override the environment
//! (`TWILIO_SANDBOX_PORT`, `TWILIO_SANDBOX_HOST`, `TWILIO_SANDBOX_ACCOUNT_SID`,
//! `TWILIO_SANDBOX_AUTH_TOKEN`).

use std::io::{IsTerminal, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use twilio_sandbox::{DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, Sandbox, SandboxConfig};

const DEFAULT_PORT: u16 = 4599;
const USAGE: &str =
    "usage: twilio-sandbox [--port N] [--host IP] [--account-sid AC...] [--auth-token TOKEN]";

struct Options {
    port: u16,
    host: IpAddr,
    account_sid: String,
    auth_token: String,
}

fn parse_options() -> Result<Options, String> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mut port = env("TWILIO_SANDBOX_PORT");
    let mut host = env("TWILIO_SANDBOX_HOST");
    let mut account_sid = env("TWILIO_SANDBOX_ACCOUNT_SID");
    let mut auth_token = env("TWILIO_SANDBOX_AUTH_TOKEN");

    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (arg.clone(), None),
        };
        let slot = match name.as_str() {
            "--port" => &mut port,
            "--host" => &mut host,
            "--account-sid" => &mut account_sid,
            "--auth-token" => &mut auth_token,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => return Err(format!("unknown argument {arg:?}")),
        };
        let value = match inline {
            Some(value) => value,
            None => args.next().ok_or_else(|| format!("{name} needs a value"))?,
        };
        *slot = Some(value);
    }

    Ok(Options {
        port: match port {
            Some(p) => p.parse().map_err(|_| format!("invalid port {p:?}"))?,
            None => DEFAULT_PORT,
        },
        host: match host {
            Some(h) => h.parse().map_err(|_| format!("invalid host IP {h:?}"))?,
            None => IpAddr::V4(Ipv4Addr::LOCALHOST),
        },
        account_sid: account_sid.unwrap_or_else(|| DEFAULT_ACCOUNT_SID.to_owned()),
        auth_token: auth_token.unwrap_or_else(|| DEFAULT_AUTH_TOKEN.to_owned()),
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();

    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("twilio-sandbox: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let config = SandboxConfig::single(options.account_sid.clone(), options.auth_token);
    let addr = SocketAddr::new(options.host, options.port);
    let sandbox = match Sandbox::start_on(config, addr).await {
        Ok(sandbox) => sandbox,
        Err(e) => {
            eprintln!("twilio-sandbox: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };

    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "twilio-sandbox listening on {}", sandbox.base_url());
    let _ = stdout.flush();
    drop(stdout);
    tracing::info!(account_sid = %options.account_sid, %addr, "twilio-sandbox started");

    wait_for_signal().await;
    tracing::info!("twilio-sandbox shutting down");
    match sandbox.shutdown().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("twilio-sandbox: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on ctrl-c, or SIGTERM on Unix.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
