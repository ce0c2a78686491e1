//! The tick loop on paused tokio time: a collector that hangs times out, is never started twice,
//! makes watchdog say it cannot see, and does not hold a shutdown.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use watchdog::config::{Config, Settings};
use watchdog::endpoint::View;
use watchdog::model::Kind;
use watchdog::runner::{serve, Clock, Daemon};
use watchdog_collectors::proc::ProcScan;
use watchdog_collectors::{CollectError, CollectRequest, Collector, Observation};

/// A collector named `proc` whose every run blocks until the test lets it go.
struct Hanging {
    calls: AtomicUsize,
    release: Mutex<mpsc::Receiver<()>>,
}

impl Hanging {
    fn new() -> (Arc<Self>, mpsc::Sender<()>) {
        let (tx, rx) = mpsc::channel();
        (
            Arc::new(Self {
                calls: AtomicUsize::new(0),
                release: Mutex::new(rx),
            }),
            tx,
        )
    }
}

impl Collector for Hanging {
    fn name(&self) -> &'static str {
        "proc"
    }

    fn collect(&self, _request: &CollectRequest) -> Result<Observation, CollectError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let _ = self.release.lock().unwrap().recv();
        Ok(Observation::Proc(ProcScan::default()))
    }
}

fn config(state: &std::path::Path) -> Config {
    Config {
        interval_s: 30,
        collect_timeout_s: 10,
        collector_fail_ticks: 3,
        state_dir: state.to_path_buf(),
        host: "loop-host".into(),
        listen: "off".into(),
        ..Config::default()
    }
}

fn daemon(state: &std::path::Path, collector: Arc<Hanging>) -> Daemon {
    Daemon::with_collectors(
        Settings::from_config(&config(state)).unwrap(),
        Clock::starting_at(1_800_000_000),
        vec![collector],
    )
    .unwrap()
}

/// Moves paused time forward one second per step. tokio does not auto-advance a paused clock
/// while a blocking task runs (here: never, the collector hangs), so the test drives it. It
/// holds still while the daemon commits to its store, which takes real time, not virtual.
fn drive_clock(view: Arc<View>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if view.committing() {
                tokio::task::yield_now().await;
            } else {
                tokio::time::advance(Duration::from_secs(1)).await;
            }
        }
    })
}

fn error_of(result: &Result<(), String>) -> &str {
    result.as_ref().expect_err("expected a failed collection")
}

#[tokio::test(start_paused = true)]
async fn a_hanging_collector_times_out_and_the_next_tick_waits_on_the_same_run() {
    let dir = tempfile::tempdir().unwrap();
    let (hanging, release) = Hanging::new();
    let mut daemon = daemon(dir.path(), Arc::clone(&hanging));
    let clock = drive_clock(daemon.view());

    let first = daemon.tick().await;
    assert_eq!(first.collectors[0].0, "proc");
    let error = error_of(&first.collectors[0].1);
    assert!(
        error.contains("timed out after 10 s: this collection has been running for 10 s"),
        "{error}"
    );

    let second = daemon.tick().await;
    let error = error_of(&second.collectors[0].1);
    assert!(
        error.contains("running for 20 s"),
        "the same run, still going: {error}"
    );
    assert_eq!(
        hanging.calls.load(Ordering::SeqCst),
        1,
        "never started twice"
    );

    // Let it finish, on real time from here: the driven clock would race its thread.
    clock.abort();
    let _ = clock.await;
    release.send(()).unwrap();
    tokio::time::resume();
    let third = daemon.tick().await;
    assert!(third.collectors[0].1.is_ok(), "{:?}", third.collectors);
    assert_eq!(
        hanging.calls.load(Ordering::SeqCst),
        1,
        "its result is this tick's"
    );
    assert_eq!(daemon.state().fail_streak("proc"), 0);
}

#[tokio::test(start_paused = true)]
async fn ticks_every_interval_and_a_blind_collector_alerts_after_the_fail_ticks() {
    let dir = tempfile::tempdir().unwrap();
    let (hanging, release) = Hanging::new();
    let daemon = daemon(dir.path(), Arc::clone(&hanging));

    let clock = drive_clock(daemon.view());
    // Ticks at 0, 30, 60 and 90 s; each waits its 10 s limit.
    serve(daemon, tokio::time::sleep(Duration::from_secs(105))).await;
    clock.abort();

    assert_eq!(
        hanging.calls.load(Ordering::SeqCst),
        1,
        "one stuck thread, not four"
    );
    let state = common::db::state(dir.path());
    assert_eq!(state["fail_streaks"]["proc"], 4, "{state}");
    let entity = &state["entities"][0];
    assert_eq!(entity["kind"], Kind::CollectorFailing.as_str());
    assert_eq!(entity["entity"], "collector:proc");
    assert_eq!(
        entity["since"],
        1_800_000_000 + 60 + 10,
        "fired by the third tick"
    );
    drop(release);
}

#[tokio::test(start_paused = true)]
async fn shutdown_abandons_an_in_flight_collection() {
    let dir = tempfile::tempdir().unwrap();
    let (hanging, release) = Hanging::new();
    let daemon = daemon(dir.path(), Arc::clone(&hanging));
    let started = tokio::time::Instant::now();
    let clock = drive_clock(daemon.view());

    serve(daemon, tokio::time::sleep(Duration::from_secs(3))).await;
    clock.abort();

    assert_eq!(
        started.elapsed(),
        Duration::from_secs(3),
        "it did not wait out the 10 s limit"
    );
    let state = common::db::state(dir.path());
    assert_eq!(
        state["fail_streaks"],
        serde_json::json!({}),
        "the abandoned tick changed nothing"
    );
    drop(release);
}
