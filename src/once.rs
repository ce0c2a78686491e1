//! `watchdog once`: one collection, shown to a person or a script.
//!
//! Owns the report of one pass (its JSON shape is a contract: `collectors` and `signals` with
//! the field names below), its readable table, and the exit code of `once --check`. It never
//! reads or writes alert state and sends nothing.

use std::fmt::Write as _;
use std::process::ExitCode;

use serde::Serialize;
use watchdog_collectors::Observation;

use crate::collect::{self, Outcome};
use crate::config::Config;
use crate::signals::{self, Facts, Signal};

/// `once --check`: some signal is active.
pub const EXIT_ACTIVE: u8 = 1;
/// `once --check`: some enabled collector could not look.
pub const EXIT_COLLECTOR_FAILED: u8 = 3;

/// How one collector did, as `once --json` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CollectorReport {
    pub name: &'static str,
    pub enabled: bool,
    /// Whether it looked successfully this time (false when disabled or failed).
    pub ok: bool,
    /// Entities read: matching processes for `proc`.
    pub observed: u64,
    /// Entities that disappeared between listing and reading.
    pub vanished: u64,
    /// Entities that are there but could not be read; their alerts are held.
    pub unreadable: u64,
    pub error: Option<String>,
}

/// The output of `watchdog once --json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub collectors: Vec<CollectorReport>,
    /// Every signal, active or not: by kind, then active first, then entity id.
    pub signals: Vec<Signal>,
}

impl Report {
    /// Builds the report of one pass over every known collector.
    pub fn from_outcomes(outcomes: &[Outcome], config: &Config) -> Self {
        let mut collectors = Vec::new();
        let mut signals = Vec::new();
        for outcome in outcomes {
            let mut report = CollectorReport {
                name: outcome.name,
                enabled: outcome.result.is_some(),
                ok: false,
                observed: 0,
                vanished: 0,
                unreadable: 0,
                error: None,
            };
            match &outcome.result {
                None => {}
                Some(Err(error)) => report.error = Some(error.to_string()),
                Some(Ok(observation)) => {
                    report.ok = true;
                    match observation {
                        Observation::Proc(scan) => {
                            report.observed = scan.processes.len() as u64;
                            report.vanished = scan.vanished;
                            report.unreadable = scan.unreadable.len() as u64;
                        }
                    }
                    signals.extend(collect::signals_of(observation, config));
                }
            }
            collectors.push(report);
        }
        signals::sort(&mut signals);
        Self {
            collectors,
            signals,
        }
    }

    /// The exit status of `once --check`: a known-stuck host (1) says more than a partly blind
    /// one (3), so active signals win over a failed collector.
    pub fn check_status(&self) -> u8 {
        if self.signals.iter().any(|s| s.active) {
            EXIT_ACTIVE
        } else if self.collectors.iter().any(|c| c.enabled && !c.ok) {
            EXIT_COLLECTOR_FAILED
        } else {
            0
        }
    }

    pub fn to_json(&self) -> String {
        // Serializing plain structs with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// A table for a terminal: collectors first, then signals, active ones first.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let mut rows = vec![row(&[
            "COLLECTOR",
            "STATUS",
            "OBSERVED",
            "VANISHED",
            "UNREADABLE",
        ])];
        for c in &self.collectors {
            let status = match (c.enabled, c.ok) {
                (false, _) => "disabled",
                (true, false) => "FAILED",
                (true, true) => "ok",
            };
            let counts = [c.observed, c.vanished, c.unreadable].map(|n| n.to_string());
            rows.push(row(&[c.name, status, &counts[0], &counts[1], &counts[2]]));
        }
        out.push_str(&render(&rows));
        for c in &self.collectors {
            if let Some(error) = &c.error {
                let _ = writeln!(out, "{} failed: {error}", c.name);
            }
        }
        if self.collectors.iter().all(|c| !c.enabled) {
            out.push_str("\nNo collector is enabled: set WATCHDOG_PROC_ENABLED=true.\n");
            return out;
        }
        out.push('\n');
        if self.signals.is_empty() {
            out.push_str("No matching processes.\n");
            return out;
        }
        let mut rows = vec![row(&[
            "ACTIVE", "ENTITY", "AGE", "PID", "PGID", "ORPHANED", "PARENT", "CPU%", "RSS",
            "MEMBERS", "CMDLINE",
        ])];
        for signal in &self.signals {
            let Facts::Proc(f) = &signal.facts;
            let members = f.members.as_ref().map_or(1, Vec::len).to_string();
            rows.push(row(&[
                if signal.active { "yes" } else { "no" },
                &signal.entity,
                &human_age(f.age_s),
                &f.pid.to_string(),
                &f.pgid.to_string(),
                if f.orphaned { "yes" } else { "no" },
                f.parent.as_deref().unwrap_or("?"),
                &format!("{:.1}", f.group_cpu_pct.unwrap_or(f.cpu_pct)),
                &human_bytes(f.group_rss_bytes.unwrap_or(f.rss_bytes)),
                &members,
                &watchdog_collectors::mask::cut(f.cmdline.clone(), 80),
            ]));
        }
        out.push_str(&render(&rows));
        let active = self.signals.iter().filter(|s| s.active).count();
        let _ = writeln!(out, "\n{active} active of {} signals.", self.signals.len());
        out
    }
}

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

/// Left-aligned columns two spaces apart; the last column is not padded.
fn render(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                line.push_str(cell);
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `2h05m`, `4d03h`, `59s`: an age a person reads at a glance.
pub fn human_age(seconds: u64) -> String {
    let (d, h, m, s) = (
        seconds / 86400,
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m{s:02}s"),
        (0, _, _) => format!("{h}h{m:02}m"),
        _ => format!("{d}d{h:02}h"),
    }
}

/// Binary units with one decimal: `8.0MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}

/// Runs `watchdog once`.
pub fn main(config: &Config, json: bool, check: bool) -> ExitCode {
    let collectors = match collect::build(config) {
        Ok(collectors) => collectors,
        Err(error) => {
            eprintln!("watchdog: {error}");
            return ExitCode::from(crate::EXIT_BAD_CONFIG);
        }
    };
    if collectors.is_empty() {
        tracing::warn!("no collector is enabled; set WATCHDOG_PROC_ENABLED=true");
    }
    let report = Report::from_outcomes(&collect::collect_all(&collectors), config);
    for c in report.collectors.iter().filter(|c| c.error.is_some()) {
        tracing::error!(
            collector = c.name,
            error = c.error.as_deref(),
            "collection failed"
        );
    }
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_table());
    }
    if check {
        ExitCode::from(report.check_status())
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_sizes_read_at_a_glance() {
        let ages = [
            (59, "59s"),
            (60, "1m00s"),
            (7200, "2h00m"),
            (7500, "2h05m"),
            (90000, "1d01h"),
        ];
        for (seconds, want) in ages {
            assert_eq!(human_age(seconds), want, "{seconds}");
        }
        let sizes = [(512, "512B"), (8 << 20, "8.0MiB"), (1536, "1.5KiB")];
        for (bytes, want) in sizes {
            assert_eq!(human_bytes(bytes), want, "{bytes}");
        }
    }

    fn report(active: bool, failed: bool) -> Report {
        let collector = CollectorReport {
            name: "proc",
            enabled: true,
            ok: !failed,
            observed: 0,
            vanished: 0,
            unreadable: 0,
            error: failed.then(|| "x".to_string()),
        };
        let signal: Signal = serde_json::from_value(serde_json::json!({
            "kind": "proc_blocking", "entity": "proc:7:1", "active": active,
            "facts": {"pid": 7, "ppid": 1, "pgid": 7, "session": 7, "state": "S", "comm": "p",
                      "age_s": 1, "cmdline": "p", "orphaned": false, "parent": null,
                      "cpu_pct": 0.0, "rss_bytes": 0}
        }))
        .unwrap();
        Report {
            collectors: vec![collector],
            signals: vec![signal],
        }
    }

    #[test]
    fn check_status_puts_a_known_stuck_host_before_a_blind_one() {
        let cases = [
            ((false, false), 0),
            ((true, false), EXIT_ACTIVE),
            ((false, true), EXIT_COLLECTOR_FAILED),
            ((true, true), EXIT_ACTIVE),
        ];
        for ((active, failed), want) in cases {
            assert_eq!(
                report(active, failed).check_status(),
                want,
                "active={active} failed={failed}"
            );
        }
    }
}
