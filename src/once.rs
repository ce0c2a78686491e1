//! `watchdog once`: one collection, shown to a person or a script.
//!
//! Runs every enabled collector once, on the runner's [`Scheduler`] and so within
//! `WATCHDOG_COLLECT_TIMEOUT_S`, and prints the [`Report`] as a table or JSON, with what `run`
//! would send on its first tick from an empty state. Exits by `--check`'s table. A collector
//! stuck in a read is reported failed at the deadline and its thread is left behind: the
//! process exits without joining it. It never reads or writes alert state and sends nothing.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use watchdog_collectors::pressure::Sampling;
use watchdog_collectors::{CollectRequest, Collector};

use crate::collect::{self, Outcome, Past};
use crate::config::Settings;
use crate::engine::{self, AlertState, CollectorTick};
use crate::event::Event;
use crate::model::{now_unix, Unix};
use crate::report::{Report, WouldSend};
use crate::runner::{self, Scheduler};

pub use crate::report::{EXIT_ACTIVE, EXIT_COLLECTOR_FAILED};

/// How far apart `once` takes the pressure collector's two per-process samples, while a
/// resource is at or above its threshold: long enough for a busy process to show, short enough
/// for a merge gate to wait.
pub const TOP_SAMPLE_WAIT: Duration = Duration::from_secs(1);

/// Runs `watchdog once`.
pub fn main(settings: &Settings, json: bool, check: bool) -> ExitCode {
    let collectors = match collect::build(settings, Sampling::Wait(TOP_SAMPLE_WAIT)) {
        Ok(collectors) => collectors,
        Err(error) => {
            eprintln!("watchdog: {error}");
            return ExitCode::from(crate::EXIT_BAD_CONFIG);
        }
    };
    if collectors.is_empty() {
        tracing::warn!(
            "no collector is enabled; set WATCHDOG_PROC_ENABLED, WATCHDOG_JOBS_ENABLED or \
             WATCHDOG_PRESSURE_ENABLED to true"
        );
    }
    let outcomes = match collect_within(collectors, settings.runner.collect_timeout) {
        Ok(outcomes) => outcomes,
        Err(error) => {
            eprintln!("watchdog: cannot start the collector threads: {error}");
            return ExitCode::FAILURE;
        }
    };
    let report = pass(settings, &outcomes, now_unix());
    for c in report.collectors.iter() {
        if let Some(error) = &c.error {
            tracing::error!(collector = c.name, error = %error, "collection failed");
        }
    }
    if json {
        print_out(&(report.to_json() + "\n"));
    } else {
        print_out(&report.to_table());
    }
    if check {
        ExitCode::from(report.check_status())
    } else {
        ExitCode::SUCCESS
    }
}

/// Runs every collector once, each on a blocking thread and all within `limit`, and reports
/// every known collector. A collector still running at the deadline keeps its thread, which
/// the runtime leaves behind rather than wait for.
///
/// # Errors
/// The runtime that runs the threads could not be started.
fn collect_within(
    collectors: Vec<Arc<dyn Collector>>,
    limit: Duration,
) -> std::io::Result<Vec<Outcome>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let mut scheduler = Scheduler::new(collectors, limit);
    // A first tick: no leftover watch is open, so nothing asks for every process.
    let outcomes = runtime.block_on(scheduler.collect(&CollectRequest::default()));
    runtime.shutdown_background();
    Ok(runner::all_known(&outcomes))
}

/// Writes to stdout; a reader that went away (`once | head`) only cuts the output short.
fn print_out(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    if let Err(error) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if error.kind() != std::io::ErrorKind::BrokenPipe {
            tracing::warn!("cannot write the report: {error}");
        }
    }
}

/// The report of one pass, with the events of `run`'s first tick from an empty state, decided
/// at `now` for this host. Signals are derived once and serve both.
pub fn pass(settings: &Settings, outcomes: &[Outcome], now: Unix) -> Report {
    let mut signals = Vec::new();
    let mut ticks: Vec<(&str, CollectorTick)> = Vec::new();
    for outcome in outcomes {
        match &outcome.result {
            None => {}
            Some(Ok(observation)) => {
                let derived = collect::derive(observation, settings, Past::None, &signals, now);
                signals.extend(derived.signals.iter().cloned());
                ticks.push((outcome.name, derived.into_tick()));
            }
            Some(Err(error)) => ticks.push((
                outcome.name,
                CollectorTick::Failed {
                    error: error.clone(),
                },
            )),
        }
    }
    let mut report = Report::new(outcomes, signals);
    report.would_send = engine::decide(AlertState::default(), ticks, now, &settings.rules)
        .alerts
        .iter()
        .map(|alert| {
            let event = Event::render(alert, &settings.host, settings.lang);
            WouldSend {
                event: event.event,
                kind: event.kind,
                entity: event.entity,
                summary: event.summary,
            }
        })
        .collect();
    report
}
