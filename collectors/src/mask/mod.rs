//! Masking of secrets in command lines.
//!
//! Owns the rules that decide which parts of an argv are secret and the one place where a
//! command line is cut for display. It reads nothing and keeps nothing: callers hand it the
//! argv they read and get back a string that is safe to log, print and send. Every masked value
//! becomes `***`; masking happens before the cut, so a secret can never survive half-cut.
//!
//! PEM private key blocks first, on the raw argv (an unquoted key spans arguments), then two
//! passes over each argument:
//! - [`words`]: a name and the value it gives away (`--token x`, `NAME=value`, `Authorization:
//!   Bearer x`, `"password": "x"`, quoted values over several words) and, through [`programs`],
//!   the short options that carry credentials for one program only (`mysql -pX`, `curl -u a:b`);
//!   which names are secret is [`names`]'s;
//! - [`shapes`]: what gives itself away wherever it stands (URL userinfo and query parameters,
//!   webhook URLs, vendor tokens, JWTs).
//!
//! Every scanner walks its text a bounded number of times, with no backtracking: this runs on
//! every matching process's argv every tick. The rules lean towards masking too much: a hidden
//! path in an alert costs nothing, a leaked token costs a rotation.

mod names;
mod programs;
mod shapes;
mod words;

/// What a masked value is replaced with.
pub const MASK: &str = "***";

/// The longest command line, in characters, that leaves the collector.
pub const CMDLINE_MAX_CHARS: usize = 1024;

/// Masks every secret in `argv`, joins it with spaces and cuts it to [`CMDLINE_MAX_CHARS`].
///
/// What is masked, by category, is listed in the README's "Secrets" section and pinned by the
/// corpus in `collectors/tests/data/secrets.txt`. Never panics, whatever the bytes.
pub fn mask_cmdline<S: AsRef<str>>(argv: &[S]) -> String {
    let argv = shapes::mask_pem_blocks(argv);
    let mut words = words::Words::default();
    let mut out = String::new();
    for (i, arg) in argv.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let arg = words.argument(arg);
        out.push_str(&shapes::mask(&arg));
    }
    cut(out, CMDLINE_MAX_CHARS)
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
    fn a_private_key_is_masked_before_a_header_can_take_its_first_line() {
        // Found by a randomised run of the fuzz property: a header value masked to the end of its
        // line took `-----BEGIN … PRIVATE KEY BLOCK-----` with it, and the key's lines after it
        // were read by no rule.
        let got = masked(&[
            "Authorization:{\"p\":\"-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBFIBIMWN\n=qzUy\n\
             -----END PGP PRIVATE KEY BLOCK-----",
        ]);
        assert!(!got.contains("lQOYBFIBIMWN"), "{got}");
        assert!(
            got.ends_with("-----END PGP PRIVATE KEY BLOCK-----"),
            "{got}"
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
