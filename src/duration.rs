//! The one parser of the durations people type: `90s`, `30m`, `2h`, `1d`, `7d`, or bare seconds.
//!
//! Owns [`parse`] and its typed [`DurationError`]. It reads nothing and imports nothing from the
//! rest of the crate, so it can live in a model layer that every command shares (`guard
//! --timeout`, `history --since`). It never guesses: no fractions, no compound forms (`1h30m`),
//! no months or milliseconds, no whitespace, no sign. What it refuses, the error names.

use std::time::Duration;

/// Why a text is not a duration. Each variant carries the text as given, so a message can quote
/// it without the caller having to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration: expected a whole number with s, m, h or d, e.g. 90s, 30m, 2h, 7d")]
    Empty,
    #[error("negative duration '{0}': a duration is 0 or more")]
    Negative(String),
    #[error("no number in '{0}': expected a whole number first, e.g. 90s, 30m, 2h, 7d")]
    NoNumber(String),
    #[error("unknown unit '{unit}' in '{text}': use s, m, h or d (or no unit for seconds)")]
    UnknownUnit { unit: String, text: String },
    #[error("duration '{0}' is too large")]
    Overflow(String),
}

/// Seconds in one of each unit; a bare number is seconds.
fn unit_seconds(unit: &str) -> Option<u64> {
    match unit {
        "" | "s" => Some(1),
        "m" => Some(60),
        "h" => Some(60 * 60),
        "d" => Some(24 * 60 * 60),
        _ => None,
    }
}

/// Parses a whole number of seconds, minutes, hours or days: `90s`, `30m`, `2h`, `7d`, `45`.
///
/// # Errors
/// [`DurationError`] when the text is empty, negative, has no number, has a unit other than
/// `s`, `m`, `h` or `d`, or is more seconds than a `u64` holds.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    if text.starts_with('-') {
        return Err(DurationError::Negative(text.to_string()));
    }
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(DurationError::NoNumber(text.to_string()));
    }
    // The digits are ASCII, so this split falls on a char boundary.
    let (number, unit) = text.split_at(digits);
    let per_unit = unit_seconds(unit).ok_or_else(|| DurationError::UnknownUnit {
        unit: unit.to_string(),
        text: text.to_string(),
    })?;
    // Only digits remain, so the one way this fails is a number too large for a u64.
    let count: u64 = number
        .parse()
        .map_err(|_| DurationError::Overflow(text.to_string()))?;
    let seconds = count
        .checked_mul(per_unit)
        .ok_or_else(|| DurationError::Overflow(text.to_string()))?;
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Result<Duration, DurationError> {
        Ok(Duration::from_secs(n))
    }

    #[test]
    fn each_unit_and_bare_seconds() {
        let cases = [
            ("90s", secs(90)),
            ("30m", secs(1800)),
            ("2h", secs(7200)),
            ("24h", secs(86_400)),
            ("1d", secs(86_400)),
            ("7d", secs(604_800)),
            ("45", secs(45)),
            ("0", secs(0)),
            ("0s", secs(0)),
            ("007m", secs(420)),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text), want, "{text}");
        }
    }

    #[test]
    fn refusals_say_what_was_wrong() {
        let unknown = |unit: &str, text: &str| DurationError::UnknownUnit {
            unit: unit.into(),
            text: text.into(),
        };
        let cases = [
            ("", DurationError::Empty),
            ("-5s", DurationError::Negative("-5s".into())),
            ("-0", DurationError::Negative("-0".into())),
            ("s", DurationError::NoNumber("s".into())),
            ("+5s", DurationError::NoNumber("+5s".into())),
            (" 5s", DurationError::NoNumber(" 5s".into())),
            ("5 s", unknown(" s", "5 s")),
            ("5s ", unknown("s ", "5s ")),
            ("1.5h", unknown(".5h", "1.5h")),
            ("1h30m", unknown("h30m", "1h30m")),
            ("5ms", unknown("ms", "5ms")),
            ("5M", unknown("M", "5M")),
            ("5w", unknown("w", "5w")),
            ("5y", unknown("y", "5y")),
            ("5é", unknown("é", "5é")),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text), Err(want), "{text:?}");
        }
    }

    #[test]
    fn the_largest_duration_of_each_unit_and_one_more() {
        // u64::MAX seconds = 18446744073709551615; the floor of it over 60, 3600 and 86400.
        let cases = [
            ("18446744073709551615", Some(u64::MAX)),
            ("18446744073709551616", None),
            ("18446744073709551615s", Some(u64::MAX)),
            ("18446744073709551616s", None),
            ("307445734561825860m", Some(307_445_734_561_825_860 * 60)),
            ("307445734561825861m", None),
            ("5124095576030431h", Some(5_124_095_576_030_431 * 3600)),
            ("5124095576030432h", None),
            ("213503982334601d", Some(213_503_982_334_601 * 86_400)),
            ("213503982334602d", None),
            ("99999999999999999999999d", None),
        ];
        for (text, want) in cases {
            let got = parse(text);
            match want {
                Some(n) => assert_eq!(got, secs(n), "{text}"),
                None => assert_eq!(got, Err(DurationError::Overflow(text.into())), "{text}"),
            }
        }
    }

    #[test]
    fn messages_quote_the_text_and_name_the_fix() {
        assert_eq!(
            parse("1.5h").unwrap_err().to_string(),
            "unknown unit '.5h' in '1.5h': use s, m, h or d (or no unit for seconds)"
        );
        assert_eq!(
            parse("-5s").unwrap_err().to_string(),
            "negative duration '-5s': a duration is 0 or more"
        );
        assert!(parse("")
            .unwrap_err()
            .to_string()
            .starts_with("empty duration"));
        assert_eq!(
            parse("213503982334602d").unwrap_err().to_string(),
            "duration '213503982334602d' is too large"
        );
    }
}
