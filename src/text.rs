//! Alert texts a person can act on, in English and Russian.
//!
//! Owns the one-line summary and the body of every event kind: what is stuck, on which host,
//! since when, what it costs, whether it was orphaned and by whom, and what to run about it.
//! Pure: an alert, a host and a language in, two strings out. Channels escape them for their
//! own markup; nothing here is markup, and nothing here reads a file, the clock or the config.
//!
//! Each kind has one module and one catalogue of words per language in it: a `Words` struct of
//! sentence templates with named placeholders (`"[{host}] stuck: {who} running for {age}"`), a
//! `const EN: Words`, a `const RU: Words` and one `fn words(lang) -> &'static Words`. Which
//! sentence applies (orphaned or adopted, a group of its own or a shared one, one member or
//! many, which event) is decided once per kind, in code that names no language; `fill` puts
//! the values in. Adding a language is one more `const` per kind and one more arm in each
//! `words()` (the compiler points at every one); the catalogue tests, which cover each
//! language their `every_lang()` lists, then check that every template of it fills completely.
//!
//! - `proc`: `proc_blocking`;
//! - `job`: `agent_hung` and `job_leftover`;
//! - `pressure`: `host_pressure`;
//! - `collector`: `collector_failing`;
//! - `test_alert`: the `watchdog test-alert` event;
//! - `container`: where a process runs (its container, pod or unit), for every kind above;
//! - `units`: durations and sizes.

mod collector;
mod container;
mod job;
mod pressure;
mod proc;
mod test_alert;
mod units;

use crate::model::{Alert, Facts, Lang};

pub use container::place;
pub use units::{bytes, duration};

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
            let (summary, text) = proc::render(alert, facts, host, lang);
            let text = container::with_place(text, facts.container.as_ref(), lang);
            (summary, text)
        }
        Facts::Collector(facts) => collector::render(alert, facts, host, lang),
        Facts::Job(facts) => {
            let (summary, text) = job::render(alert, facts, host, lang);
            let text = container::with_place(text, facts.container.as_ref(), lang);
            (summary, text)
        }
        Facts::Pressure(facts) => pressure::render(alert, facts, host, lang),
        Facts::Test(_) => test_alert::render(alert, host, lang),
    }
}

/// `template` with every `{name}` of `vars` replaced by its value, in one pass from left to
/// right.
///
/// A value is copied as it is and never read again: a process that calls itself `{host}` is
/// shown as `{host}`, not as the host's name. A brace that opens no name of `vars` is kept as
/// written; the catalogue tests make sure no template has one.
fn fill(template: &str, vars: &[(&str, &str)]) -> String {
    let room = vars.iter().map(|(_, value)| value.len()).sum::<usize>();
    let mut out = String::with_capacity(template.len() + room);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let known = after.find('}').and_then(|close| {
            let name = &after[..close];
            let value = vars.iter().find(|(n, _)| *n == name)?.1;
            Some((value, close))
        });
        match known {
            Some((value, close)) => {
                out.push_str(value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_puts_each_value_in_its_place() {
        let vars = [("host", "ci-3"), ("who", "pytest (pid 7)")];
        assert_eq!(
            fill("[{host}] stuck: {who}; {who} on {host}", &vars),
            "[ci-3] stuck: pytest (pid 7); pytest (pid 7) on ci-3"
        );
        assert_eq!(fill("no placeholder", &vars), "no placeholder");
        assert_eq!(fill("{host}", &vars), "ci-3");
        assert_eq!(fill("", &vars), "");
    }

    #[test]
    fn a_value_that_looks_like_a_placeholder_is_shown_as_it_is() {
        // A process may name itself `{host}`: its name must not turn into the host's, nor may
        // a value written earlier be expanded by a later one.
        let vars = [
            ("who", "{host} {who} {"),
            ("host", "ci-3"),
            ("age", "}{age}"),
        ];
        assert_eq!(
            fill("{who} on {host} for {age}", &vars),
            "{host} {who} { on ci-3 for }{age}"
        );
    }

    #[test]
    fn a_brace_that_names_nothing_is_kept_as_written() {
        let vars = [("host", "ci-3")];
        assert_eq!(fill("{nope} {host}", &vars), "{nope} ci-3");
        assert_eq!(fill("{ {host} }", &vars), "{ ci-3 }");
        assert_eq!(fill("open {host", &vars), "open {host");
        assert_eq!(fill("{{host}}", &vars), "{ci-3}");
        assert_eq!(fill("пульс {host}…", &vars), "пульс ci-3…");
    }

    /// Every language there is. A language added to [`Lang`] stops this from compiling until
    /// it is listed, so every catalogue test covers it.
    pub(super) fn every_lang() -> [Lang; 2] {
        let _every_arm = |lang: Lang| match lang {
            Lang::En | Lang::Ru => (),
        };
        [Lang::En, Lang::Ru]
    }

    /// Fails unless each template, filled with its documented names, leaves no brace: a typo in
    /// a placeholder, or a name the code does not pass, would reach people as `{typo}`.
    pub(super) fn assert_fills(kind: &str, lang: Lang, templates: &[(&str, &str, &[&str])]) {
        for (field, template, names) in templates {
            let vars: Vec<(&str, &str)> = names.iter().map(|name| (*name, "·")).collect();
            let filled = fill(template, &vars);
            assert!(
                !filled.contains('{') && !filled.contains('}'),
                "{kind} {lang:?} {field}: {template:?} has a placeholder outside {names:?}"
            );
            assert!(!template.is_empty(), "{kind} {lang:?} {field} is empty");
        }
    }
}
