//! The text of `watchdog test-alert`: this channel works, nothing is wrong.
//!
//! Owns its words, one catalogue per language. Reads the alert's time and the host; says
//! nothing about the host's state.

use super::fill;
use crate::model::{rfc3339, Alert, Lang};

/// The sentences of a test event.
struct Words {
    /// `{host}`.
    summary: &'static str,
    /// `{host}`, `{at}`: when it was sent.
    body: &'static str,
}

const EN: Words = Words {
    summary: "[{host}] watchdog test alert: this channel works",
    body: "Sent by `watchdog test-alert` on {host} at {at}. Nothing is wrong; no action is \
           needed.",
};

const RU: Words = Words {
    summary: "[{host}] тестовое оповещение watchdog: канал работает",
    body: "Отправлено командой `watchdog test-alert` на {host} в {at}. Всё в порядке, ничего \
           делать не нужно.",
};

fn words(lang: Lang) -> &'static Words {
    match lang {
        Lang::En => &EN,
        Lang::Ru => &RU,
    }
}

pub(super) fn render(alert: &Alert, host: &str, lang: Lang) -> (String, String) {
    let w = words(lang);
    let at = rfc3339(alert.at);
    let vars = [("host", host), ("at", at.as_str())];
    (fill(w.summary, &vars), fill(w.body, &vars))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_fills, every_lang};
    use super::*;

    #[test]
    fn every_test_alert_template_fills_completely() {
        for lang in every_lang() {
            let Words { summary, body } = words(lang);
            assert_fills(
                "test_alert",
                lang,
                &[
                    ("summary", summary, &["host"]),
                    ("body", body, &["host", "at"]),
                ],
            );
        }
    }
}
