//! `watchdog once`: one collection, shown to a person or a script.
//!
//! Owns the report of one pass (its JSON shape is a contract: `collectors` and `signals` with
//! the field names below), its readable table, and the exit code of `once --check`. It also
//! shows what `run` would send on its first tick from an empty state. It never reads or writes
//! alert state and sends nothing.

use std::fmt::Write as _;
use std::process::ExitCode;

use serde::Serialize;

use crate::collect::{self, Outcome};
use crate::config::Config;
use crate::daemon;
use crate::engine::{self, AlertState, CollectorTick, EventKind};
use crate::event::Event;
use crate::signals::jobs::JobsMemory;
use crate::signals::{self, Facts, Kind, Signal};
use crate::text::{self, Lang};

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
    /// Builds the report of one pass over every known collector.
    pub fn from_outcomes<'a>(
        outcomes: impl IntoIterator<Item = &'a Outcome>,
        ctx: &collect::Context<'_>,
    ) -> Self {
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
                Some(Err(error)) => report.error = Some(error.clone()),
                Some(Ok(observation)) => {
                    report.ok = true;
                    (report.observed, report.vanished, report.unreadable) =
                        collect::counts(observation);
                    signals.extend(collect::derive(observation, ctx).signals);
                }
            }
            collectors.push(report);
        }
        signals::sort(&mut signals);
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
            out.push_str("\nNo collector is enabled: set WATCHDOG_PROC_ENABLED=true (or WATCHDOG_JOBS_ENABLED=true).\n");
            return out;
        }
        out.push('\n');
        if self.signals.is_empty() {
            out.push_str("No signals: no matching process, no job to look at.\n");
            return out;
        }
        self.proc_table(&mut out);
        self.jobs_table(&mut out);
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
            "ACTIVE", "ENTITY", "AGE", "PID", "PGID", "ORPHANED", "PARENT", "CPU%", "RSS",
            "MEMBERS", "CMDLINE",
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
                &watchdog_collectors::mask::cut(f.cmdline.clone(), 80),
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
            "ACTIVE", "KIND", "ENTITY", "AGE", "PID", "HOST PID", "WHY",
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
                &why.join(", "),
            ]));
        }
        out.push_str(&render(&rows));
        out.push('\n');
    }
}

/// The events of `run`'s first tick from an empty state, decided now, for this host.
fn first_tick(outcomes: &[Outcome], ctx: &collect::Context<'_>) -> Vec<WouldSend> {
    let ticks: Vec<(&str, CollectorTick)> = outcomes
        .iter()
        .filter_map(|o| Some((o.name, collect::tick_of(o.result.as_ref()?, ctx).0)))
        .collect();
    let (config, now) = (ctx.config, ctx.now);
    let host = daemon::resolve_host(config);
    engine::decide(AlertState::default(), ticks, now, &daemon::rules(config))
        .alerts
        .iter()
        .map(|alert| {
            let event = Event::render(alert, &host, config.lang);
            WouldSend {
                event: event.event,
                kind: event.kind,
                entity: event.entity,
                summary: event.summary,
            }
        })
        .collect()
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

/// Runs `watchdog once`.
pub fn main(config: &Config, json: bool, check: bool) -> ExitCode {
    let tls = crate::tls::SharedConfig::new(config.ca_roots.clone());
    let collectors = match collect::build(config, &tls) {
        Ok(built) => built.collectors,
        Err(error) => {
            eprintln!("watchdog: {error}");
            return ExitCode::from(crate::EXIT_BAD_CONFIG);
        }
    };
    if collectors.is_empty() {
        tracing::warn!(
            "no collector is enabled; set WATCHDOG_PROC_ENABLED=true or WATCHDOG_JOBS_ENABLED=true"
        );
    }
    // One pass with no alert state: no leftover watch is open.
    let outcomes =
        collect::collect_all(&collectors, &watchdog_collectors::CollectRequest::default());
    let memory = JobsMemory::default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let ctx = collect::Context {
        config,
        jobs_memory: &memory,
        now,
    };
    let mut report = Report::from_outcomes(&outcomes, &ctx);
    report.would_send = first_tick(&outcomes, &ctx);
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
                      "age_s": 1, "cmdline": "p", "orphaned": false, "parent": null, "group_leader_alive": true,
                      "cpu_pct": 0.0, "rss_bytes": 0}
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
}
