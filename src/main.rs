//! The `watchdog` binary: parse the command line, read the config, set up logging, dispatch.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use watchdog::config::{Config, Loaded};
use watchdog::EXIT_BAD_CONFIG;

/// Notices stuck work (processes, jobs) on this host and says so.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one collection with the current config and print the signals.
    Once {
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// Exit 1 when any signal is active, 3 when a collector failed, 0 otherwise.
        #[arg(long)]
        check: bool,
    },
    /// Validate the configuration and print the effective settings, secrets masked.
    CheckConfig,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Loaded { config, unknown } = match load_config() {
        Ok(loaded) => loaded,
        Err(message) => {
            eprintln!("watchdog: {message}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    init_logging(&config);
    for var in &unknown {
        tracing::warn!("{var}");
    }
    match cli.command {
        Command::Once { json, check } => watchdog::once::main(&config, json, check),
        Command::CheckConfig => check_config(&config, unknown.len()),
    }
}

/// Reads `WATCHDOG_*` variables; a value that is not UTF-8 is an error naming its variable.
fn load_config() -> Result<Loaded, String> {
    let mut vars = Vec::new();
    for (name, value) in std::env::vars_os() {
        let Some(name) = name
            .to_str()
            .filter(|n| n.starts_with(watchdog::config::PREFIX))
        else {
            continue;
        };
        let value = value
            .into_string()
            .map_err(|_| format!("{name}: expected UTF-8 text"))?;
        vars.push((name.to_string(), value));
    }
    Config::from_vars(vars).map_err(|e| e.to_string())
}

fn init_logging(config: &Config) {
    // The filter was validated with the config; fall back to `info` rather than fail here.
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn check_config(config: &Config, unknown: usize) -> ExitCode {
    if config.proc_enabled {
        if let Some(warning) = watchdog::hostns::warning(&config.proc_root) {
            tracing::warn!("{warning}");
        }
    }
    for line in config.display_lines() {
        println!("{line}");
    }
    if let Err(error) = watchdog::collect::build(config) {
        eprintln!("watchdog: {error}");
        return ExitCode::from(EXIT_BAD_CONFIG);
    }
    if unknown > 0 {
        eprintln!("watchdog: {unknown} unknown WATCHDOG_* variable(s); see the warnings above");
        return ExitCode::from(EXIT_BAD_CONFIG);
    }
    ExitCode::SUCCESS
}
