//! The report of one pass over the collectors: what `once` prints, what `/status` serves, and
//! what the runner logs.
//!
//! Owns the report's JSON shape (a contract: `collectors` and `signals` with the field names
//! below), its readable table, and the exit status of `once --check`. It is built from outcomes
//! and signals that were derived once; it reads nothing and decides nothing.

use std::fmt::Write as _;

use serde::Serialize;

use crate::collect::{self, Outcome};
use crate::model::{
    cut, rfc3339, sort_signals, CollectFailure, ContainerFacts, EventKind, Facts, Kind, Lang,
    PressureFacts, Signal,
};
use crate::text;

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
    pub error: Option<CollectFailure>,
}

/// The output of `watchdog once --json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub collectors: Vec<CollectorReport>,
    /// Every signal, active or not: by kind, then active first, then entity id.
    pub signals: Vec<Signal>,
    /// What `watchdog run` would send on its first tick from an empty state.
    pub would_send: Vec<WouldSend>,
}

/// One event `run` would send, as `once` shows it (nothing is sent).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WouldSend {
    pub event: EventKind,
    pub kind: Kind,
    pub entity: String,
    pub summary: String,
}

impl Report {
    /// The report of one pass: every known collector's outcome, in the order of
    /// [`collect::KNOWN`] (`None` results for the ones switched off), and every signal derived
    /// from them.
    pub fn new(outcomes: &[Outcome], mut signals: Vec<Signal>) -> Self {
        let collectors = outcomes
            .iter()
            .map(|outcome| {
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
                    Some(Err(error)) => report.error = Some(error.clone()),
                    Some(Ok(observation)) => {
                        report.ok = true;
                        (report.observed, report.vanished, report.unreadable) =
                            collect::counts(observation);
                    }
                }
                report
            })
            .collect();
        sort_signals(&mut signals);
        Self {
            collectors,
            signals,
            would_send: Vec::new(),
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
            out.push_str("\nNo collector is enabled: set WATCHDOG_PROC_ENABLED=true (or WATCHDOG_JOBS_ENABLED=true, WATCHDOG_PRESSURE_ENABLED=true).\n");
            return out;
        }
        out.push('\n');
        if self.signals.is_empty() {
            out.push_str("No signals: no matching process, no job to look at.\n");
            return out;
        }
        self.proc_table(&mut out);
        self.jobs_table(&mut out);
        self.pressure_table(&mut out);
        let active = self.signals.iter().filter(|s| s.active).count();
        let _ = writeln!(out, "{active} active of {} signals.", self.signals.len());
        if !self.would_send.is_empty() {
            out.push_str("\nOn its first tick, `watchdog run` would send:\n");
            for w in &self.would_send {
                let _ = writeln!(out, "  {:<9} {}", w.event.as_str(), w.summary);
            }
        }
        out
    }

    fn proc_table(&self, out: &mut String) {
        if !self
            .signals
            .iter()
            .any(|s| matches!(s.facts, Facts::Proc(_)))
        {
            return;
        }
        let mut rows = vec![row(&[
            "ACTIVE",
            "ENTITY",
            "AGE",
            "PID",
            "PGID",
            "ORPHANED",
            "PARENT",
            "CPU%",
            "RSS",
            "MEMBERS",
            "CONTAINER",
            "CMDLINE",
        ])];
        for signal in &self.signals {
            let Facts::Proc(f) = &signal.facts else {
                continue;
            };
            let members = f.members.as_ref().map_or(1, Vec::len).to_string();
            rows.push(row(&[
                if signal.active { "yes" } else { "no" },
                &signal.entity,
                &text::duration(f.age_s, Lang::En),
                &f.pid.to_string(),
                &f.pgid.to_string(),
                if f.orphaned { "yes" } else { "no" },
                f.parent.as_deref().unwrap_or("?"),
                &format!("{:.1}", f.group_cpu_pct.unwrap_or(f.cpu_pct)),
                &text::bytes(f.group_rss_bytes.unwrap_or(f.rss_bytes)),
                &members,
                &container_cell(f.container.as_ref()),
                &cut(f.cmdline.clone(), 80),
            ]));
        }
        out.push_str(&render(&rows));
        out.push('\n');
    }

    fn jobs_table(&self, out: &mut String) {
        if !self
            .signals
            .iter()
            .any(|s| matches!(s.facts, Facts::Job(_)))
        {
            return;
        }
        let mut rows = vec![row(&[
            "ACTIVE",
            "KIND",
            "ENTITY",
            "AGE",
            "PID",
            "HOST PID",
            "CONTAINER",
            "WHY",
        ])];
        for signal in &self.signals {
            let Facts::Job(f) = &signal.facts else {
                continue;
            };
            let why: Vec<String> = if signal.kind == Kind::JobLeftover {
                vec![format!("members {:?}", f.members)]
            } else {
                f.reasons.iter().map(|r| format!("{r:?}")).collect()
            };
            let pid = |p: Option<u32>| p.map_or("-".to_string(), |p| p.to_string());
            rows.push(row(&[
                if signal.active { "yes" } else { "no" },
                signal.kind.as_str(),
                &signal.entity,
                &text::duration(f.age_s, Lang::En),
                &pid(f.pid),
                &pid(f.host_pid),
                &container_cell(f.container.as_ref()),
                &why.join(", "),
            ]));
        }
        out.push_str(&render(&rows));
        out.push('\n');
    }
}

impl Report {
    /// Each resource with its figures, then the top consumers of those at or above their
    /// threshold (the same processes for each: they are the host's).
    fn pressure_table(&self, out: &mut String) {
        let pressure: Vec<(&Signal, &PressureFacts)> = self
            .signals
            .iter()
            .filter_map(|s| match &s.facts {
                Facts::Pressure(f) => Some((s, f)),
                _ => None,
            })
            .collect();
        if pressure.is_empty() {
            return;
        }
        let figure = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
        let mut rows = vec![row(&[
            "ACTIVE",
            "ENTITY",
            "SOURCE",
            "AVG10",
            "AVG60",
            "AVG300",
            "THRESHOLD",
            "ABOVE SINCE",
            "TOP",
        ])];
        for (signal, f) in &pressure {
            rows.push(row(&[
                if signal.active { "yes" } else { "no" },
                &signal.entity,
                f.source.as_str(),
                &figure(f.some_avg10),
                &figure(f.some_avg60),
                &figure(f.some_avg300),
                &format!("{}", f.threshold_pct),
                &f.above_since.map_or("-".to_string(), rfc3339),
                f.top_status.as_str(),
            ]));
        }
        out.push_str(&render(&rows));
        out.push('\n');
        let Some((_, with_top)) = pressure.iter().find(|(_, f)| !f.top.is_empty()) else {
            return;
        };
        let mut rows = vec![row(&[
            "TOP PID",
            "COMM",
            "CPU%",
            "ORPHANED",
            "ENTITY",
            "CONTAINER",
            "CMDLINE",
        ])];
        for t in &with_top.top {
            rows.push(row(&[
                &t.pid.to_string(),
                &t.comm,
                &format!("{:.1}", t.cpu_pct),
                if t.orphaned { "yes" } else { "no" },
                t.entity.as_deref().unwrap_or("-"),
                &container_cell(t.container.as_ref()),
                &cut(t.cmdline.clone(), 80),
            ]));
        }
        out.push_str(&render(&rows));
        out.push('\n');
    }
}

/// `docker e70105bb87f6`, `pod 8ae57dcd`, `unit ssh.service`, or `-`.
fn container_cell(container: Option<&ContainerFacts>) -> String {
    let Some(c) = container else {
        return "-".into();
    };
    match (c.short_id(), c.short_pod_uid(), c.unit.as_deref()) {
        (Some(id), Some(pod), _) => format!("{} {id} pod {pod}", c.runtime),
        (Some(id), None, _) => format!("{} {id}", c.runtime),
        (None, Some(pod), _) => format!("pod {pod}"),
        (None, None, Some(unit)) => format!("unit {unit}"),
        (None, None, None) => c.runtime.clone(),
    }
}

/// One table row. Cells are shown visibly escaped: a process that writes escape sequences or a
/// newline into its argv or comm can neither repaint the terminal nor forge a row.
fn row(cells: &[&str]) -> Vec<String> {
    cells
        .iter()
        .map(|c| crate::escape::visible(c).into_owned())
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn report(active: bool, failed: bool) -> Report {
        let collector = CollectorReport {
            name: "proc",
            enabled: true,
            ok: !failed,
            observed: 0,
            vanished: 0,
            unreadable: 0,
            error: failed.then(|| CollectFailure::Panicked("x".into())),
        };
        let signal: Signal = serde_json::from_value(serde_json::json!({
            "kind": "proc_blocking", "entity": "proc:7:1", "active": active,
            "facts": {"pid": 7, "ppid": 1, "pgid": 7, "session": 7, "state": "S", "comm": "p",
                      "age_s": 1, "cmdline": "p", "orphaned": false, "parent": null, "group_leader_alive": true,
                      "cpu_pct": 0.0, "rss_bytes": 0, "adopted": true}
        }))
        .unwrap();
        Report {
            collectors: vec![collector],
            signals: vec![signal],
            would_send: Vec::new(),
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

    #[test]
    fn the_pressure_section_lists_each_resource_then_the_top_consumers() {
        let signal: Signal = serde_json::from_value(serde_json::json!({
            "kind": "host_pressure", "entity": "pressure:cpu", "active": true,
            "facts": {"resource": "cpu", "source": "psi", "some_avg10": 88.1, "some_avg60": 83.4,
                      "some_avg300": 79.02, "full_avg60": null, "threshold_pct": 50.0,
                      "above_since": 1795000000, "top_status": "sampled",
                      "top": [{"pid": 4121, "comm": "pytest", "cmdline": "pytest -n 2",
                               "cpu_pct": 190.0, "orphaned": true, "entity": "proc:4121:1",
                               "stuck_s": 183600,
                               "container": {"runtime": "docker", "id": "e70105bb87f6ea3d",
                                             "pod_uid": null, "unit": null}},
                              {"pid": 4130, "comm": "python3", "cmdline": "python3 bench.py",
                               "cpu_pct": 99.0, "orphaned": false, "entity": null,
                               "container": null}]}
        }))
        .unwrap();
        assert!(matches!(signal.facts, Facts::Pressure(_)));
        let mut report = report(false, false);
        report.signals.push(signal);
        let table = report.to_table();
        let line = |start: &str| {
            table
                .lines()
                .find(|l| l.starts_with(start))
                .unwrap_or_else(|| panic!("no line starting {start:?} in\n{table}"))
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(
            line("yes     pressure:cpu"),
            "yes pressure:cpu psi 88.10 83.40 79.02 50 2026-11-18T11:06:40Z sampled"
        );
        assert_eq!(
            line("4121"),
            "4121 pytest 190.0 yes proc:4121:1 docker e70105bb87f6 pytest -n 2"
        );
        assert_eq!(line("4130"), "4130 python3 99.0 no - - python3 bench.py");
        assert_eq!(
            report.check_status(),
            EXIT_ACTIVE,
            "host_pressure active is exit 1"
        );
    }
}
