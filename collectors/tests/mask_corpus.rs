//! The masker against the secrets corpus (`tests/data/secrets.txt`): every secret in every form
//! is masked, every look-alike is left exactly as it is, and a secret that gives itself away by
//! its shape stays masked whatever delimiter surrounds it and when the whole command line is
//! handed to `sh -c`. Each test lists every failing case by line before it fails.

mod support;

use std::collections::BTreeMap;

use support::corpus::{self, Case, Shape};
use watchdog_collectors::mask::mask_cmdline;

/// What may stand right before or after a secret: whitespace, quotes, `=:,;`, brackets and the
/// delimiters of a URL. The fuzz target draws from the same list.
const DELIMITERS: &[&str] = &[
    "", " ", "\t", "\n", "\"", "'", "`", "=", ":", ",", ";", "(", ")", "[", "]", "{", "}", "<",
    ">", "/", "?", "#", "&", "@", "%20", "+",
];

/// Fewer than this many cases would not be a corpus.
const MIN_MASK_CASES: usize = 150;

fn cases() -> Vec<Case> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/secrets.txt");
    let text = std::fs::read_to_string(path).expect("the corpus is checked in");
    corpus::parse(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The secrets of `case` that can be read in `masked`.
fn leaked<'a>(case: &'a Case, masked: &str) -> Vec<&'a str> {
    case.secrets
        .iter()
        .map(String::as_str)
        .filter(|secret| masked.contains(secret))
        .collect()
}

fn fail_with(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} failing:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_corpus_covers_every_category_with_enough_cases() {
    let cases = cases();
    let mut per_category: BTreeMap<&str, usize> = BTreeMap::new();
    for case in cases.iter().filter(|c| !c.keep) {
        *per_category.entry(case.category.as_str()).or_default() += 1;
    }
    let total: usize = per_category.values().sum();
    assert!(total >= MIN_MASK_CASES, "{total} cases: {per_category:?}");
    for category in [
        "url-userinfo",
        "url-query",
        "headers",
        "flags",
        "program-options",
        "env",
        "json-yaml",
        "quoted",
        "vendor-tokens",
        "webhooks",
        "jwt",
        "pem",
    ] {
        let count = per_category.get(category).copied().unwrap_or(0);
        assert!(count >= 5, "category {category} has {count} cases");
    }
    assert!(cases.iter().filter(|c| c.keep).count() >= 20);
    for case in &cases {
        let joined = case.argv.join("\0");
        for secret in &case.secrets {
            assert!(
                joined.contains(secret.as_str()),
                "line {}: secret {secret:?} is not in its own argv",
                case.line
            );
        }
    }
}

#[test]
fn every_corpus_secret_is_masked_and_the_rest_stays_readable() {
    let mut failures = Vec::new();
    for case in cases().iter().filter(|c| !c.keep) {
        let masked = mask_cmdline(&case.argv);
        let leaked = leaked(case, &masked);
        if !leaked.is_empty() {
            failures.push(format!(
                "line {} [{}]: {leaked:?} leaked in {masked:?}",
                case.line, case.category
            ));
        }
        for readable in &case.readable {
            if !masked.contains(readable.as_str()) {
                failures.push(format!(
                    "line {} [{}]: {readable:?} was masked away: {masked:?}",
                    case.line, case.category
                ));
            }
        }
    }
    fail_with(&failures);
}

#[test]
fn look_alikes_are_left_exactly_as_they_are() {
    let mut failures = Vec::new();
    for case in cases().iter().filter(|c| c.keep) {
        let masked = mask_cmdline(&case.argv);
        let joined = case.argv.join(" ");
        if masked != joined {
            failures.push(format!("line {}: {joined:?} became {masked:?}", case.line));
        }
    }
    fail_with(&failures);
}

/// The argv of `case` with `unit` (a secret, or the argument that carries it) wrapped in
/// `before` and `after`, standing alone and between other words.
fn wrapped(case: &Case, before: &str, after: &str) -> Vec<Vec<String>> {
    let mut argvs = Vec::new();
    for (i, arg) in case.argv.iter().enumerate() {
        if !case.secrets.iter().any(|s| arg.contains(s.as_str())) {
            continue;
        }
        let mut argv = case.argv.clone();
        argv[i] = format!("{before}{arg}{after}");
        argvs.push(argv);
    }
    if case.shape == Some(Shape::Secret) {
        for secret in &case.secrets {
            argvs.push(vec!["x".into(), format!("{before}{secret}{after}")]);
            // Glued to a word on the left, a token is part of that word: only a delimiter
            // between them makes it stand alone.
            if !before.is_empty() {
                argvs.push(vec!["x".into(), format!("word{before}{secret}{after}word")]);
                argvs.push(vec![
                    "sh".into(),
                    "-c".into(),
                    format!("run a{before}{secret}{after}b && echo done"),
                ]);
            }
        }
    }
    argvs
}

#[test]
fn shaped_secrets_are_masked_whatever_delimiter_surrounds_them() {
    let mut failures = Vec::new();
    for case in cases().iter().filter(|c| c.shape.is_some()) {
        for before in DELIMITERS {
            for after in DELIMITERS {
                for argv in wrapped(case, before, after) {
                    let masked = mask_cmdline(&argv);
                    let leaked = leaked(case, &masked);
                    if !leaked.is_empty() {
                        failures.push(format!(
                            "line {} wrapped in {before:?} {after:?}: {leaked:?} leaked in {masked:?}",
                            case.line
                        ));
                    }
                }
            }
        }
    }
    fail_with(&failures);
}

/// `arg` as one shell word: bare when it has nothing the shell would read, else in quotes.
fn shell_word(arg: &str) -> Option<String> {
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=,@%+".contains(&b));
    if plain {
        Some(arg.to_owned())
    } else if !arg.contains('\'') {
        Some(format!("'{arg}'"))
    } else if !arg.contains(['"', '\\', '$', '`']) {
        Some(format!("\"{arg}\""))
    } else {
        None
    }
}

#[test]
fn every_case_is_masked_when_handed_to_sh_c() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in cases().iter().filter(|c| !c.keep) {
        let Some(words) = case
            .argv
            .iter()
            .map(|arg| shell_word(arg))
            .collect::<Option<Vec<_>>>()
        else {
            continue;
        };
        checked += 1;
        let argv = ["sh".to_owned(), "-c".to_owned(), words.join(" ")];
        let masked = mask_cmdline(&argv);
        let leaked = leaked(case, &masked);
        if !leaked.is_empty() {
            failures.push(format!(
                "line {} [{}]: {leaked:?} leaked in {masked:?}",
                case.line, case.category
            ));
        }
    }
    assert!(
        checked >= MIN_MASK_CASES,
        "only {checked} cases could be quoted"
    );
    fail_with(&failures);
}

/// Text built to hurt a scanner: unterminated quotes and blocks, multi-byte characters where a
/// byte index would land, and long runs of what each rule looks for. Each must be masked without
/// a panic, and (at 128 KiB each, about a second for all in a debug build) in time that only a
/// linear scan gives: a quadratic one would take hours.
#[test]
fn hostile_text_is_masked_without_a_panic_in_linear_time() {
    const BIG: usize = 1 << 17;
    let repeat = |unit: &str| unit.repeat(BIG / unit.len());
    let cases: Vec<Vec<String>> = vec![
        vec![r#"{"password":"é"#.into()],
        vec!["--password=\"é".into(), "ü".into()],
        vec!["-p'é".into()],
        vec!["Authorization:".into()],
        vec!["'Authorization: Bearer é".into()],
        vec!["https://é:é@é/é?token=é".into()],
        vec!["-----BEGIN RSA PRIVATE KEY-----é".into()],
        vec!["x%".into(), "%2".into(), "é%20ghp_".into()],
        vec![repeat("a=")],
        vec![repeat("token=")],
        vec![repeat("eyJ.")],
        vec![repeat("eyJaaaaaaaaaaaaaaaaaaaaaaaaa.")],
        vec![repeat("sk-")],
        vec![repeat("ghp_")],
        vec![repeat("-----BEGIN ")],
        vec![repeat("-----BEGIN PRIVATE KEY-----")],
        vec![repeat("://@")],
        vec![repeat("\":")],
        vec![repeat("\"token\":\"")],
        vec![repeat("a;")],
        vec![repeat("é")],
        vec![repeat("--token ")],
        vec![repeat("Authorization: ")],
        vec![repeat("hooks.slack.com/services/")],
        repeat("x ").split(' ').map(String::from).collect(),
        repeat("mysql -p ").split(' ').map(String::from).collect(),
    ];
    for argv in &cases {
        let masked = mask_cmdline(argv);
        assert!(masked.chars().count() <= watchdog_collectors::mask::CMDLINE_MAX_CHARS);
    }
}
