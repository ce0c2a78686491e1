//! The `host_pressure` texts: who starves the host first, then by how much and since when, then
//! what it means for a test that fails here and the safe command that ends it.
//!
//! Pure, like the rest of [`crate::text`]: the alert's facts and a language in, two strings out.

use super::container::suffix;
use super::duration;
use crate::model::{
    rfc3339, Alert, EventKind, Lang, PressureFacts, PressureSource, Resource, TopConsumer,
    TopStatus,
};

/// How many consumers the one-line summary names; the body names every one.
const SUMMARY_TOP: usize = 3;

pub(super) fn render(alert: &Alert, f: &PressureFacts, host: &str, lang: Lang) -> (String, String) {
    let what = resource_name(f.resource, lang);
    let figures = figures(f, lang);
    // How long it has been above: from the first tick above, where `run` remembers it; else
    // from the alert (`once` has no history).
    let above_for = f
        .above_since
        .map(|since| duration(secs(alert.at - since), lang));
    let since = rfc3339(f.above_since.unwrap_or(alert.since));
    let threshold = pct(f.threshold_pct);
    match (alert.event, lang) {
        (EventKind::Recovery, Lang::En) => (
            format!(
                "[{host}] over: {what} no longer starved, after {}",
                duration(alert.duration_s(), lang)
            ),
            format!(
                "{what} on {host} has stayed below its threshold ({threshold}) long enough: {figures}.\n\
                 It was starved since {since}."
            ),
        ),
        (EventKind::Recovery, Lang::Ru) => (
            format!(
                "[{host}] снято: {what} больше не в дефиците, длилось {}",
                duration(alert.duration_s(), lang)
            ),
            format!(
                "{what} на {host} достаточно долго ниже порога ({threshold}): {figures}.\n\
                 Дефицит был с {since}."
            ),
        ),
        (event, _) => {
            let still = event == EventKind::Reminder;
            let summary = summary(f, host, &what, above_for.as_deref(), &figures, still, lang);
            let body = body(f, host, &what, &since, &figures, &threshold, lang);
            (summary, body)
        }
    }
}

fn summary(
    f: &PressureFacts,
    host: &str,
    what: &str,
    above_for: Option<&str>,
    figures: &str,
    still: bool,
    lang: Lang,
) -> String {
    let names: Vec<String> = f
        .top
        .iter()
        .take(SUMMARY_TOP)
        .map(|t| brief(t, lang))
        .collect();
    let more = if f.top.len() > SUMMARY_TOP {
        ", …"
    } else {
        ""
    };
    let top = if names.is_empty() {
        String::new()
    } else {
        let word = if lang == Lang::Ru {
            "Больше всех"
        } else {
            "Top"
        };
        format!(" {word}: {}{more}", names.join(", "))
    };
    let short = short_figures(f, lang);
    match (lang, still, above_for) {
        (Lang::En, false, Some(d)) => format!("[{host}] {what} starved for {d} ({short}).{top}"),
        (Lang::En, true, Some(d)) => {
            format!("[{host}] {what} still starved, for {d} ({short}).{top}")
        }
        (Lang::En, _, None) => format!("[{host}] {what} starved ({figures}).{top}"),
        (Lang::Ru, false, Some(d)) => format!("[{host}] {what} в дефиците уже {d} ({short}).{top}"),
        (Lang::Ru, true, Some(d)) => {
            format!("[{host}] {what} всё ещё в дефиците, уже {d} ({short}).{top}")
        }
        (Lang::Ru, _, None) => format!("[{host}] {what} в дефиците ({figures}).{top}"),
    }
}

fn body(
    f: &PressureFacts,
    host: &str,
    what: &str,
    since: &str,
    figures: &str,
    threshold: &str,
    lang: Lang,
) -> String {
    let mut lines = Vec::new();
    lines.push(top_lines(f, lang));
    lines.push(match lang {
        Lang::En => format!(
            "{what} on {host} has been at or above its threshold ({threshold}) since {since}: {figures}."
        ),
        Lang::Ru => format!(
            "{what} на {host} на уровне порога ({threshold}) или выше с {since}: {figures}."
        ),
    });
    // Stuck work among the culprits is the fault to fix; without it, the host is simply busy.
    let stuck = f.top.iter().any(|t| t.stuck_s.is_some());
    lines.push(match (lang, stuck) {
        (Lang::En, true) => "A test that times out or runs slow on this host now is more likely \
                             starved than broken: treat its failure as an infrastructure fault, \
                             stop the stuck work, then re-run it."
            .to_string(),
        (Lang::En, false) => "A test that times out or runs slow on this host now is more likely \
                              starved than broken: treat its failure as an infrastructure fault, \
                              and re-run it elsewhere or once the pressure is over."
            .to_string(),
        (Lang::Ru, true) => "Тест, который сейчас падает по таймауту или идёт медленно на этом \
                             хосте, скорее голодает, чем сломан: считайте это сбоем \
                             инфраструктуры, остановите зависшую работу и перезапустите его."
            .to_string(),
        (Lang::Ru, false) => "Тест, который сейчас падает по таймауту или идёт медленно на этом \
                              хосте, скорее голодает, чем сломан: считайте это сбоем \
                              инфраструктуры и перезапустите его на другом хосте или когда \
                              дефицит пройдёт."
            .to_string(),
    });
    if let Some((term, kill)) = f.stop.commands() {
        let first = f.top.first().map(|t| format!("{} (pid {})", t.comm, t.pid));
        let first = first.unwrap_or_default();
        lines.push(match lang {
            Lang::En => format!(
                "The top consumer, {first}, is stuck work; to stop it, run on {host}:\n  {term}\n\
                 and if it is still there a minute later:\n  {kill}"
            ),
            Lang::Ru => format!(
                "Больше всех потребляет зависшая работа, {first}; чтобы её остановить, выполните \
                 на {host}:\n  {term}\nи, если через минуту она ещё жива:\n  {kill}"
            ),
        });
    }
    lines.retain(|l| !l.is_empty());
    lines.join("\n")
}

/// The top consumers, one a line, or a line that says why there are none.
fn top_lines(f: &PressureFacts, lang: Lang) -> String {
    let ru = lang == Lang::Ru;
    match f.top_status {
        TopStatus::Off | TopStatus::BelowThreshold => String::new(),
        TopStatus::Sampling if ru => {
            "Главных потребителей CPU назовёт следующий тик: первый замер сделан.".into()
        }
        TopStatus::Sampling => {
            "The top CPU consumers are named from the next tick on: the first sample is taken."
                .into()
        }
        TopStatus::Failed => {
            let why = f.top_error.as_deref().unwrap_or("?");
            if ru {
                format!("Главных потребителей CPU не удалось замерить: {why}")
            } else {
                format!("The top CPU consumers could not be sampled: {why}")
            }
        }
        TopStatus::Sampled if f.top.is_empty() => {
            if ru {
                "Ни один процесс не потратил заметного CPU за последний интервал.".into()
            } else {
                "No process used measurable CPU over the last interval.".into()
            }
        }
        TopStatus::Sampled => {
            let head = if ru {
                "Больше всех CPU за последний интервал:"
            } else {
                "Top CPU consumers over the last interval:"
            };
            let mut out = vec![head.to_string()];
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
    let ru = lang == Lang::Ru;
    let mut notes = Vec::new();
    if t.orphaned {
        notes.push(if ru { "осиротел" } else { "orphaned" }.to_string());
    }
    if let (Some(entity), Some(stuck)) = (t.entity.as_deref(), t.stuck_s) {
        let stuck = duration(stuck, lang);
        notes.push(match (entity.starts_with("job:"), ru) {
            (true, false) => format!("left over from {entity} for {stuck}"),
            (true, true) => format!("остаток {entity} уже {stuck}"),
            (false, false) => format!("stuck {stuck}"),
            (false, true) => format!("завис {stuck}"),
        });
    }
    let notes = if notes.is_empty() {
        String::new()
    } else {
        format!(" ({})", notes.join(", "))
    };
    format!("{} pid {}{notes} {}", t.comm, t.pid, pct(t.cpu_pct))
}

fn resource_name(resource: Resource, lang: Lang) -> String {
    match (resource, lang) {
        (Resource::Cpu, _) => "CPU",
        (Resource::Memory, Lang::En) => "Memory",
        (Resource::Memory, Lang::Ru) => "Память",
        (Resource::Io, Lang::En) => "IO",
        (Resource::Io, Lang::Ru) => "Ввод-вывод",
    }
    .to_string()
}

/// `PSI some 83%` or `load 170% per CPU`: the figure the threshold is compared with.
fn short_figures(f: &PressureFacts, lang: Lang) -> String {
    let avg60 = f.some_avg60.map_or("?".into(), pct);
    match (f.source, lang) {
        (PressureSource::Psi, _) => format!("PSI some {avg60}"),
        (PressureSource::Loadavg, Lang::En) => format!("load {avg60} per CPU"),
        (PressureSource::Loadavg, Lang::Ru) => format!("загрузка {avg60} на CPU"),
    }
}

/// Every figure there is, with its window.
fn figures(f: &PressureFacts, lang: Lang) -> String {
    let ru = lang == Lang::Ru;
    let show = |v: Option<f64>| v.map_or("?".to_string(), pct);
    match f.source {
        PressureSource::Psi => {
            let mut text = format!(
                "PSI some avg10 {}, avg60 {}, avg300 {}",
                show(f.some_avg10),
                show(f.some_avg60),
                show(f.some_avg300)
            );
            if let Some(full) = f.full_avg60 {
                text.push_str(&format!(", full avg60 {}", pct(full)));
            }
            text
        }
        PressureSource::Loadavg if ru => format!(
            "PSI нет; загрузка на CPU {} за 1 мин, {} за 5 мин",
            show(f.some_avg60),
            show(f.some_avg300)
        ),
        PressureSource::Loadavg => format!(
            "no PSI; load per CPU {} over 1 min, {} over 5 min",
            show(f.some_avg60),
            show(f.some_avg300)
        ),
    }
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
