//! Alert texts a person can act on, in English and Russian.
//!
//! Owns the one-line summary and the body of every event kind: what is stuck, on which host,
//! since when, what it costs, whether it was orphaned and by whom, and what to run about it.
//! Pure: an alert, a host and a language in, two strings out. Channels escape them for their
//! own markup; nothing here is markup. Where a process runs (its container, pod or unit) is
//! worded in `text/container.rs`; host pressure has its own module, `text/pressure.rs`.

mod container;
mod pressure;

use crate::model::{
    rfc3339, Alert, CollectorFacts, ContainerFacts, EventKind, Facts, HungReason, JobFacts, Kind,
    Lang, ProcFacts, Stop,
};

pub use container::place;

/// The summary (one line) and the text (a few lines) of `alert`.
///
/// Every value a process or an orchestrator controls (comm, command line, parent, job name and
/// state, the collector's error) is shown visibly escaped ([`crate::escape::visible`]): a
/// process can neither repaint a terminal nor forge a line of the text. The event's JSON facts
/// keep the raw values.
pub fn render(alert: &Alert, host: &str, lang: Lang) -> (String, String) {
    let shown = Alert {
        facts: visible_facts(&alert.facts),
        ..alert.clone()
    };
    let host = crate::escape::visible(host);
    render_shown(&shown, &host, lang)
}

/// The facts with every free-text field escaped for display.
fn visible_facts(facts: &Facts) -> Facts {
    let v = |s: &String| crate::escape::visible(s).into_owned();
    let o = |s: &Option<String>| s.as_ref().map(v);
    let mut shown = facts.clone();
    match &mut shown {
        Facts::Proc(f) => {
            f.comm = v(&f.comm);
            f.cmdline = v(&f.cmdline);
            f.parent = o(&f.parent);
        }
        Facts::Job(f) => {
            f.job = v(&f.job);
            f.name = o(&f.name);
            f.state = v(&f.state);
            f.pid_comm = o(&f.pid_comm);
        }
        Facts::Collector(f) => f.error = v(&f.error),
        Facts::Pressure(f) => {
            for top in &mut f.top {
                top.comm = v(&top.comm);
                top.cmdline = v(&top.cmdline);
            }
        }
        Facts::Test(f) => f.sent_by = v(&f.sent_by),
    }
    shown
}

fn render_shown(alert: &Alert, host: &str, lang: Lang) -> (String, String) {
    match &alert.facts {
        Facts::Proc(facts) => {
            let (summary, text) = proc_text(alert, facts, host, lang);
            (summary, with_place(text, facts.container.as_ref(), lang))
        }
        Facts::Collector(facts) => collector_text(alert, facts, host, lang),
        Facts::Job(facts) => {
            let (summary, text) = job_text(alert, facts, host, lang);
            (summary, with_place(text, facts.container.as_ref(), lang))
        }
        Facts::Pressure(facts) => pressure::render(alert, facts, host, lang),
        Facts::Test(_) => test_text(alert, host, lang),
    }
}

/// `text` with a line saying where the process runs after its first line, when that is known.
fn with_place(text: String, container: Option<&ContainerFacts>, lang: Lang) -> String {
    let Some(place) = container.and_then(|c| place(c, lang)) else {
        return text;
    };
    // A cut pod uid already ends the sentence with its ellipsis.
    let stop = if place.ends_with('…') { "" } else { "." };
    let line = match lang {
        Lang::En => format!("Where it runs: {place}{stop}"),
        Lang::Ru => format!("Где работает: {place}{stop}"),
    };
    match text.split_once('\n') {
        Some((first, rest)) => format!("{first}\n{line}\n{rest}"),
        None => format!("{text}\n{line}"),
    }
}

/// `2h05m`, `4d03h`, `59s` (English); `2 ч 05 мин`, `4 д 03 ч`, `59 с` (Russian).
pub fn duration(seconds: u64, lang: Lang) -> String {
    let (d, h, m, s) = (
        seconds / 86400,
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60,
    );
    let [ud, uh, um, us] = match lang {
        Lang::En => ["d", "h", "m", "s"],
        Lang::Ru => [" д", " ч", " мин", " с"],
    };
    let sep = if lang == Lang::Ru { " " } else { "" };
    match (d, h, m) {
        (0, 0, 0) => format!("{s}{us}"),
        (0, 0, _) => format!("{m}{um}{sep}{s:02}{us}"),
        (0, _, _) => format!("{h}{uh}{sep}{m:02}{um}"),
        _ => format!("{d}{ud}{sep}{h:02}{uh}"),
    }
}

/// Binary units with one decimal.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn proc_text(alert: &Alert, f: &ProcFacts, host: &str, lang: Lang) -> (String, String) {
    let age = duration(f.age_s, lang);
    let lasted = duration(alert.duration_s(), lang);
    let since = rfc3339(alert.since);
    let who = format!("{} (pid {})", f.comm, f.pid);
    let parent = f.parent.as_deref().unwrap_or("?");
    let members = f.members.clone().unwrap_or_else(|| vec![f.pid]);
    let pids = members
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    let cpu = f.group_cpu_pct.unwrap_or(f.cpu_pct);
    let rss = bytes(f.group_rss_bytes.unwrap_or(f.rss_bytes));
    let group_is_its_own = matches!(f.stop, Stop::Group(_));
    let (stop_term, stop_kill) = f.stop.commands().unwrap_or_default();
    let adopted = f.adopted;
    match lang {
        Lang::En => {
            let orphan = match (f.orphaned, adopted) {
                (true, true) => format!("Orphaned: adopted by {parent} (pid {}); nothing is waiting for it.", f.ppid),
                (true, false) => format!("Orphaned: the leader of its process group ({}) is gone; its parent is {parent} (pid {}).", f.pgid, f.ppid),
                (false, _) => format!("Not orphaned: its parent is {parent} (pid {}).", f.ppid),
            };
            let group = if group_is_its_own {
                format!(
                    "To stop its whole process group {} ({} matching: pids {pids}), run on {host}:",
                    f.pgid,
                    members.len()
                )
            } else {
                format!("Its process group {} is not its own; to stop just these processes (pids {pids}), run on {host}:", f.pgid)
            };
            let cost = match members.len() {
                1 => format!("CPU: {cpu:.1}% of one core on average over its life; memory: {rss}."),
                n => format!("CPU: {cpu:.1}% of one core on average, summed over its {n} processes; memory: {rss}."),
            };
            let orphan_note = if f.orphaned { ", orphaned" } else { "" };
            match alert.event {
                EventKind::Fire | EventKind::Test => (
                    format!("[{host}] stuck: {who} running for {age}{orphan_note}"),
                    format!(
                        "{who} on {host} has been running for {age}, past the limit, since {since}.\n\
                         Command: {cmd}\n{orphan}\n{cost}\n{group}\n  {stop_term}\n\
                         and if it is still there a minute later:\n  {stop_kill}",
                        cmd = f.cmdline
                    ),
                ),
                EventKind::Reminder => (
                    format!("[{host}] still stuck: {who} running for {age}{orphan_note}"),
                    format!(
                        "{who} on {host} is still running, {age} now; it has been past the limit \
                         since {since} ({lasted}).\nCommand: {cmd}\n{orphan}\n{cost}\n{group}\n  \
                         {stop_term}\nand if it is still there a minute later:\n  {stop_kill}",
                        cmd = f.cmdline
                    ),
                ),
                EventKind::Recovery => (
                    format!("[{host}] over: {who} is no longer stuck, after {lasted}"),
                    format!(
                        "{who} on {host} has exited or is no longer past the limit. It was \
                         stuck for {lasted}, since {since}.\nCommand: {cmd}",
                        cmd = f.cmdline
                    ),
                ),
            }
        }
        Lang::Ru => {
            let orphan = match (f.orphaned, adopted) {
                (true, true) => format!("Осиротел: его усыновил {parent} (pid {}), никто его не ждёт.", f.ppid),
                (true, false) => format!("Осиротел: лидер его группы процессов ({}) завершился; родитель — {parent} (pid {}).", f.pgid, f.ppid),
                (false, _) => format!("Не осиротел: родитель — {parent} (pid {}).", f.ppid),
            };
            let group = if group_is_its_own {
                format!("Чтобы остановить всю его группу процессов {} (совпало: {}, pid {pids}), выполните на {host}:", f.pgid, members.len())
            } else {
                format!("Группа процессов {} ему не принадлежит; чтобы остановить только эти процессы (pid {pids}), выполните на {host}:", f.pgid)
            };
            let cost = match members.len() {
                1 => format!("CPU: в среднем {cpu:.1}% одного ядра за всё время; память: {rss}."),
                n => format!(
                    "CPU: в среднем {cpu:.1}% одного ядра в сумме по {n} процессам; память: {rss}."
                ),
            };
            let orphan_note = if f.orphaned { ", осиротел" } else { "" };
            match alert.event {
                EventKind::Fire | EventKind::Test => (
                    format!("[{host}] зависло: {who} работает {age}{orphan_note}"),
                    format!(
                        "{who} на {host} работает уже {age} и с {since} превышает порог.\n\
                         Команда: {cmd}\n{orphan}\n{cost}\n{group}\n  {stop_term}\n\
                         и, если через минуту он ещё жив:\n  {stop_kill}",
                        cmd = f.cmdline
                    ),
                ),
                EventKind::Reminder => (
                    format!("[{host}] всё ещё зависло: {who} работает {age}{orphan_note}"),
                    format!(
                        "{who} на {host} всё ещё работает, уже {age}; порог превышен с {since} \
                         ({lasted}).\nКоманда: {cmd}\n{orphan}\n{cost}\n{group}\n  {stop_term}\n\
                         и, если через минуту он ещё жив:\n  {stop_kill}",
                        cmd = f.cmdline
                    ),
                ),
                EventKind::Recovery => (
                    format!("[{host}] снято: {who} больше не зависает, длилось {lasted}"),
                    format!(
                        "{who} на {host} завершился или больше не превышает порог. Зависание \
                         длилось {lasted}, с {since}.\nКоманда: {cmd}",
                        cmd = f.cmdline
                    ),
                ),
            }
        }
    }
}

fn collector_text(alert: &Alert, f: &CollectorFacts, host: &str, lang: Lang) -> (String, String) {
    let since = rfc3339(alert.since);
    let lasted = duration(alert.duration_s(), lang);
    let (name, error, ticks) = (&f.collector, &f.error, f.failed_ticks);
    match (lang, alert.event) {
        (Lang::En, EventKind::Fire | EventKind::Reminder | EventKind::Test) => (
            format!(
                "[{host}] watchdog cannot see: the {name} collector failed {ticks} ticks in a row"
            ),
            format!(
                "The {name} collector on {host} has failed {ticks} ticks in a row, since {since}.\n\
                 Last error: {error}\n\
                 While it fails, the alerts it feeds are held: nothing is recovered and nothing \
                 new is found.\n\
                 What to do: run `watchdog once` on {host} to see the error; check \
                 WATCHDOG_PROC_ROOT, that the container runs with pid: host (hostPID), and the \
                 hidepid option of the /proc mount."
            ),
        ),
        (Lang::En, EventKind::Recovery) => (
            format!("[{host}] watchdog sees again: the {name} collector works, after {lasted}"),
            format!(
                "The {name} collector on {host} works again; it could not see for {lasted}, \
                 since {since}.\nAlerts it holds are decided again from this tick on."
            ),
        ),
        (Lang::Ru, EventKind::Fire | EventKind::Reminder | EventKind::Test) => (
            format!("[{host}] watchdog ослеп: сборщик {name} не работает {ticks} тиков подряд"),
            format!(
                "Сборщик {name} на {host} не работает {ticks} тиков подряд, с {since}.\n\
                 Последняя ошибка: {error}\n\
                 Пока он не работает, его оповещения удерживаются: ничего не снимается и ничего \
                 нового не находится.\n\
                 Что делать: запустите `watchdog once` на {host}, чтобы увидеть ошибку; \
                 проверьте WATCHDOG_PROC_ROOT, что контейнер запущен с pid: host (hostPID), и \
                 опцию hidepid у монтирования /proc."
            ),
        ),
        (Lang::Ru, EventKind::Recovery) => (
            format!("[{host}] watchdog снова видит: сборщик {name} работает, сбой длился {lasted}"),
            format!(
                "Сборщик {name} на {host} снова работает; он не видел {lasted}, с {since}.\n\
                 Удержанные оповещения снова решаются с этого тика."
            ),
        ),
    }
}

fn job_text(alert: &Alert, f: &JobFacts, host: &str, lang: Lang) -> (String, String) {
    let ru = lang == Lang::Ru;
    let job = match &f.name {
        Some(name) => format!("{} ({name})", f.job),
        None => f.job.clone(),
    };
    let age = duration(f.age_s, lang);
    let lasted = duration(alert.duration_s(), lang);
    let pids = match (f.pid, f.host_pid) {
        (Some(pid), Some(host_pid)) if pid != host_pid => {
            if ru {
                format!("pid {pid} (у оркестратора), {host_pid} на хосте")
            } else {
                format!("pid {pid} (the orchestrator's), {host_pid} on the host")
            }
        }
        (Some(pid), _) => format!("pid {pid}"),
        (None, _) => {
            if ru {
                "без pid".into()
            } else {
                "no pid".into()
            }
        }
    };
    let members = f
        .members
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    let stop = f.stop.commands();
    let stop_lines = |intro: &str, later: &str| match &stop {
        Some((term, kill)) => format!("\n{intro}\n  {term}\n{later}\n  {kill}"),
        None => String::new(),
    };
    match (alert.kind, alert.event, lang) {
        (Kind::JobLeftover, EventKind::Recovery, Lang::En) => (
            format!("[{host}] over: job {job} has no process left"),
            format!("Nothing of job {job} on {host} is running any more; its leftovers lasted {lasted}, since {}.", rfc3339(alert.since)),
        ),
        (Kind::JobLeftover, EventKind::Recovery, Lang::Ru) => (
            format!("[{host}] снято: от задачи {job} не осталось процессов"),
            format!("От задачи {job} на {host} больше ничего не работает; остатки жили {lasted}, с {}.", rfc3339(alert.since)),
        ),
        (Kind::JobLeftover, _, Lang::En) => {
            let ended = duration(f.ended_s.unwrap_or(0), lang);
            (
                format!("[{host}] job {job} ended {ended} ago but {} of its processes live on", f.members.len()),
                format!(
                    "Job {job} on {host} ended {ended} ago, and processes of its own process group or session are still running: pids {members}.\nLeft alone they are the stuck work of tomorrow: they hold CPU and memory the next runs need.{}",
                    stop_lines(&format!("To stop them, run on {host}:"), "and if they are still there a minute later:")
                ),
            )
        }
        (Kind::JobLeftover, _, Lang::Ru) => {
            let ended = duration(f.ended_s.unwrap_or(0), lang);
            (
                format!("[{host}] задача {job} завершилась {ended} назад, но {} её процессов живы", f.members.len()),
                format!(
                    "Задача {job} на {host} завершилась {ended} назад, а процессы её собственной группы или сессии всё ещё работают: pid {members}.\nЕсли их не остановить, они займут CPU и память, нужные следующим запускам.{}",
                    stop_lines(&format!("Чтобы их остановить, выполните на {host}:"), "и, если через минуту они ещё живы:")
                ),
            )
        }
        (_, EventKind::Recovery, Lang::En) => (
            format!("[{host}] over: job {job} no longer looks hung, after {lasted}"),
            format!("Job {job} on {host} ended or looks alive again; it looked hung for {lasted}, since {}.", rfc3339(alert.since)),
        ),
        (_, EventKind::Recovery, Lang::Ru) => (
            format!("[{host}] снято: задача {job} больше не выглядит зависшей, длилось {lasted}"),
            format!("Задача {job} на {host} завершилась или снова подаёт признаки жизни; она выглядела зависшей {lasted}, с {}.", rfc3339(alert.since)),
        ),
        (_, _, _) => {
            let why: Vec<String> = f.reasons.iter().map(|r| reason_text(*r, f, lang)).collect();
            let why = why.join("; ");
            if ru {
                (
                    format!("[{host}] задача {job} похоже зависла: {why}"),
                    format!(
                        "Задача {job} на {host} в состоянии \"{}\" уже {age} ({pids}).\nПочему: {why}.\nЧто делать: проверьте агента задачи {} в оркестраторе; если он мёртв, пометьте задачу как упавшую, чтобы её место освободилось.{}",
                        f.state, f.job,
                        stop_lines(&format!("Чтобы остановить то, что от неё осталось, выполните на {host}:"), "и, если через минуту оно ещё живо:")
                    ),
                )
            } else {
                (
                    format!("[{host}] job {job} looks hung: {why}"),
                    format!(
                        "Job {job} on {host} says \"{}\" and has run for {age} ({pids}).\nWhy: {why}.\nWhat to do: check the agent of job {} in the orchestrator; if it is dead, mark the job failed so its slot is freed.{}",
                        f.state, f.job,
                        stop_lines(&format!("To stop what is left of it, run on {host}:"), "and if it is still there a minute later:")
                    ),
                )
            }
        }
    }
}

fn reason_text(reason: HungReason, f: &JobFacts, lang: Lang) -> String {
    let pid = f.pid.map(|p| p.to_string()).unwrap_or_default();
    match (reason, lang) {
        (HungReason::PidGone, Lang::En) => format!("its process {pid} is gone"),
        (HungReason::PidGone, Lang::Ru) => format!("её процесс {pid} исчез"),
        (HungReason::PidReused, Lang::En) => format!(
            "pid {pid} now belongs to another process ({}) that started after the job",
            f.pid_comm.as_deref().unwrap_or("?")
        ),
        (HungReason::PidReused, Lang::Ru) => format!(
            "pid {pid} теперь у другого процесса ({}), запущенного после задачи",
            f.pid_comm.as_deref().unwrap_or("?")
        ),
        (HungReason::RunningTooLong, Lang::En) => {
            format!("it has run for {}, past the limit", duration(f.age_s, lang))
        }
        (HungReason::RunningTooLong, Lang::Ru) => {
            format!("она работает {}, дольше предела", duration(f.age_s, lang))
        }
        (HungReason::HeartbeatStale, Lang::En) => {
            format!(
                "its last heartbeat is {} old",
                duration(f.heartbeat_age_s.unwrap_or(0), lang)
            )
        }
        (HungReason::HeartbeatStale, Lang::Ru) => {
            format!(
                "последний пульс был {} назад",
                duration(f.heartbeat_age_s.unwrap_or(0), lang)
            )
        }
    }
}

fn test_text(alert: &Alert, host: &str, lang: Lang) -> (String, String) {
    let at = rfc3339(alert.at);
    match lang {
        Lang::En => (
            format!("[{host}] watchdog test alert: this channel works"),
            format!("Sent by `watchdog test-alert` on {host} at {at}. Nothing is wrong; no action is needed."),
        ),
        Lang::Ru => (
            format!("[{host}] тестовое оповещение watchdog: канал работает"),
            format!("Отправлено командой `watchdog test-alert` на {host} в {at}. Всё в порядке, ничего делать не нужно."),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_at_a_glance_in_both_languages() {
        let cases = [
            (59, "59s", "59 с"),
            (60, "1m00s", "1 мин 00 с"),
            (7500, "2h05m", "2 ч 05 мин"),
            (90000, "1d01h", "1 д 01 ч"),
        ];
        for (seconds, en, ru) in cases {
            assert_eq!(duration(seconds, Lang::En), en, "{seconds}");
            assert_eq!(duration(seconds, Lang::Ru), ru, "{seconds}");
        }
    }

    #[test]
    fn bytes_use_binary_units() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(8 << 20), "8.0 MiB");
        assert_eq!(bytes(1536), "1.5 KiB");
    }
}
