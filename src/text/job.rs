//! The `agent_hung` and `job_leftover` texts: which job, on which host, why it looks hung or
//! what of it lives on, and the command that stops what is left of it.
//!
//! Owns the words of both job kinds, one catalogue per language, and the one place that
//! decides which of them apply. Reads only the alert's facts, where the signal builder has
//! already decided which kill command is safe (none for a reused or vanished pid); never
//! decides that itself.

use super::{duration, fill};
use crate::model::{rfc3339, Alert, EventKind, HungReason, JobFacts, Kind, Lang};

/// The sentences of a job text. `{job}` is the job as people know it (`named`), `{id}` its id
/// alone; both, `{state}` and `{comm}` are shown as the facts carry them, already escaped.
struct Words {
    /// `{id}`, `{name}`: a job that has a name.
    named: &'static str,
    /// Summary of a hung job: `{host}`, `{job}`, `{why}`.
    hung: &'static str,
    /// Body of a hung job: `{job}`, `{host}`, `{state}`, `{age}`, `{pids}`, `{why}`, `{id}`,
    /// then `{stop}`: the stop lines, or nothing.
    hung_body: &'static str,
    /// First of its stop lines: `{host}`.
    hung_stop: &'static str,
    /// Before its SIGKILL command.
    hung_stop_later: &'static str,
    /// Summary once it no longer looks hung: `{host}`, `{job}`, `{lasted}`.
    hung_over: &'static str,
    /// `{job}`, `{host}`, `{lasted}`, `{since}`.
    hung_over_body: &'static str,
    /// Summary of an ended job's leftovers: `{host}`, `{job}`, `{ended}`, `{n}`.
    leftover: &'static str,
    /// `{job}`, `{host}`, `{ended}`, `{members}` (their pids), then `{stop}`.
    leftover_body: &'static str,
    /// First of its stop lines: `{host}`.
    leftover_stop: &'static str,
    /// Before its SIGKILL command.
    leftover_stop_later: &'static str,
    /// Summary once nothing of it is left: `{host}`, `{job}`.
    leftover_over: &'static str,
    /// `{job}`, `{host}`, `{lasted}`, `{since}`.
    leftover_over_body: &'static str,
    /// The orchestrator's pid differs from the host's: `{pid}`, `{host_pid}`.
    pid_both: &'static str,
    /// `{pid}`.
    pid_one: &'static str,
    /// The orchestrator gave no pid.
    no_pid: &'static str,
    /// `{pid}`.
    reason_pid_gone: &'static str,
    /// `{pid}`, `{comm}`: what the pid is now.
    reason_pid_reused: &'static str,
    /// `{age}`.
    reason_running_too_long: &'static str,
    /// `{heartbeat}`: how old its last heartbeat is.
    reason_heartbeat_stale: &'static str,
}

const EN: Words = Words {
    named: "{id} ({name})",
    hung: "[{host}] job {job} looks hung: {why}",
    hung_body: "Job {job} on {host} says \"{state}\" and has run for {age} ({pids}).\nWhy: \
                {why}.\nWhat to do: check the agent of job {id} in the orchestrator; if it is \
                dead, mark the job failed so its slot is freed.{stop}",
    hung_stop: "To stop what is left of it, run on {host}:",
    hung_stop_later: "and if it is still there a minute later:",
    hung_over: "[{host}] over: job {job} no longer looks hung, after {lasted}",
    hung_over_body: "Job {job} on {host} ended or looks alive again; it looked hung for \
                     {lasted}, since {since}.",
    leftover: "[{host}] job {job} ended {ended} ago but {n} of its processes live on",
    leftover_body: "Job {job} on {host} ended {ended} ago, and processes of its own process \
                    group or session are still running: pids {members}.\nLeft alone they are \
                    the stuck work of tomorrow: they hold CPU and memory the next runs \
                    need.{stop}",
    leftover_stop: "To stop them, run on {host}:",
    leftover_stop_later: "and if they are still there a minute later:",
    leftover_over: "[{host}] over: job {job} has no process left",
    leftover_over_body: "Nothing of job {job} on {host} is running any more; its leftovers \
                         lasted {lasted}, since {since}.",
    pid_both: "pid {pid} (the orchestrator's), {host_pid} on the host",
    pid_one: "pid {pid}",
    no_pid: "no pid",
    reason_pid_gone: "its process {pid} is gone",
    reason_pid_reused: "pid {pid} now belongs to another process ({comm}) that started after \
                        the job",
    reason_running_too_long: "it has run for {age}, past the limit",
    reason_heartbeat_stale: "its last heartbeat is {heartbeat} old",
};

const RU: Words = Words {
    named: "{id} ({name})",
    hung: "[{host}] задача {job} похоже зависла: {why}",
    hung_body: "Задача {job} на {host} в состоянии \"{state}\" уже {age} ({pids}).\nПочему: \
                {why}.\nЧто делать: проверьте агента задачи {id} в оркестраторе; если он \
                мёртв, пометьте задачу как упавшую, чтобы её место освободилось.{stop}",
    hung_stop: "Чтобы остановить то, что от неё осталось, выполните на {host}:",
    hung_stop_later: "и, если через минуту оно ещё живо:",
    hung_over: "[{host}] снято: задача {job} больше не выглядит зависшей, длилось {lasted}",
    hung_over_body: "Задача {job} на {host} завершилась или снова подаёт признаки жизни; она \
                     выглядела зависшей {lasted}, с {since}.",
    leftover: "[{host}] задача {job} завершилась {ended} назад, но {n} её процессов живы",
    leftover_body: "Задача {job} на {host} завершилась {ended} назад, а процессы её \
                    собственной группы или сессии всё ещё работают: pid {members}.\nЕсли их не \
                    остановить, они займут CPU и память, нужные следующим запускам.{stop}",
    leftover_stop: "Чтобы их остановить, выполните на {host}:",
    leftover_stop_later: "и, если через минуту они ещё живы:",
    leftover_over: "[{host}] снято: от задачи {job} не осталось процессов",
    leftover_over_body: "От задачи {job} на {host} больше ничего не работает; остатки жили \
                         {lasted}, с {since}.",
    pid_both: "pid {pid} (у оркестратора), {host_pid} на хосте",
    pid_one: "pid {pid}",
    no_pid: "без pid",
    reason_pid_gone: "её процесс {pid} исчез",
    reason_pid_reused: "pid {pid} теперь у другого процесса ({comm}), запущенного после задачи",
    reason_running_too_long: "она работает {age}, дольше предела",
    reason_heartbeat_stale: "последний пульс был {heartbeat} назад",
};

fn words(lang: Lang) -> &'static Words {
    match lang {
        Lang::En => &EN,
        Lang::Ru => &RU,
    }
}

pub(super) fn render(alert: &Alert, f: &JobFacts, host: &str, lang: Lang) -> (String, String) {
    let w = words(lang);
    // Which text applies, whatever the language: a recovery has no stop lines.
    let (summary, body, stop) = match (alert.kind, alert.event) {
        (Kind::JobLeftover, EventKind::Recovery) => (w.leftover_over, w.leftover_over_body, None),
        (Kind::JobLeftover, _) => (
            w.leftover,
            w.leftover_body,
            Some((w.leftover_stop, w.leftover_stop_later)),
        ),
        (_, EventKind::Recovery) => (w.hung_over, w.hung_over_body, None),
        (_, _) => (w.hung, w.hung_body, Some((w.hung_stop, w.hung_stop_later))),
    };
    let stop = match (stop, f.stop.commands()) {
        (Some((intro, later)), Some((term, kill))) => {
            let intro = fill(intro, &[("host", host)]);
            format!("\n{intro}\n  {term}\n{later}\n  {kill}")
        }
        _ => String::new(),
    };

    let (pid, host_pid) = (
        f.pid.map(|p| p.to_string()).unwrap_or_default(),
        f.host_pid.map(|p| p.to_string()).unwrap_or_default(),
    );
    let pids = match (f.pid, f.host_pid) {
        (Some(pid), Some(host_pid)) if pid != host_pid => w.pid_both,
        (Some(_), _) => w.pid_one,
        (None, _) => w.no_pid,
    };
    let job = match &f.name {
        Some(name) => fill(w.named, &[("id", &f.job), ("name", name)]),
        None => f.job.clone(),
    };
    let age = duration(f.age_s, lang);
    let heartbeat = duration(f.heartbeat_age_s.unwrap_or(0), lang);
    let facts = [
        ("pid", pid.as_str()),
        ("host_pid", &host_pid),
        ("comm", f.pid_comm.as_deref().unwrap_or("?")),
        ("age", &age),
        ("heartbeat", &heartbeat),
    ];
    let why = f
        .reasons
        .iter()
        .map(|reason| fill(reason_words(w, *reason), &facts))
        .collect::<Vec<_>>()
        .join("; ");
    let members = f
        .members
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    let vars = [
        ("host", host),
        ("job", &job),
        ("id", &f.job),
        ("state", &f.state),
        ("age", &age),
        ("pids", &fill(pids, &facts)),
        ("why", &why),
        ("lasted", &duration(alert.duration_s(), lang)),
        ("since", &rfc3339(alert.since)),
        ("ended", &duration(f.ended_s.unwrap_or(0), lang)),
        ("n", &f.members.len().to_string()),
        ("members", &members),
        ("stop", &stop),
    ];
    (fill(summary, &vars), fill(body, &vars))
}

fn reason_words(w: &Words, reason: HungReason) -> &'static str {
    match reason {
        HungReason::PidGone => w.reason_pid_gone,
        HungReason::PidReused => w.reason_pid_reused,
        HungReason::RunningTooLong => w.reason_running_too_long,
        HungReason::HeartbeatStale => w.reason_heartbeat_stale,
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_fills, every_lang};
    use super::*;

    #[test]
    fn every_job_template_fills_completely() {
        for lang in every_lang() {
            let Words {
                named,
                hung,
                hung_body,
                hung_stop,
                hung_stop_later,
                hung_over,
                hung_over_body,
                leftover,
                leftover_body,
                leftover_stop,
                leftover_stop_later,
                leftover_over,
                leftover_over_body,
                pid_both,
                pid_one,
                no_pid,
                reason_pid_gone,
                reason_pid_reused,
                reason_running_too_long,
                reason_heartbeat_stale,
            } = words(lang);
            let hung_body_names: &[&str] =
                &["job", "host", "state", "age", "pids", "why", "id", "stop"];
            let over: &[&str] = &["job", "host", "lasted", "since"];
            assert_fills(
                "job",
                lang,
                &[
                    ("named", named, &["id", "name"]),
                    ("hung", hung, &["host", "job", "why"]),
                    ("hung_body", hung_body, hung_body_names),
                    ("hung_stop", hung_stop, &["host"]),
                    ("hung_stop_later", hung_stop_later, &[]),
                    ("hung_over", hung_over, &["host", "job", "lasted"]),
                    ("hung_over_body", hung_over_body, over),
                    ("leftover", leftover, &["host", "job", "ended", "n"]),
                    (
                        "leftover_body",
                        leftover_body,
                        &["job", "host", "ended", "members", "stop"],
                    ),
                    ("leftover_stop", leftover_stop, &["host"]),
                    ("leftover_stop_later", leftover_stop_later, &[]),
                    ("leftover_over", leftover_over, &["host", "job"]),
                    ("leftover_over_body", leftover_over_body, over),
                    ("pid_both", pid_both, &["pid", "host_pid"]),
                    ("pid_one", pid_one, &["pid"]),
                    ("no_pid", no_pid, &[]),
                    ("reason_pid_gone", reason_pid_gone, &["pid"]),
                    ("reason_pid_reused", reason_pid_reused, &["pid", "comm"]),
                    ("reason_running_too_long", reason_running_too_long, &["age"]),
                    (
                        "reason_heartbeat_stale",
                        reason_heartbeat_stale,
                        &["heartbeat"],
                    ),
                ],
            );
        }
    }
}
