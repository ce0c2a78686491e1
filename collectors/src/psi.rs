//! The pure parser of the kernel's pressure stall information (PSI) files.
//!
//! Owns the grammar of `/proc/pressure/{cpu,memory,io}`: a `some` line and an optional `full`
//! line of `key=value` pairs (`avg10`, `avg60`, `avg300` in percent, `total` in microseconds).
//! It reads nothing and keeps nothing: [`crate::pressure`] reads the files and hands their text
//! here. It never guesses: text that is not PSI is an error, never a zero, because a zero would
//! read as a calm host.

/// The most a PSI average can be: the share of time, in percent, that tasks stalled.
const MAX_PCT: f64 = 100.0;

/// How much of an offending value an error quotes.
const QUOTE_CHARS: usize = 32;

/// One line of a PSI file: the share of wall time, in percent, over the last 10, 60 and 300
/// seconds during which some (or all) runnable tasks stalled on the resource.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PsiLine {
    pub avg10: f64,
    pub avg60: f64,
    pub avg300: f64,
    /// Total stall time in microseconds, when the line gives it.
    pub total_us: Option<u64>,
}

/// A whole PSI file. `full` is missing from `cpu` on kernels before 5.13.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Psi {
    pub some: PsiLine,
    pub full: Option<PsiLine>,
}

/// Why a text is not a PSI file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PsiError {
    #[error("line {line}: starts with {found:?}, not `some` or `full`")]
    UnknownLine { line: usize, found: String },
    #[error("line {line}: a second `{kind}` line")]
    DuplicateLine { line: usize, kind: &'static str },
    #[error("line {line}: {token:?} is not key=value")]
    NotKeyValue { line: usize, token: String },
    #[error("line {line}: `{key}` given twice")]
    DuplicateKey { line: usize, key: &'static str },
    #[error("line {line}: `{key}` is missing")]
    MissingKey { line: usize, key: &'static str },
    #[error("line {line}: `{key}={value}` is not a percentage from 0 to 100")]
    BadAverage {
        line: usize,
        key: &'static str,
        value: String,
    },
    #[error("line {line}: `total={value}` is not a count of microseconds")]
    BadTotal { line: usize, value: String },
    #[error("a `full` line without a `some` line")]
    NoSomeLine,
}

/// Parses the text of one PSI file.
///
/// Returns `Ok(None)` for a file with nothing in it but whitespace: the kernel gives no data
/// there (some container file systems do that), which is not the same as a calm resource.
/// Keys other than `avg10`, `avg60`, `avg300` and `total` are ignored, so a future kernel that
/// adds one still parses.
///
/// # Errors
/// Any line that is not `some`/`full` followed by `key=value` pairs; a repeated line or key; a
/// missing average; an average that is not a finite number from 0 to 100 (`NaN`, `inf`, `1e9`
/// and `-1` all fail); a `total` that is not an unsigned 64-bit count; `full` without `some`.
pub fn parse(text: &str) -> Result<Option<Psi>, PsiError> {
    let mut some = None;
    let mut full = None;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let mut tokens = raw.split_ascii_whitespace();
        let Some(kind) = tokens.next() else {
            continue;
        };
        let slot = match kind {
            "some" => &mut some,
            "full" => &mut full,
            other => {
                return Err(PsiError::UnknownLine {
                    line,
                    found: quote(other),
                })
            }
        };
        if slot.is_some() {
            return Err(PsiError::DuplicateLine {
                line,
                kind: if kind == "some" { "some" } else { "full" },
            });
        }
        *slot = Some(parse_line(line, tokens)?);
    }
    match (some, full) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(PsiError::NoSomeLine),
        (Some(some), full) => Ok(Some(Psi { some, full })),
    }
}

fn parse_line<'a>(line: usize, tokens: impl Iterator<Item = &'a str>) -> Result<PsiLine, PsiError> {
    let mut avg10 = None;
    let mut avg60 = None;
    let mut avg300 = None;
    let mut total_us = None;
    for token in tokens {
        let Some((key, value)) = token.split_once('=') else {
            return Err(PsiError::NotKeyValue {
                line,
                token: quote(token),
            });
        };
        match key {
            "avg10" => set_average(line, "avg10", value, &mut avg10)?,
            "avg60" => set_average(line, "avg60", value, &mut avg60)?,
            "avg300" => set_average(line, "avg300", value, &mut avg300)?,
            "total" => {
                if total_us.is_some() {
                    return Err(PsiError::DuplicateKey { line, key: "total" });
                }
                // `u64::from_str` accepts a leading `+`; the kernel never writes one.
                let parsed = value
                    .bytes()
                    .all(|b| b.is_ascii_digit())
                    .then(|| value.parse::<u64>().ok())
                    .flatten();
                total_us = Some(parsed.ok_or_else(|| PsiError::BadTotal {
                    line,
                    value: quote(value),
                })?);
            }
            _ => {}
        }
    }
    let require = |value: Option<f64>, key| value.ok_or(PsiError::MissingKey { line, key });
    Ok(PsiLine {
        avg10: require(avg10, "avg10")?,
        avg60: require(avg60, "avg60")?,
        avg300: require(avg300, "avg300")?,
        total_us,
    })
}

fn set_average(
    line: usize,
    key: &'static str,
    value: &str,
    slot: &mut Option<f64>,
) -> Result<(), PsiError> {
    if slot.is_some() {
        return Err(PsiError::DuplicateKey { line, key });
    }
    *slot = Some(parse_average(value).ok_or_else(|| PsiError::BadAverage {
        line,
        key,
        value: quote(value),
    })?);
    Ok(())
}

/// A PSI average as the kernel prints it (`83.40`), within 0..=100.
fn parse_average(value: &str) -> Option<f64> {
    plain_decimal(value).filter(|parsed| *parsed <= MAX_PCT)
}

/// A non-negative decimal as the kernel prints one (`83.40`, `3`): digits and at most one dot,
/// so Rust's float grammar (`inf`, `NaN`, `1e2`, `+5`, `-0`) cannot slip through; finite.
pub(crate) fn plain_decimal(value: &str) -> Option<f64> {
    let plain = value.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && value.bytes().filter(|&b| b == b'.').count() <= 1
        && value.bytes().any(|b| b.is_ascii_digit());
    if !plain {
        return None;
    }
    let parsed: f64 = value.parse().ok()?;
    parsed.is_finite().then_some(parsed)
}

/// The start of an offending token, for an error message that stays one line.
fn quote(token: &str) -> String {
    token.chars().take(QUOTE_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPU_6_18: &str = "some avg10=2.68 avg60=7.50 avg300=6.89 total=37810520\n\
                            full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";

    #[test]
    fn a_kernel_file_parses_both_lines() {
        let psi = parse(CPU_6_18).unwrap().unwrap();
        assert_eq!(
            psi.some,
            PsiLine {
                avg10: 2.68,
                avg60: 7.50,
                avg300: 6.89,
                total_us: Some(37_810_520)
            }
        );
        assert_eq!(psi.full.map(|f| f.avg60), Some(0.0));
    }

    #[test]
    fn a_cpu_file_from_before_5_13_has_no_full_line() {
        let psi = parse("some avg10=0.00 avg60=1.25 avg300=3.00 total=42\n")
            .unwrap()
            .unwrap();
        assert_eq!(psi.some.avg60, 1.25);
        assert_eq!(psi.full, None);
    }

    #[test]
    fn an_empty_file_is_no_data_not_zero() {
        for text in ["", "\n", "  \n\t\n"] {
            assert_eq!(parse(text), Ok(None), "{text:?}");
        }
    }

    #[test]
    fn the_boundaries_of_a_percentage_parse() {
        for (value, expected) in [
            ("0", 0.0),
            ("0.00", 0.0),
            ("100.00", 100.0),
            ("99.99", 99.99),
        ] {
            let text = format!("some avg10={value} avg60={value} avg300={value} total=0");
            let psi = parse(&text).unwrap().unwrap();
            assert_eq!(psi.some.avg60, expected, "{value}");
        }
    }

    #[test]
    fn unknown_keys_are_ignored_and_total_is_optional() {
        let psi = parse("some avg10=1.00 avg60=2.00 avg600=9.00 avg300=3.00 peak=7")
            .unwrap()
            .unwrap();
        assert_eq!((psi.some.avg60, psi.some.total_us), (2.0, None));
    }

    #[test]
    fn whitespace_around_tokens_is_tolerated() {
        let psi = parse("  some\tavg10=1.00  avg60=2.00 avg300=3.00 total=5  \r\n")
            .unwrap()
            .unwrap();
        assert_eq!(psi.some.total_us, Some(5));
    }

    #[test]
    fn garbage_is_an_error_never_a_panic_or_a_zero() {
        let ok_some = "some avg10=1.00 avg60=2.00 avg300=3.00 total=5";
        let cases: &[(&str, &str)] = &[
            ("a word", "hello world"),
            ("a number", "42"),
            ("no values", "some"),
            ("no equals", "some avg10 avg60=1 avg300=1"),
            ("empty value", "some avg10= avg60=1 avg300=1"),
            ("missing avg60", "some avg10=1.00 avg300=3.00 total=5"),
            ("missing avg300", "some avg10=1.00 avg60=3.00"),
            ("NaN", "some avg10=NaN avg60=1 avg300=1"),
            ("nan", "some avg10=1 avg60=nan avg300=1"),
            ("inf", "some avg10=1 avg60=inf avg300=1"),
            ("infinity", "some avg10=1 avg60=1 avg300=infinity"),
            ("exponent", "some avg10=1 avg60=1e1 avg300=1"),
            ("sign", "some avg10=+1 avg60=1 avg300=1"),
            ("negative", "some avg10=-0.5 avg60=1 avg300=1"),
            ("over 100", "some avg10=100.01 avg60=1 avg300=1"),
            (
                "huge",
                "some avg10=1 avg60=99999999999999999999999999999999 avg300=1",
            ),
            ("two dots", "some avg10=1.0.0 avg60=1 avg300=1"),
            ("a lone dot", "some avg10=. avg60=1 avg300=1"),
            ("hex", "some avg10=0x10 avg60=1 avg300=1"),
            ("total negative", "some avg10=1 avg60=1 avg300=1 total=-1"),
            (
                "total huge",
                "some avg10=1 avg60=1 avg300=1 total=18446744073709551616",
            ),
            ("total float", "some avg10=1 avg60=1 avg300=1 total=1.5"),
            ("total plus", "some avg10=1 avg60=1 avg300=1 total=+5"),
            ("duplicate key", "some avg10=1 avg60=1 avg60=2 avg300=1"),
            (
                "duplicate total",
                "some avg10=1 avg60=1 avg300=1 total=1 total=2",
            ),
            ("full only", "full avg10=1 avg60=1 avg300=1"),
            ("unknown line", "half avg10=1 avg60=1 avg300=1"),
            ("capitalised", "Some avg10=1 avg60=1 avg300=1"),
            ("nul byte", "some avg10=1\0 avg60=1 avg300=1"),
        ];
        for (name, text) in cases {
            assert!(parse(text).is_err(), "{name}: {text:?} parsed");
        }
        let twice = format!("{ok_some}\n{ok_some}\n");
        assert!(
            matches!(
                parse(&twice),
                Err(PsiError::DuplicateLine {
                    line: 2,
                    kind: "some"
                })
            ),
            "a duplicated some line"
        );
        let full_twice =
            format!("{ok_some}\nfull avg10=0 avg60=0 avg300=0\nfull avg10=0 avg60=0 avg300=0");
        assert!(parse(&full_twice).is_err(), "a duplicated full line");
    }

    #[test]
    fn an_error_quotes_a_huge_token_only_in_part() {
        let huge = "x".repeat(10_000);
        let err = parse(&format!("some avg10={huge} avg60=1 avg300=1")).unwrap_err();
        assert!(err.to_string().len() < 200, "{err}");
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_parser() {
        // A small deterministic generator over the characters PSI is made of, and others.
        let alphabet: &[u8] = b"somefulavgt=0123456789.-+eEnNaif \n\t\r\0x";
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = (next() % 96) as usize;
            let text: String = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize] as char)
                .collect();
            if let Ok(Some(psi)) = parse(&text) {
                for value in [psi.some.avg10, psi.some.avg60, psi.some.avg300] {
                    assert!((0.0..=100.0).contains(&value), "{text:?} gave {value}");
                }
            }
        }
    }
}
