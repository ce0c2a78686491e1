//! The `collector_failing` texts: the watchdog itself cannot see, since when, the last error,
//! what that holds back and what to check; then that it sees again.
//!
//! Owns the words of this kind, one catalogue per language, and the one place that picks
//! between them. Reads only the alert and its facts; the error is shown as the facts carry it,
//! already escaped.

use super::{duration, fill};
use crate::model::{rfc3339, Alert, CollectorFacts, EventKind, Lang};

/// The sentences of a `collector_failing` text.
struct Words {
    /// Summary while it fails: `{host}`, `{name}` (the collector), `{ticks}`.
    failing: &'static str,
    /// Body while it fails: `{name}`, `{host}`, `{ticks}`, `{since}`, `{error}`.
    failing_body: &'static str,
    /// Summary once it works again: `{host}`, `{name}`, `{lasted}`.
    works_again: &'static str,
    /// Body once it works again: `{name}`, `{host}`, `{lasted}`, `{since}`.
    works_again_body: &'static str,
}

const EN: Words = Words {
    failing: "[{host}] watchdog cannot see: the {name} collector failed {ticks} ticks in a row",
    failing_body: "The {name} collector on {host} has failed {ticks} ticks in a row, since \
                   {since}.\nLast error: {error}\nWhile it fails, the alerts it feeds are held: \
                   nothing is recovered and nothing new is found.\nWhat to do: run `watchdog \
                   once` on {host} to see the error; check WATCHDOG_PROC_ROOT, that the \
                   container runs with pid: host (hostPID), and the hidepid option of the /proc \
                   mount.",
    works_again: "[{host}] watchdog sees again: the {name} collector works, after {lasted}",
    works_again_body: "The {name} collector on {host} works again; it could not see for \
                       {lasted}, since {since}.\nAlerts it holds are decided again from this \
                       tick on.",
};

const RU: Words = Words {
    failing: "[{host}] watchdog ослеп: сборщик {name} не работает {ticks} тиков подряд",
    failing_body: "Сборщик {name} на {host} не работает {ticks} тиков подряд, с {since}.\n\
                   Последняя ошибка: {error}\nПока он не работает, его оповещения \
                   удерживаются: ничего не снимается и ничего нового не находится.\nЧто \
                   делать: запустите `watchdog once` на {host}, чтобы увидеть ошибку; \
                   проверьте WATCHDOG_PROC_ROOT, что контейнер запущен с pid: host (hostPID), \
                   и опцию hidepid у монтирования /proc.",
    works_again: "[{host}] watchdog снова видит: сборщик {name} работает, сбой длился {lasted}",
    works_again_body: "Сборщик {name} на {host} снова работает; он не видел {lasted}, с \
                       {since}.\nУдержанные оповещения снова решаются с этого тика.",
};

fn words(lang: Lang) -> &'static Words {
    match lang {
        Lang::En => &EN,
        Lang::Ru => &RU,
    }
}

pub(super) fn render(
    alert: &Alert,
    f: &CollectorFacts,
    host: &str,
    lang: Lang,
) -> (String, String) {
    let w = words(lang);
    let (summary, body) = match alert.event {
        EventKind::Fire | EventKind::Reminder | EventKind::Test => (w.failing, w.failing_body),
        EventKind::Recovery => (w.works_again, w.works_again_body),
    };
    let ticks = f.failed_ticks.to_string();
    let since = rfc3339(alert.since);
    let lasted = duration(alert.duration_s(), lang);
    let vars = [
        ("host", host),
        ("name", &f.collector),
        ("ticks", &ticks),
        ("since", &since),
        ("lasted", &lasted),
        ("error", &f.error),
    ];
    (fill(summary, &vars), fill(body, &vars))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_fills, every_lang};
    use super::*;

    #[test]
    fn every_collector_template_fills_completely() {
        for lang in every_lang() {
            let Words {
                failing,
                failing_body,
                works_again,
                works_again_body,
            } = words(lang);
            assert_fills(
                "collector",
                lang,
                &[
                    ("failing", failing, &["host", "name", "ticks"]),
                    (
                        "failing_body",
                        failing_body,
                        &["name", "host", "ticks", "since", "error"],
                    ),
                    ("works_again", works_again, &["host", "name", "lasted"]),
                    (
                        "works_again_body",
                        works_again_body,
                        &["name", "host", "lasted", "since"],
                    ),
                ],
            );
        }
    }
}
