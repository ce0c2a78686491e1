//! The `host_pressure` texts: who starves the host first, then by how much and since when, then
//! what it means for a test that fails here and the safe command that ends it.
//!
//! Owns the words of this kind, one catalogue per language, and the one place that decides
//! which of them apply. Pure, like the rest of [`crate::text`]: the alert's facts and a
//! language in, two strings out; the figures are formatted here, never measured.

use super::container::suffix;
use super::{duration, fill};
use crate::model::{
    rfc3339, Alert, EventKind, Lang, PressureFacts, PressureSource, Resource, TopConsumer,
    TopStatus,
};

/// How many consumers the one-line summary names; the body names every one.
const SUMMARY_TOP: usize = 3;

/// The sentences of a `host_pressure` text. `{what}` is the resource's name below, `{figures}`
/// every figure there is and `{short}` the one compared with the threshold.
struct Words {
    cpu: &'static str,
    memory: &'static str,
    io: &'static str,
    /// Summary of a first alert with its history: `{host}`, `{what}`, `{for}` (how long above),
    /// `{short}`, `{top}`.
    starved_for: &'static str,
    /// Summary of a reminder: as `starved_for`.
    still_starved_for: &'static str,
    /// Summary without history (`once`): `{host}`, `{what}`, `{figures}`, `{top}`.
    starved: &'static str,
    /// Ends a summary that names consumers, leading space included: `{names}`.
    top: &'static str,
    /// Summary of a recovery: `{host}`, `{what}`, `{lasted}`.
    over: &'static str,
    /// `{what}`, `{host}`, `{threshold}`, `{figures}`, `{since}`.
    over_body: &'static str,
    /// `{what}`, `{host}`, `{threshold}`, `{since}`, `{figures}`.
    at_or_above: &'static str,
    /// What a failing test means here when stuck work is among the consumers.
    advice_stuck: &'static str,
    /// What it means when the host is simply busy.
    advice_busy: &'static str,
    /// `{first}` (`consumer`), `{host}`, `{term}`, `{kill}`: the commands.
    stop_top: &'static str,
    /// `{comm}`, `{pid}`.
    consumer: &'static str,
    /// The first tick above a threshold: the rates come with the next one.
    sampling: &'static str,
    /// `{why}`.
    sampling_failed: &'static str,
    /// Sampled, and nobody used measurable CPU.
    none_measurable: &'static str,
    /// Heads the list of consumers.
    top_head: &'static str,
    /// One consumer: `{comm}`, `{pid}`, `{notes}` (`" (orphaned, stuck 2d03h)"` or nothing),
    /// `{cpu}`.
    brief: &'static str,
    note_orphaned: &'static str,
    /// `{entity}` (a `job:` entity), `{stuck}`.
    note_left_over: &'static str,
    /// `{stuck}`.
    note_stuck: &'static str,
    /// `{avg60}`.
    short_psi: &'static str,
    /// `{avg60}`.
    short_loadavg: &'static str,
    /// `{avg10}`, `{avg60}`, `{avg300}`.
    figures_psi: &'static str,
    /// As `figures_psi`, and `{full}`.
    figures_psi_full: &'static str,
    /// `{avg60}`, `{avg300}`.
    figures_loadavg: &'static str,
}

const EN: Words = Words {
    cpu: "CPU",
    memory: "Memory",
    io: "IO",
    starved_for: "[{host}] {what} starved for {for} ({short}).{top}",
    still_starved_for: "[{host}] {what} still starved, for {for} ({short}).{top}",
    starved: "[{host}] {what} starved ({figures}).{top}",
    top: " Top: {names}",
    over: "[{host}] over: {what} no longer starved, after {lasted}",
    over_body: "{what} on {host} has stayed below its threshold ({threshold}) long enough: \
                {figures}.\nIt was starved since {since}.",
    at_or_above: "{what} on {host} has been at or above its threshold ({threshold}) since \
                  {since}: {figures}.",
    advice_stuck: "A test that times out or runs slow on this host now is more likely starved \
                   than broken: treat its failure as an infrastructure fault, stop the stuck \
                   work, then re-run it.",
    advice_busy: "A test that times out or runs slow on this host now is more likely starved \
                  than broken: treat its failure as an infrastructure fault, and re-run it \
                  elsewhere or once the pressure is over.",
    stop_top: "The top consumer, {first}, is stuck work; to stop it, run on {host}:\n  {term}\n\
               and if it is still there a minute later:\n  {kill}",
    consumer: "{comm} (pid {pid})",
    sampling: "The top CPU consumers are named from the next tick on: the first sample is taken.",
    sampling_failed: "The top CPU consumers could not be sampled: {why}",
    none_measurable: "No process used measurable CPU over the last interval.",
    top_head: "Top CPU consumers over the last interval:",
    brief: "{comm} pid {pid}{notes} {cpu}",
    note_orphaned: "orphaned",
    note_left_over: "left over from {entity} for {stuck}",
    note_stuck: "stuck {stuck}",
    short_psi: "PSI some {avg60}",
    short_loadavg: "load {avg60} per CPU",
    figures_psi: "PSI some avg10 {avg10}, avg60 {avg60}, avg300 {avg300}",
    figures_psi_full: "PSI some avg10 {avg10}, avg60 {avg60}, avg300 {avg300}, full avg60 {full}",
    figures_loadavg: "no PSI; load per CPU {avg60} over 1 min, {avg300} over 5 min",
};

const RU: Words = Words {
    cpu: "CPU",
    memory: "Память",
    io: "Ввод-вывод",
    starved_for: "[{host}] {what} в дефиците уже {for} ({short}).{top}",
    still_starved_for: "[{host}] {what} всё ещё в дефиците, уже {for} ({short}).{top}",
    starved: "[{host}] {what} в дефиците ({figures}).{top}",
    top: " Больше всех: {names}",
    over: "[{host}] снято: {what} больше не в дефиците, длилось {lasted}",
    over_body: "{what} на {host} достаточно долго ниже порога ({threshold}): {figures}.\n\
                Дефицит был с {since}.",
    at_or_above: "{what} на {host} на уровне порога ({threshold}) или выше с {since}: \
                  {figures}.",
    advice_stuck: "Тест, который сейчас падает по таймауту или идёт медленно на этом хосте, \
                   скорее голодает, чем сломан: считайте это сбоем инфраструктуры, остановите \
                   зависшую работу и перезапустите его.",
    advice_busy: "Тест, который сейчас падает по таймауту или идёт медленно на этом хосте, \
                  скорее голодает, чем сломан: считайте это сбоем инфраструктуры и \
                  перезапустите его на другом хосте или когда дефицит пройдёт.",
    stop_top: "Больше всех потребляет зависшая работа, {first}; чтобы её остановить, выполните \
               на {host}:\n  {term}\nи, если через минуту она ещё жива:\n  {kill}",
    consumer: "{comm} (pid {pid})",
    sampling: "Главных потребителей CPU назовёт следующий тик: первый замер сделан.",
    sampling_failed: "Главных потребителей CPU не удалось замерить: {why}",
    none_measurable: "Ни один процесс не потратил заметного CPU за последний интервал.",
    top_head: "Больше всех CPU за последний интервал:",
    brief: "{comm} pid {pid}{notes} {cpu}",
    note_orphaned: "осиротел",
    note_left_over: "остаток {entity} уже {stuck}",
    note_stuck: "завис {stuck}",
    short_psi: "PSI some {avg60}",
    short_loadavg: "загрузка {avg60} на CPU",
    figures_psi: "PSI some avg10 {avg10}, avg60 {avg60}, avg300 {avg300}",
    figures_psi_full: "PSI some avg10 {avg10}, avg60 {avg60}, avg300 {avg300}, full avg60 {full}",
    figures_loadavg: "PSI нет; загрузка на CPU {avg60} за 1 мин, {avg300} за 5 мин",
};

fn words(lang: Lang) -> &'static Words {
    match lang {
        Lang::En => &EN,
        Lang::Ru => &RU,
    }
}

pub(super) fn render(alert: &Alert, f: &PressureFacts, host: &str, lang: Lang) -> (String, String) {
    let w = words(lang);
    let what = match f.resource {
        Resource::Cpu => w.cpu,
        Resource::Memory => w.memory,
        Resource::Io => w.io,
    };
    // How long it has been above: from the first tick above, where `run` remembers it; else
    // from the alert (`once` has no history).
    let above_for = f
        .above_since
        .map(|since| duration(secs(alert.at - since), lang));
    let summary = match (alert.event, &above_for) {
        (EventKind::Recovery, _) => w.over,
        (EventKind::Reminder, Some(_)) => w.still_starved_for,
        (_, Some(_)) => w.starved_for,
        (_, None) => w.starved,
    };
    let names: Vec<String> = f
        .top
        .iter()
        .take(SUMMARY_TOP)
        .map(|t| brief(t, lang))
        .collect();
    let top = if names.is_empty() {
        String::new()
    } else {
        let more = if f.top.len() > SUMMARY_TOP {
            ", …"
        } else {
            ""
        };
        let names = format!("{}{more}", names.join(", "));
        fill(w.top, &[("names", &names)])
    };
    let vars = [
        ("host", host),
        ("what", what),
        ("figures", &figures(f, w)),
        ("short", &short_figures(f, w)),
        ("threshold", &pct(f.threshold_pct)),
        ("since", &rfc3339(f.above_since.unwrap_or(alert.since))),
        ("for", above_for.as_deref().unwrap_or_default()),
        ("lasted", &duration(alert.duration_s(), lang)),
        ("top", &top),
    ];
    let body = match alert.event {
        EventKind::Recovery => fill(w.over_body, &vars),
        _ => body(f, w, host, &vars, lang),
    };
    (fill(summary, &vars), body)
}

fn body(f: &PressureFacts, w: &Words, host: &str, vars: &[(&str, &str)], lang: Lang) -> String {
    let mut lines = vec![top_lines(f, lang), fill(w.at_or_above, vars)];
    // Stuck work among the culprits is the fault to fix; without it, the host is simply busy.
    let stuck = f.top.iter().any(|t| t.stuck_s.is_some());
    lines.push(if stuck { w.advice_stuck } else { w.advice_busy }.to_string());
    if let Some((term, kill)) = f.stop.commands() {
        let first = f.top.first().map(|t| {
            let pid = t.pid.to_string();
            fill(w.consumer, &[("comm", &t.comm), ("pid", &pid)])
        });
        let first = first.unwrap_or_default();
        let stop = [
            ("first", first.as_str()),
            ("host", host),
            ("term", &term),
            ("kill", &kill),
        ];
        lines.push(fill(w.stop_top, &stop));
    }
    lines.retain(|l| !l.is_empty());
    lines.join("\n")
}

/// The top consumers, one a line, or a line that says why there are none.
fn top_lines(f: &PressureFacts, lang: Lang) -> String {
    let w = words(lang);
    match f.top_status {
        TopStatus::Off | TopStatus::BelowThreshold => String::new(),
        TopStatus::Sampling => w.sampling.to_string(),
        TopStatus::Failed => {
            let why = f.top_error.as_deref().unwrap_or("?");
            fill(w.sampling_failed, &[("why", why)])
        }
        TopStatus::Sampled if f.top.is_empty() => w.none_measurable.to_string(),
        TopStatus::Sampled => {
            let mut out = vec![w.top_head.to_string()];
            for t in &f.top {
                out.push(format!(
                    "  {}{}",
                    brief(t, lang),
                    suffix(t.container.as_ref(), lang)
                ));
                if !t.cmdline.is_empty() {
                    out.push(format!("    {}", t.cmdline));
                }
            }
            out.join("\n")
        }
    }
}

/// `pytest pid 4121 (orphaned, stuck 2d03h) 190%`.
fn brief(t: &TopConsumer, lang: Lang) -> String {
    let w = words(lang);
    let mut notes = Vec::new();
    if t.orphaned {
        notes.push(w.note_orphaned.to_string());
    }
    if let (Some(entity), Some(stuck)) = (t.entity.as_deref(), t.stuck_s) {
        let stuck = duration(stuck, lang);
        let note = if entity.starts_with("job:") {
            w.note_left_over
        } else {
            w.note_stuck
        };
        notes.push(fill(note, &[("entity", entity), ("stuck", &stuck)]));
    }
    let notes = if notes.is_empty() {
        String::new()
    } else {
        format!(" ({})", notes.join(", "))
    };
    let vars = [
        ("comm", t.comm.as_str()),
        ("pid", &t.pid.to_string()),
        ("notes", &notes),
        ("cpu", &pct(t.cpu_pct)),
    ];
    fill(w.brief, &vars)
}

/// `PSI some 83%` or `load 170% per CPU`: the figure the threshold is compared with.
fn short_figures(f: &PressureFacts, w: &Words) -> String {
    let avg60 = f.some_avg60.map_or("?".into(), pct);
    let template = match f.source {
        PressureSource::Psi => w.short_psi,
        PressureSource::Loadavg => w.short_loadavg,
    };
    fill(template, &[("avg60", &avg60)])
}

/// Every figure there is, with its window.
fn figures(f: &PressureFacts, w: &Words) -> String {
    let show = |v: Option<f64>| v.map_or("?".to_string(), pct);
    let template = match (f.source, f.full_avg60) {
        (PressureSource::Psi, None) => w.figures_psi,
        (PressureSource::Psi, Some(_)) => w.figures_psi_full,
        (PressureSource::Loadavg, _) => w.figures_loadavg,
    };
    let vars = [
        ("avg10", show(f.some_avg10)),
        ("avg60", show(f.some_avg60)),
        ("avg300", show(f.some_avg300)),
        ("full", show(f.full_avg60)),
    ];
    let vars: Vec<(&str, &str)> = vars.iter().map(|(n, v)| (*n, v.as_str())).collect();
    fill(template, &vars)
}

/// A percentage as people read it: whole above 10, one decimal below.
fn pct(value: f64) -> String {
    if value >= 10.0 {
        format!("{value:.0}%")
    } else {
        format!("{value:.1}%")
    }
}

fn secs(d: i64) -> u64 {
    u64::try_from(d).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_fills, every_lang};
    use super::*;

    #[test]
    fn every_pressure_template_fills_completely() {
        for lang in every_lang() {
            let Words {
                cpu,
                memory,
                io,
                starved_for,
                still_starved_for,
                starved,
                top,
                over,
                over_body,
                at_or_above,
                advice_stuck,
                advice_busy,
                stop_top,
                consumer,
                sampling,
                sampling_failed,
                none_measurable,
                top_head,
                brief,
                note_orphaned,
                note_left_over,
                note_stuck,
                short_psi,
                short_loadavg,
                figures_psi,
                figures_psi_full,
                figures_loadavg,
            } = words(lang);
            let starved_names: &[&str] = &["host", "what", "for", "short", "top"];
            let figure_names: &[&str] = &["avg10", "avg60", "avg300", "full"];
            assert_fills(
                "pressure",
                lang,
                &[
                    ("cpu", cpu, &[]),
                    ("memory", memory, &[]),
                    ("io", io, &[]),
                    ("starved_for", starved_for, starved_names),
                    ("still_starved_for", still_starved_for, starved_names),
                    ("starved", starved, &["host", "what", "figures", "top"]),
                    ("top", top, &["names"]),
                    ("over", over, &["host", "what", "lasted"]),
                    (
                        "over_body",
                        over_body,
                        &["what", "host", "threshold", "figures", "since"],
                    ),
                    (
                        "at_or_above",
                        at_or_above,
                        &["what", "host", "threshold", "since", "figures"],
                    ),
                    ("advice_stuck", advice_stuck, &[]),
                    ("advice_busy", advice_busy, &[]),
                    ("stop_top", stop_top, &["first", "host", "term", "kill"]),
                    ("consumer", consumer, &["comm", "pid"]),
                    ("sampling", sampling, &[]),
                    ("sampling_failed", sampling_failed, &["why"]),
                    ("none_measurable", none_measurable, &[]),
                    ("top_head", top_head, &[]),
                    ("brief", brief, &["comm", "pid", "notes", "cpu"]),
                    ("note_orphaned", note_orphaned, &[]),
                    ("note_left_over", note_left_over, &["entity", "stuck"]),
                    ("note_stuck", note_stuck, &["stuck"]),
                    ("short_psi", short_psi, &["avg60"]),
                    ("short_loadavg", short_loadavg, &["avg60"]),
                    ("figures_psi", figures_psi, &figure_names[..3]),
                    ("figures_psi_full", figures_psi_full, figure_names),
                    ("figures_loadavg", figures_loadavg, &["avg60", "avg300"]),
                ],
            );
        }
    }
}
