//! Masking of secrets in command lines.
//!
//! Owns the rules that decide which parts of an argv are secret and the one place where a
//! command line is cut for display. It reads nothing and keeps nothing: callers hand it the
//! argv they read and get back a string that is safe to log, print and send. Every masked value
//! becomes `***`; masking happens before the cut, so a secret can never survive half-cut.
//!
//! The rules lean towards masking too much: a hidden path in an alert costs nothing, a leaked
//! token costs a rotation.

/// What a masked value is replaced with.
pub const MASK: &str = "***";

/// The longest command line, in characters, that leaves the collector.
pub const CMDLINE_MAX_CHARS: usize = 1024;

/// Words inside a name (a `--flag` or a `KEY` of `KEY=value`) that make its value secret.
/// Compared against the lower-cased name, so `GITHUB_TOKEN`, `--api-key` and `--apikey` all hit.
const SECRET_NAME_PARTS: &[&str] = &[
    "token",
    "passw",
    "passphrase",
    "secret",
    "credential",
    "apikey",
    "api-key",
    "api_key",
    "key",
    "pwd",
    "auth",
    "cookie",
    "session-id",
    "sessionid",
];

/// Words after which the next word is a credential (`-H "Authorization: Bearer abc"`).
const CREDENTIAL_SCHEMES: &[&str] = &["bearer", "basic", "token"];

/// Masks every secret in `argv`, joins it with spaces and cuts it to [`CMDLINE_MAX_CHARS`].
///
/// Rules, applied to each whitespace-separated word of each argument (an argument such as the
/// script of `sh -c` holds many words):
/// - `--name=value` or `-name=value` whose name looks secret: the value is masked;
/// - `--name` whose name looks secret: the following word is masked, and when `--name` ends its
///   argument, the whole next argument is masked (`["--password", "a b"]` leaks neither word);
/// - `NAME=value` whose name looks secret: the value is masked;
/// - `Bearer x`, `Basic x`: `x` is masked;
/// - `scheme://user:password@host`: the password is masked, wherever the URL stands in a word.
pub fn mask_cmdline<S: AsRef<str>>(argv: &[S]) -> String {
    let mut out = String::new();
    let mut mask_next = false;
    for (i, arg) in argv.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let arg = arg.as_ref();
        if mask_next {
            out.push_str(MASK);
            // A value that is itself a secret flag (`--password --token x`) passes the mask on.
            mask_next = is_secret_flag(arg);
            continue;
        }
        mask_next = mask_argument(arg, &mut out);
    }
    cut(out, CMDLINE_MAX_CHARS)
}

/// Masks one argument into `out`; returns whether the next argument is a secret value.
fn mask_argument(arg: &str, out: &mut String) -> bool {
    let mut mask_next = false;
    let mut rest = arg;
    while !rest.is_empty() {
        let word_len = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (word, tail) = rest.split_at(word_len);
        if !word.is_empty() {
            mask_next = if mask_next && !is_scheme(word) {
                out.push_str(MASK);
                is_secret_flag(word)
            } else if mask_next {
                // `Authorization: Bearer x`: the secret is the word after the scheme.
                out.push_str(word);
                true
            } else {
                mask_word(word, out)
            };
        }
        let space_len = tail
            .find(|c: char| !c.is_whitespace())
            .unwrap_or(tail.len());
        out.push_str(&tail[..space_len]);
        rest = &tail[space_len..];
    }
    mask_next
}

/// Masks one word into `out`; returns whether the next word is a secret value.
fn mask_word(word: &str, out: &mut String) -> bool {
    let flag_name = word.trim_start_matches('-');
    let is_flag = flag_name.len() < word.len() && !flag_name.is_empty();
    if let Some(key) = word.strip_suffix(':') {
        // A key of a JSON, YAML or header line: `"GITHUB_TOKEN": "v"`, `Authorization: v`.
        out.push_str(&mask_inline_pairs(word));
        return looks_secret(key.trim_matches(KEY_PUNCTUATION));
    }
    match word.split_once('=') {
        Some((name, _)) if looks_secret(name.trim_start_matches('-')) => {
            out.push_str(name);
            out.push('=');
            out.push_str(MASK);
            false
        }
        Some(_) => {
            out.push_str(&mask_url_passwords(&mask_inline_pairs(word)));
            false
        }
        None if is_flag && looks_secret(flag_name) => {
            out.push_str(word);
            true
        }
        None => {
            out.push_str(&mask_url_passwords(&mask_inline_pairs(word)));
            is_scheme(word)
        }
    }
}

/// Quotes and brackets around a key of a JSON or dict literal.
const KEY_PUNCTUATION: &[char] = &['"', '\'', '{', '[', ',', '(', ' '];

fn is_scheme(word: &str) -> bool {
    CREDENTIAL_SCHEMES
        .iter()
        .any(|scheme| word.eq_ignore_ascii_case(scheme))
}

/// Masks the values of secret-looking keys in compact JSON inside one word:
/// `{"token":"abc","user":"u"}` becomes `{"token":"***","user":"u"}`.
fn mask_inline_pairs(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    let mut rest = word;
    while let Some(colon) = rest.find("\":") {
        let (before, after) = rest.split_at(colon + 2);
        out.push_str(before);
        let key_start = before[..colon].rfind('"').map_or(0, |q| q + 1);
        let key = &before[key_start..colon];
        rest = after;
        // A key that ends the word has its value in the next word: mask_word handles it.
        if !looks_secret(key) || after.is_empty() {
            continue;
        }
        // The value runs to the closing quote of a string, or to the next `,` or `}`.
        let (value_len, quoted) = match after.strip_prefix('"') {
            // Unterminated: the value is the rest of the word.
            Some(inner) => (inner.find('"').map_or(after.len(), |end| end + 2), true),
            None => (after.find([',', '}']).unwrap_or(after.len()), false),
        };
        out.push_str(if quoted { "\"***\"" } else { MASK });
        rest = &after[value_len.min(after.len())..];
    }
    out.push_str(rest);
    out
}

/// `--token`, `-auth`: a flag whose value is secret, written without `=`.
fn is_secret_flag(word: &str) -> bool {
    let name = word.trim_start_matches('-');
    name.len() < word.len() && !name.is_empty() && !word.contains('=') && looks_secret(name)
}

fn looks_secret(name: &str) -> bool {
    if name.is_empty() || name.contains("://") {
        return false;
    }
    let lower = name.to_ascii_lowercase();
    SECRET_NAME_PARTS.iter().any(|part| lower.contains(part))
}

/// Replaces the password of every `scheme://user:password@host` in `word`.
fn mask_url_passwords(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    let mut rest = word;
    while let Some(at) = rest.find("://") {
        let authority_start = at + 3;
        out.push_str(&rest[..authority_start]);
        let after = &rest[authority_start..];
        let authority_len = after.find(['/', '?', '#', ',']).unwrap_or(after.len());
        let authority = &after[..authority_len];
        // The authority ends where RFC 3986 ends it, or at a comma (lists of URLs in one
        // flag are common). The last '@' in it ends the userinfo: a password may hold '@'.
        match authority.rfind('@') {
            Some(at_sign) => {
                let userinfo = &authority[..at_sign];
                match userinfo.split_once(':') {
                    Some((user, _password)) => {
                        out.push_str(user);
                        out.push(':');
                        out.push_str(MASK);
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at_sign..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[authority_len..];
    }
    out.push_str(rest);
    out
}

/// Cuts `s` to at most `max` characters, marking a cut with a trailing `…`.
pub fn cut(mut s: String, max: usize) -> String {
    if max == 0 {
        s.clear();
        return s;
    }
    if let Some((byte_index, _)) = s.char_indices().nth(max) {
        // Keep max - 1 characters and the marker, so the result is exactly `max` long.
        let keep = s
            .char_indices()
            .nth(max - 1)
            .map_or(byte_index, |(index, _)| index);
        s.truncate(keep);
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(argv: &[&str]) -> String {
        mask_cmdline(argv)
    }

    #[test]
    fn flag_values_are_masked_in_both_forms() {
        let cases: &[(&[&str], &str)] = &[
            (&["pytest", "--token=abc"], "pytest --token=***"),
            (&["pytest", "--token", "abc", "-x"], "pytest --token *** -x"),
            (&["x", "--password", "a b c"], "x --password ***"),
            (
                &["x", "--api-key=k1", "--apikey", "k2"],
                "x --api-key=*** --apikey ***",
            ),
            (&["x", "--client-secret=s"], "x --client-secret=***"),
            (&["x", "-password=p"], "x -password=***"),
            (&["x", "--db-password"], "x --db-password"),
            (&["x", "--verbose", "v"], "x --verbose v"),
        ];
        for (argv, want) in cases {
            assert_eq!(masked(argv), *want, "argv {argv:?}");
        }
    }

    #[test]
    fn secrets_inside_a_shell_script_argument_are_masked() {
        let got = masked(&["sh", "-c", "pytest --token abc && curl --password=p x"]);
        assert_eq!(got, "sh -c pytest --token *** && curl --password=*** x");
    }

    #[test]
    fn secret_looking_assignments_are_masked() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["env", "GITHUB_TOKEN=ghp_x", "pytest"],
                "env GITHUB_TOKEN=*** pytest",
            ),
            (&["env", "DB_PASSWORD=hunter2"], "env DB_PASSWORD=***"),
            (
                &["env", "AWS_SECRET_ACCESS_KEY=a=b"],
                "env AWS_SECRET_ACCESS_KEY=***",
            ),
            (&["env", "MY_CREDENTIALS=c"], "env MY_CREDENTIALS=***"),
            (
                &["env", "PATH=/usr/bin", "HOME=/root"],
                "env PATH=/usr/bin HOME=/root",
            ),
        ];
        for (argv, want) in cases {
            assert_eq!(masked(argv), *want, "argv {argv:?}");
        }
    }

    #[test]
    fn url_passwords_are_masked_and_the_rest_of_the_url_is_kept() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["pytest", "--db=postgres://app:s3cret@db:5432/x"],
                "pytest --db=postgres://app:***@db:5432/x",
            ),
            (
                &["git", "clone", "https://u:p@ss@h/r"],
                "git clone https://u:***@h/r",
            ),
            (&["curl", "https://user@h/x"], "curl https://user@h/x"),
            (&["curl", "https://h/x?a=b"], "curl https://h/x?a=b"),
            (&["x", "a://u:p@h,b://v:q@i"], "x a://u:***@h,b://v:***@i"),
        ];
        for (argv, want) in cases {
            assert_eq!(masked(argv), *want, "argv {argv:?}");
        }
    }

    #[test]
    fn bearer_credentials_are_masked() {
        let got = masked(&["curl", "-H", "Authorization: Bearer abc.def", "https://h"]);
        assert_eq!(got, "curl -H Authorization: Bearer *** https://h");
    }

    #[test]
    fn values_of_secret_keys_in_json_and_headers_are_masked() {
        let cases: &[(&[&str], &str)] = &[
            (
                &[
                    "agent",
                    "--env",
                    r#"{"HOME": "/root", "GITHUB_TOKEN": "ghp_x", "LANG": "C"}"#,
                ],
                r#"agent --env {"HOME": "/root", "GITHUB_TOKEN": *** "LANG": "C"}"#,
            ),
            (
                &["agent", r#"--env={"api_key":"k1","user":"u","token":7}"#],
                r#"agent --env={"api_key":"***","user":"u","token":***}"#,
            ),
            (&["x", "password:", "p"], "x password: ***"),
            (
                &["curl", "-H", "X-Auth-Token: abc"],
                "curl -H X-Auth-Token: ***",
            ),
            (
                &["curl", "-H", "Authorization: Basic dXNlcg=="],
                "curl -H Authorization: Basic ***",
            ),
            (&["x", "note:", "hello"], "x note: hello"),
        ];
        for (argv, want) in cases {
            assert_eq!(masked(argv), *want, "argv {argv:?}");
        }
    }

    #[test]
    fn a_secret_flag_given_as_the_value_of_another_passes_the_mask_on() {
        // Found by fuzzing: the value of `-auth` was `--token`, and the token leaked.
        assert_eq!(masked(&["-auth", "--token", "s3cr3t"]), "-auth *** ***");
        assert_eq!(
            masked(&["x", "--password --api-key k1 --verbose"]),
            "x --password *** *** --verbose"
        );
        assert_eq!(
            masked(&["curl", "-H", "Authorization:", "--token", "t"]),
            "curl -H Authorization: *** ***"
        );
    }

    #[test]
    fn an_unterminated_quoted_secret_is_masked_to_the_end_of_the_word() {
        // Found by fuzzing: a value without its closing quote, ending in a multi-byte character,
        // was cut inside that character.
        assert_eq!(masked(&[r#"{"key":"é"#]), r#"{"key":"***""#);
        assert_eq!(
            masked(&[r#"{"token":"abc"#, "next"]),
            r#"{"token":"***" next"#
        );
    }

    #[test]
    fn a_secret_flag_that_ends_the_argv_masks_nothing_further() {
        assert_eq!(masked(&["x", "--token"]), "x --token");
        assert_eq!(mask_cmdline::<&str>(&[]), "");
    }

    #[test]
    fn cutting_keeps_whole_characters_and_marks_the_cut() {
        assert_eq!(cut("abcdef".into(), 4), "abc…");
        assert_eq!(cut("abcd".into(), 4), "abcd");
        assert_eq!(cut("ééééé".into(), 3), "éé…");
        assert_eq!(cut("abc".into(), 0), "");
        let long = mask_cmdline(&["x".repeat(5000)]);
        assert_eq!(long.chars().count(), CMDLINE_MAX_CHARS);
    }

    #[test]
    fn a_secret_is_masked_before_the_cut() {
        let filler = "a".repeat(1015);
        let got = mask_cmdline(&[filler.as_str(), "--token=0123456789abcdef"]);
        assert!(!got.contains("0123"), "{got}");
        assert_eq!(got.chars().count(), CMDLINE_MAX_CHARS);
    }
}
