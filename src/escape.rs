//! Text that a hostile process controls (its argv, its comm), made safe to show.
//!
//! Owns [`visible`]. It reads nothing and imports nothing from the rest of the crate. A process
//! names itself: left raw, a newline in its comm starts a fresh line in a CI log, where a line
//! such as `::add-mask::` or `##vso[...]` is a workflow command; an ESC sequence repaints a
//! terminal; a bidi override makes a name read as another. So every control character becomes
//! visible text, and a backslash is doubled so that an escape in the output is never ambiguous
//! with the same characters typed by the process. It never drops or truncates anything.

use std::borrow::Cow;
use std::fmt::Write;

/// How one character is shown, when not as itself.
enum Shown {
    /// C0 controls, DEL and C1 controls: `\xNN`.
    Hex(u32),
    /// The bidi embeddings, overrides and isolates: `\u{NNNN}`.
    Unicode(u32),
    Backslash,
}

fn shown(c: char) -> Option<Shown> {
    let code = u32::from(c);
    match code {
        0x00..=0x1f | 0x7f..=0x9f => Some(Shown::Hex(code)),
        0x202a..=0x202e | 0x2066..=0x2069 => Some(Shown::Unicode(code)),
        0x5c => Some(Shown::Backslash),
        _ => None,
    }
}

/// `s` with C0 controls (U+0000-U+001F), DEL and C1 controls (U+0080-U+009F) as `\xNN`
/// (lower-case hex), the bidi embeddings, overrides and isolates (U+202A-U+202E,
/// U+2066-U+2069) as `\u{202e}`, and a backslash as `\\`. Borrowed when nothing changes.
pub fn visible(s: &str) -> Cow<'_, str> {
    let Some(first) = s.find(|c| shown(c).is_some()) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len() + 8);
    out.push_str(&s[..first]);
    for c in s[first..].chars() {
        // Writing to a String cannot fail.
        let _ = match shown(c) {
            None => {
                out.push(c);
                Ok(())
            }
            Some(Shown::Hex(code)) => write!(out, "\\x{code:02x}"),
            Some(Shown::Unicode(code)) => write!(out, "\\u{{{code:x}}}"),
            Some(Shown::Backslash) => {
                out.push_str("\\\\");
                Ok(())
            }
        };
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(c: char) -> String {
        visible(&c.to_string()).into_owned()
    }

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        for s in [
            "",
            "pytest",
            "python3 -m pytest -n 4",
            "naïve ünïcödé",
            "日本語",
            "a/b:c",
        ] {
            assert!(matches!(visible(s), Cow::Borrowed(b) if b == s), "{s:?}");
        }
    }

    #[test]
    fn every_c0_control_is_hex() {
        for code in 0x00..=0x1f_u32 {
            let c = char::from_u32(code).unwrap();
            assert_eq!(one(c), format!("\\x{code:02x}"), "U+{code:04X}");
        }
        assert_eq!(one('\n'), "\\x0a");
        assert_eq!(one('\x1b'), "\\x1b");
        assert_eq!(one('\0'), "\\x00");
    }

    #[test]
    fn del_and_every_c1_control_is_hex() {
        for code in 0x7f..=0x9f_u32 {
            let c = char::from_u32(code).unwrap();
            assert_eq!(one(c), format!("\\x{code:02x}"), "U+{code:04X}");
        }
        assert_eq!(one('\u{9b}'), "\\x9b", "the 8-bit CSI");
    }

    #[test]
    fn bidi_controls_are_unicode_escapes() {
        for code in (0x202a..=0x202e_u32).chain(0x2066..=0x2069) {
            let c = char::from_u32(code).unwrap();
            assert_eq!(one(c), format!("\\u{{{code:x}}}"), "U+{code:04X}");
        }
        assert_eq!(one('\u{202e}'), "\\u{202e}");
    }

    #[test]
    fn a_backslash_is_doubled() {
        assert_eq!(one('\\'), "\\\\");
        // The process cannot forge an escape: its own `\x1b` text stays distinguishable.
        assert_eq!(visible("\\x1b"), "\\\\x1b");
        assert_ne!(visible("\\x1b"), visible("\x1b"));
    }

    #[test]
    fn boundaries_of_each_class() {
        let cases = [
            ('\u{1f}', "\\x1f"),
            ('\u{20}', " "),
            ('\u{7e}', "~"),
            ('\u{7f}', "\\x7f"),
            ('\u{9f}', "\\x9f"),
            ('\u{a0}', "\u{a0}"),
            ('\u{2029}', "\u{2029}"),
            ('\u{202a}', "\\u{202a}"),
            ('\u{202e}', "\\u{202e}"),
            ('\u{202f}', "\u{202f}"),
            ('\u{2065}', "\u{2065}"),
            ('\u{2066}', "\\u{2066}"),
            ('\u{2069}', "\\u{2069}"),
            ('\u{206a}', "\u{206a}"),
            ('\u{5b}', "["),
            ('\u{5d}', "]"),
        ];
        for (c, want) in cases {
            assert_eq!(one(c), want, "U+{:04X}", u32::from(c));
        }
    }

    #[test]
    fn a_workflow_command_cannot_start_a_line() {
        let hostile = "x\n::add-mask::secret\r\n##vso[task.setvariable]\x1b[2J";
        let shown = visible(hostile);
        assert!(!shown.contains('\n') && !shown.contains('\r') && !shown.contains('\x1b'));
        assert_eq!(
            shown,
            "x\\x0a::add-mask::secret\\x0d\\x0a##vso[task.setvariable]\\x1b[2J"
        );
    }

    #[test]
    fn text_around_escapes_is_kept_whole() {
        assert_eq!(visible("ab\u{202e}cd\te"), "ab\\u{202e}cd\\x09e");
        assert_eq!(visible("é\u{85}日"), "é\\x85日");
    }
}
