//! The `watchdog` binary: parse the command line, read the config, set up logging, dispatch.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use watchdog::config::{Config, Loaded, LogFormat, Settings};
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
    /// Watch this host: collect every interval, alert, remind, recover. Stops on SIGTERM/SIGINT.
    Run,
    /// Run one collection with the current config and print the signals.
    Once {
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// Exit 1 when any signal is active, 3 when a collector failed, 0 otherwise.
        #[arg(long)]
        check: bool,
    },
    /// Validate the configuration and print the effective settings and channels, secrets masked.
    CheckConfig,
    /// Send one clearly-marked test event to every channel and report each result.
    TestAlert,
    /// Ask the running daemon whether it is live (or, with --ready, ready); exit 0 or 1.
    Healthcheck {
        /// Ask /readyz (every collector sees) instead of /healthz (the loop runs).
        #[arg(long)]
        ready: bool,
    },
    /// Show what watchdog decided and where each event went, newest first.
    History {
        /// How far back: `30m`, `24h`, `7d`, or seconds.
        #[arg(long, default_value = watchdog::history::DEFAULT_SINCE)]
        since: String,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run a command so that nothing it starts outlives it: `guard [OPTIONS] -- CMD [ARGS...]`.
    Guard(watchdog::guard::GuardArgs),
}

fn main() -> ExitCode {
    // guard goes first: no WATCHDOG_* variable can break it, and its usage errors are its own.
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if args.first().is_some_and(|word| word == "guard") {
        return watchdog::guard::main(&args);
    }
    let cli = Cli::parse();
    let loaded = match load_config() {
        Ok(loaded) => loaded,
        Err(message) => {
            eprintln!("watchdog: {message}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    let (config, unknown) = (&loaded.config, &loaded.unknown);
    init_logging(config);
    for var in unknown {
        tracing::warn!("{var}");
    }
    // history reads only the state dir: a channel's broken setting must not hide it.
    let command = match cli.command {
        Command::History { since, json } => {
            return watchdog::history::main(&config.state_dir, &since, json)
        }
        other => other,
    };
    let settings = match Settings::from_loaded(&loaded) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("watchdog: {error}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    match command {
        Command::Run => run(settings),
        Command::Once { json, check } => watchdog::once::main(&settings, json, check),
        Command::CheckConfig => ExitCode::from(watchdog::check_config::main(
            config,
            &settings,
            unknown.len(),
        )),
        Command::TestAlert => match runtime() {
            Ok(runtime) => ExitCode::from(runtime.block_on(watchdog::test_alert::main(&settings))),
            Err(code) => code,
        },
        Command::Healthcheck { ready } => match runtime() {
            Ok(runtime) => ExitCode::from(runtime.block_on(watchdog::endpoint::healthcheck(
                settings.listen,
                &settings.tls,
                ready,
            ))),
            Err(code) => code,
        },
        Command::History { since, json } => {
            watchdog::history::main(&config.state_dir, &since, json)
        }
        // Reached only if guard was not spotted above; it still reads no config.
        Command::Guard(args) => watchdog::guard::run(args),
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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}

/// How long a blocked collector thread may hold the exit: not at all, in effect.
const RUNTIME_SHUTDOWN: Duration = Duration::from_millis(200);

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    runtime_keeping(None)
}

/// The runtime, with idle blocking threads kept `keep_alive` (tokio's default: 10 s).
fn runtime_keeping(keep_alive: Option<Duration>) -> Result<tokio::runtime::Runtime, ExitCode> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_all();
    if let Some(keep_alive) = keep_alive {
        builder.thread_keep_alive(keep_alive);
    }
    builder.build().map_err(|e| {
        eprintln!("watchdog: cannot start the async runtime: {e}");
        ExitCode::FAILURE
    })
}

fn run(settings: Settings) -> ExitCode {
    watchdog::runner::memory::one_arena();
    // Each tick runs its collections and its commit on blocking threads. Kept from one tick to
    // the next, they are made once: a thread made each tick would be a task the kernel counts,
    // and the proc collector lists /proc again whenever that count moves.
    let keep_alive = settings.runner.interval.saturating_mul(2);
    let runtime = match runtime_keeping(Some(keep_alive)) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let result = runtime.block_on(async {
        let shutdown = shutdown_signal();
        watchdog::runner::run(settings, shutdown).await
    });
    // A collector thread stuck in a read of a hung process must not hold the exit.
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            eprintln!("watchdog: {error}");
            ExitCode::from(EXIT_BAD_CONFIG)
        }
    }
}

/// Completes on the first SIGTERM or SIGINT. The handlers are installed when this is called,
/// not when the future is first polled, so a signal sent as soon as `run` says it is running
/// is never missed (nor does it kill the process by the default action).
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let handlers = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    async move {
        let (Ok(mut term), Ok(mut int)) = handlers else {
            // Without handlers the default action (exit) applies; wait forever here.
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM"),
            _ = int.recv() => tracing::info!("SIGINT"),
        }
    }
}
