//! No value that passes validation may panic anywhere, and none outside its range gets in.
//!
//! A property test over the declared ranges: for every numeric setting, its two ends and a
//! spread of values in between are loaded, turned into settings, and run through a real tick
//! of the daemon over a fixture tree, the liveness and readiness checks, and `once`'s pass.
//! Out of range, the binary exits 2 naming the variable.

use std::path::Path;
use std::process::Command;

use watchdog::config::{Check, Config, Settings, VARS};
use watchdog::runner::{Clock, Daemon};
use watchdog_collectors::pressure::Sampling;

/// Deterministic spread of values in `min..=max`: the ends, their neighbours, and a few
/// hundred from a fixed-seed generator.
fn values(min: u64, max: u64) -> Vec<u64> {
    let mut out = vec![
        min,
        max,
        min.saturating_add(1).min(max),
        max.saturating_sub(1).max(min),
    ];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..12 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push(min + x % (max - min + 1));
    }
    out
}

/// Deterministic spread of decimals in `min..=max`, at the precision people type: the ends and
/// a few values in between, to two decimals.
fn decimals(min: f64, max: f64) -> Vec<String> {
    let mut out = vec![min.to_string(), max.to_string()];
    for step in 1..8 {
        let value = min + (max - min) * f64::from(step) / 8.0;
        out.push(format!("{value:.2}"));
    }
    out
}

fn fixture() -> String {
    fixture_of("orphaned_pytest")
}

fn fixture_of(scenario: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/proc")
        .join(scenario)
        .display()
        .to_string()
}

#[test]
fn every_value_in_range_survives_a_tick_the_probes_and_once() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut checked = 0;
    for var in VARS {
        // Decimals (the pressure thresholds) run with the pressure collector on, over a tree
        // with PSI files and a stuck pytest.
        let (values, root, pressure) = match var.check {
            Check::Whole { min, max, .. } => (
                values(min, max).iter().map(u64::to_string).collect(),
                fixture(),
                "false",
            ),
            Check::Decimal { min, max, .. } => {
                (decimals(min, max), fixture_of("psi_cpu_starved"), "true")
            }
            _ => continue,
        };
        for value in values {
            let state = tempfile::tempdir().unwrap();
            let vars = [
                (var.name(), value.clone()),
                ("WATCHDOG_PROC_ENABLED".into(), "true".into()),
                ("WATCHDOG_PRESSURE_ENABLED".into(), pressure.into()),
                ("WATCHDOG_PROC_ROOT".into(), root.clone()),
                ("WATCHDOG_LISTEN".into(), "off".into()),
                (
                    "WATCHDOG_STATE_DIR".into(),
                    state.path().display().to_string(),
                ),
            ];
            let case = format!("{}={value}", var.name());
            let config = Config::from_vars(vars).expect(&case).config;
            let settings = Settings::from_config(&config).expect(&case);
            // As once runs them: on the runner's scheduler, within the collect timeout.
            let mut scheduler = watchdog::runner::Scheduler::new(
                watchdog::collect::build(&settings, Sampling::Interval).expect(&case),
                settings.runner.collect_timeout,
            );
            let outcomes = runtime.block_on(scheduler.collect(&Default::default()));
            let report = watchdog::once::pass(
                &settings,
                &watchdog::runner::all_known(&outcomes),
                1_800_000_000,
            );
            assert!(
                report.collectors.iter().all(|c| c.ok || !c.enabled),
                "{case}: {report:?}"
            );
            runtime.block_on(async {
                let mut daemon =
                    Daemon::new(settings, Clock::starting_at(1_800_000_000)).expect(&case);
                let tick = daemon.tick().await;
                assert!(
                    tick.collectors.iter().all(|(_, r)| r.is_ok()),
                    "{case}: {tick:?}"
                );
                let view = daemon.view();
                assert!(view.live().is_ok(), "{case}");
                let _ = view.ready();
                let _ = view.status();
            });
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} cases ran");
}

#[test]
fn the_binary_exits_2_naming_every_number_outside_its_range() {
    let mut cases: Vec<(String, String)> = Vec::new();
    for var in VARS {
        if let Check::Whole { min, max, .. } = var.check {
            cases.push((var.name(), (max as u128 + 1).to_string()));
            cases.push((var.name(), u64::MAX.to_string()));
            if min > 0 {
                cases.push((var.name(), (min - 1).to_string()));
            }
        }
    }
    for var in VARS {
        if let Check::Decimal { min, max, .. } = var.check {
            cases.push((var.name(), format!("{:.1}", max + 0.1)));
            cases.push((var.name(), format!("{:.2}", min - 0.01)));
            cases.push((var.name(), "1e1".into()));
            cases.push((var.name(), "NaN".into()));
        }
    }
    // The two values that made `run` and `/healthz` panic before ranges existed.
    cases.push((
        "WATCHDOG_COLLECT_TIMEOUT_S".into(),
        "9223372036854775807".into(),
    ));
    cases.push(("WATCHDOG_INTERVAL_S".into(), "18446744073709551615".into()));
    for (name, value) in cases {
        let output = Command::new(env!("CARGO_BIN_EXE_watchdog"))
            .arg("check-config")
            .env_clear()
            .env(&name, &value)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}={value}: {stderr}");
        assert!(
            stderr.contains(&format!("watchdog: {name}=")),
            "{name}={value}: {stderr}"
        );
    }
}
