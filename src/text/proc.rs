//! The `proc_blocking` texts: who is stuck, on which host, since when, what it costs, whether
//! it was orphaned and by whom, and the command that stops it without taking down its starter.
//!
//! Owns the words of this kind, one catalogue per language, and the one place that decides
//! which of them apply. Reads only the alert's facts, where the signal builder has already
//! decided whether the process was adopted and which kill command is safe; never decides
//! either itself.

use super::{duration, fill};
use crate::model::{rfc3339, Alert, EventKind, Lang, ProcFacts, Stop};

/// The sentences of a `proc_blocking` text. The placeholders each one takes are listed on it;
/// `{host}` and every value from the process are shown as they are, already escaped.
struct Words {
    /// `{comm}`, `{pid}`: how the process is named everywhere below as `{who}`.
    who: &'static str,
    /// Summary of a first alert: `{host}`, `{who}`, `{age}`, `{orphan_note}`.
    stuck: &'static str,
    /// Summary of a reminder: as `stuck`.
    still_stuck: &'static str,
    /// Summary of a recovery: `{host}`, `{who}`, `{lasted}`.
    over: &'static str,
    /// Appended to a summary when the process is orphaned.
    orphan_note: &'static str,
    /// Body of a first alert: `{who}`, `{host}`, `{age}`, `{since}`, `{cmd}`, then the lines
    /// `{orphan}`, `{cost}`, `{group}` and the commands `{stop_term}`, `{stop_kill}`.
    stuck_body: &'static str,
    /// Body of a reminder: as `stuck_body`, and `{lasted}`.
    still_stuck_body: &'static str,
    /// Body of a recovery: `{who}`, `{host}`, `{lasted}`, `{since}`, `{cmd}`.
    over_body: &'static str,
    /// Orphaned and adopted by a reaper: `{parent}`, `{ppid}`.
    adopted: &'static str,
    /// Orphaned: its group's leader is gone, its parent is not a reaper: `{pgid}`, `{parent}`,
    /// `{ppid}`.
    leader_gone: &'static str,
    /// `{parent}`, `{ppid}`.
    not_orphaned: &'static str,
    /// One process: `{cpu}` (percent of one core), `{rss}`.
    cost_one: &'static str,
    /// A group of matches: `{cpu}` (summed), `{n}`, `{rss}`.
    cost_many: &'static str,
    /// The group is its own, stopped whole: `{pgid}`, `{n}`, `{pids}`, `{host}`.
    group_own: &'static str,
    /// The group is its starter's, so only these pids are stopped: `{pgid}`, `{pids}`, `{host}`.
    group_shared: &'static str,
}

const EN: Words = Words {
    who: "{comm} (pid {pid})",
    stuck: "[{host}] stuck: {who} running for {age}{orphan_note}",
    still_stuck: "[{host}] still stuck: {who} running for {age}{orphan_note}",
    over: "[{host}] over: {who} is no longer stuck, after {lasted}",
    orphan_note: ", orphaned",
    stuck_body: "{who} on {host} has been running for {age}, past the limit, since {since}.\n\
                 Command: {cmd}\n{orphan}\n{cost}\n{group}\n  {stop_term}\n\
                 and if it is still there a minute later:\n  {stop_kill}",
    still_stuck_body: "{who} on {host} is still running, {age} now; it has been past the limit \
                       since {since} ({lasted}).\nCommand: {cmd}\n{orphan}\n{cost}\n{group}\n  \
                       {stop_term}\nand if it is still there a minute later:\n  {stop_kill}",
    over_body: "{who} on {host} has exited or is no longer past the limit. It was stuck for \
                {lasted}, since {since}.\nCommand: {cmd}",
    adopted: "Orphaned: adopted by {parent} (pid {ppid}); nothing is waiting for it.",
    leader_gone: "Orphaned: the leader of its process group ({pgid}) is gone; its parent is \
                  {parent} (pid {ppid}).",
    not_orphaned: "Not orphaned: its parent is {parent} (pid {ppid}).",
    cost_one: "CPU: {cpu}% of one core on average over its life; memory: {rss}.",
    cost_many: "CPU: {cpu}% of one core on average, summed over its {n} processes; memory: \
                {rss}.",
    group_own: "To stop its whole process group {pgid} ({n} matching: pids {pids}), run on \
                {host}:",
    group_shared: "Its process group {pgid} is not its own; to stop just these processes (pids \
                   {pids}), run on {host}:",
};

const RU: Words = Words {
    who: "{comm} (pid {pid})",
    stuck: "[{host}] зависло: {who} работает {age}{orphan_note}",
    still_stuck: "[{host}] всё ещё зависло: {who} работает {age}{orphan_note}",
    over: "[{host}] снято: {who} больше не зависает, длилось {lasted}",
    orphan_note: ", осиротел",
    stuck_body: "{who} на {host} работает уже {age} и с {since} превышает порог.\n\
                 Команда: {cmd}\n{orphan}\n{cost}\n{group}\n  {stop_term}\n\
                 и, если через минуту он ещё жив:\n  {stop_kill}",
    still_stuck_body: "{who} на {host} всё ещё работает, уже {age}; порог превышен с {since} \
                       ({lasted}).\nКоманда: {cmd}\n{orphan}\n{cost}\n{group}\n  {stop_term}\n\
                       и, если через минуту он ещё жив:\n  {stop_kill}",
    over_body: "{who} на {host} завершился или больше не превышает порог. Зависание длилось \
                {lasted}, с {since}.\nКоманда: {cmd}",
    adopted: "Осиротел: его усыновил {parent} (pid {ppid}), никто его не ждёт.",
    leader_gone: "Осиротел: лидер его группы процессов ({pgid}) завершился; родитель — {parent} \
                  (pid {ppid}).",
    not_orphaned: "Не осиротел: родитель — {parent} (pid {ppid}).",
    cost_one: "CPU: в среднем {cpu}% одного ядра за всё время; память: {rss}.",
    cost_many: "CPU: в среднем {cpu}% одного ядра в сумме по {n} процессам; память: {rss}.",
    group_own: "Чтобы остановить всю его группу процессов {pgid} (совпало: {n}, pid {pids}), \
                выполните на {host}:",
    group_shared: "Группа процессов {pgid} ему не принадлежит; чтобы остановить только эти \
                   процессы (pid {pids}), выполните на {host}:",
};

fn words(lang: Lang) -> &'static Words {
    match lang {
        Lang::En => &EN,
        Lang::Ru => &RU,
    }
}

pub(super) fn render(alert: &Alert, f: &ProcFacts, host: &str, lang: Lang) -> (String, String) {
    let w = words(lang);
    let members = f.members.clone().unwrap_or_else(|| vec![f.pid]);
    let pids = members
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    let (stop_term, stop_kill) = f.stop.commands().unwrap_or_default();

    // Which sentences apply, whatever the language.
    let orphan = match (f.orphaned, f.adopted) {
        (true, true) => w.adopted,
        (true, false) => w.leader_gone,
        (false, _) => w.not_orphaned,
    };
    let cost = if members.len() == 1 {
        w.cost_one
    } else {
        w.cost_many
    };
    let group = if matches!(f.stop, Stop::Group(_)) {
        w.group_own
    } else {
        w.group_shared
    };
    let orphan_note = if f.orphaned { w.orphan_note } else { "" };
    let (summary, body) = match alert.event {
        EventKind::Fire | EventKind::Test => (w.stuck, w.stuck_body),
        EventKind::Reminder => (w.still_stuck, w.still_stuck_body),
        EventKind::Recovery => (w.over, w.over_body),
    };

    let (pid, ppid, pgid, n) = (
        f.pid.to_string(),
        f.ppid.to_string(),
        f.pgid.to_string(),
        members.len().to_string(),
    );
    let cpu = format!("{:.1}", f.group_cpu_pct.unwrap_or(f.cpu_pct));
    let rss = super::bytes(f.group_rss_bytes.unwrap_or(f.rss_bytes));
    let facts = [
        ("host", host),
        ("pid", &pid),
        ("ppid", &ppid),
        ("pgid", &pgid),
        ("n", &n),
        ("pids", &pids),
        ("parent", f.parent.as_deref().unwrap_or("?")),
        ("cpu", &cpu),
        ("rss", &rss),
        ("comm", &f.comm),
    ];
    let who = fill(w.who, &facts);
    let age = duration(f.age_s, lang);
    let lasted = duration(alert.duration_s(), lang);
    let since = rfc3339(alert.since);
    let (orphan, cost, group) = (
        fill(orphan, &facts),
        fill(cost, &facts),
        fill(group, &facts),
    );
    let vars = [
        ("host", host),
        ("who", &who),
        ("age", &age),
        ("lasted", &lasted),
        ("since", &since),
        ("cmd", &f.cmdline),
        ("orphan_note", orphan_note),
        ("orphan", &orphan),
        ("cost", &cost),
        ("group", &group),
        ("stop_term", &stop_term),
        ("stop_kill", &stop_kill),
    ];
    (fill(summary, &vars), fill(body, &vars))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_fills, every_lang};
    use super::*;
    use crate::model::{Facts, Kind, Reason};

    #[test]
    fn every_proc_template_fills_completely() {
        for lang in every_lang() {
            let Words {
                who,
                stuck,
                still_stuck,
                over,
                orphan_note,
                stuck_body,
                still_stuck_body,
                over_body,
                adopted,
                leader_gone,
                not_orphaned,
                cost_one,
                cost_many,
                group_own,
                group_shared,
            } = words(lang);
            let body: &[&str] = &[
                "who",
                "host",
                "age",
                "since",
                "cmd",
                "orphan",
                "cost",
                "group",
                "stop_term",
                "stop_kill",
            ];
            let reminder = [body, &["lasted"]].concat();
            assert_fills(
                "proc",
                lang,
                &[
                    ("who", who, &["comm", "pid"]),
                    ("stuck", stuck, &["host", "who", "age", "orphan_note"]),
                    (
                        "still_stuck",
                        still_stuck,
                        &["host", "who", "age", "orphan_note"],
                    ),
                    ("over", over, &["host", "who", "lasted"]),
                    ("orphan_note", orphan_note, &[]),
                    ("stuck_body", stuck_body, body),
                    ("still_stuck_body", still_stuck_body, &reminder),
                    (
                        "over_body",
                        over_body,
                        &["who", "host", "lasted", "since", "cmd"],
                    ),
                    ("adopted", adopted, &["parent", "ppid"]),
                    ("leader_gone", leader_gone, &["pgid", "parent", "ppid"]),
                    ("not_orphaned", not_orphaned, &["parent", "ppid"]),
                    ("cost_one", cost_one, &["cpu", "rss"]),
                    ("cost_many", cost_many, &["cpu", "n", "rss"]),
                    ("group_own", group_own, &["pgid", "n", "pids", "host"]),
                    ("group_shared", group_shared, &["pgid", "pids", "host"]),
                ],
            );
        }
    }

    #[test]
    fn a_process_named_like_a_placeholder_is_shown_by_that_name() {
        // What a process calls itself is its to choose: `{host}` must not become the host's
        // name, nor a parent called `{who}` the process's.
        let facts = ProcFacts {
            pid: 7,
            ppid: 1,
            pgid: 7,
            session: 7,
            state: 'S',
            comm: "{host}".into(),
            age_s: 60,
            cmdline: "sleep {age} {stop_kill}".into(),
            orphaned: true,
            adopted: true,
            parent: Some("{who}".into()),
            group_leader_alive: true,
            cpu_pct: 0.0,
            rss_bytes: 0,
            members: None,
            group_cpu_pct: None,
            group_rss_bytes: None,
            stop: Stop::Group(7),
            container: None,
        };
        let alert = Alert {
            event: EventKind::Fire,
            kind: Kind::ProcBlocking,
            entity: "proc:7:1".into(),
            since: 0,
            at: 0,
            facts: Facts::Proc(facts.clone()),
            reason: Reason::First,
        };
        for lang in every_lang() {
            let (summary, body) = render(&alert, &facts, "ci-3", lang);
            assert!(summary.starts_with("[ci-3] "), "{lang:?}: {summary}");
            assert!(summary.contains(" {host} (pid 7) "), "{lang:?}: {summary}");
            assert!(body.starts_with("{host} (pid 7) "), "{lang:?}: {body}");
            assert!(
                body.contains("sleep {age} {stop_kill}\n"),
                "{lang:?}: {body}"
            );
            assert!(body.contains(" {who} (pid 1)"), "{lang:?}: {body}");
            assert!(body.ends_with("kill -KILL -- -7"), "{lang:?}: {body}");
        }
    }
}
