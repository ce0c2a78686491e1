//! Durations and sizes as people read them: `2h05m`, `2 ч 05 мин`, `8.0 MiB`.
//!
//! Owns the unit words of a duration, one catalogue per language, and the binary size units
//! (the same in every language). Pure: a number in, a string out.

use super::fill;
use crate::model::Lang;

/// The shapes of a duration: its two largest units, the smaller one zero-padded to two
/// digits.
struct Words {
    /// `{d}` days, `{h}` hours.
    days: &'static str,
    /// `{h}` hours, `{m}` minutes.
    hours: &'static str,
    /// `{m}` minutes, `{s}` seconds.
    minutes: &'static str,
    /// `{s}` seconds.
    seconds: &'static str,
}

const EN: Words = Words {
    days: "{d}d{h}h",
    hours: "{h}h{m}m",
    minutes: "{m}m{s}s",
    seconds: "{s}s",
};

const RU: Words = Words {
    days: "{d} д {h} ч",
    hours: "{h} ч {m} мин",
    minutes: "{m} мин {s} с",
    seconds: "{s} с",
};

fn words(lang: Lang) -> &'static Words {
    match lang {
        Lang::En => &EN,
        Lang::Ru => &RU,
    }
}

/// `2h05m`, `4d03h`, `59s` (English); `2 ч 05 мин`, `4 д 03 ч`, `59 с` (Russian).
pub fn duration(seconds: u64, lang: Lang) -> String {
    let w = words(lang);
    let (d, h, m, s) = (
        seconds / 86400,
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60,
    );
    let pad = |v: u64| format!("{v:02}");
    let (template, vars) = match (d, h, m) {
        (0, 0, 0) => (w.seconds, vec![("s", s.to_string())]),
        (0, 0, _) => (w.minutes, vec![("m", m.to_string()), ("s", pad(s))]),
        (0, _, _) => (w.hours, vec![("h", h.to_string()), ("m", pad(m))]),
        _ => (w.days, vec![("d", d.to_string()), ("h", pad(h))]),
    };
    let vars: Vec<(&str, &str)> = vars.iter().map(|(n, v)| (*n, v.as_str())).collect();
    fill(template, &vars)
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

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_fills, every_lang};
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

    #[test]
    fn every_unit_template_fills_completely() {
        for lang in every_lang() {
            let Words {
                days,
                hours,
                minutes,
                seconds,
            } = words(lang);
            assert_fills(
                "units",
                lang,
                &[
                    ("days", days, &["d", "h"]),
                    ("hours", hours, &["h", "m"]),
                    ("minutes", minutes, &["m", "s"]),
                    ("seconds", seconds, &["s"]),
                ],
            );
        }
    }
}
