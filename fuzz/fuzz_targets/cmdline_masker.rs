//! Any bytes as a `<pid>/cmdline`: split, masked and cut without a panic, never longer than the
//! limit, and a value after `--token` never survives. And no corpus secret that gives itself
//! away by its shape (a vendor token, a JWT, a webhook URL, a PEM block) survives when it is
//! surrounded by whitespace, quotes, `=:,;`, brackets or URL delimiters, whatever text comes
//! before and after it. `collectors/tests/mask_corpus.rs` checks the same property over every
//! pair of delimiters without the fuzzer.
#![no_main]
use std::sync::OnceLock;

use watchdog_collectors::mask::{mask_cmdline, CMDLINE_MAX_CHARS};
use watchdog_collectors::proc::split_cmdline;

#[path = "../../collectors/tests/support/corpus.rs"]
#[allow(dead_code)]
mod corpus;

/// The same list as `collectors/tests/mask_corpus.rs`.
const DELIMITERS: &[&str] = &[
    "", " ", "\t", "\n", "\"", "'", "`", "=", ":", ",", ";", "(", ")", "[", "]", "{", "}", "<",
    ">", "/", "?", "#", "&", "@", "%20", "+",
];

/// Text that gives itself away by its shape (a shaped secret, or a whole case of a category
/// whose arguments do), and the secrets it carries.
struct Unit {
    text: String,
    secrets: Vec<String>,
}

fn units() -> &'static [Unit] {
    static UNITS: OnceLock<Vec<Unit>> = OnceLock::new();
    UNITS.get_or_init(|| {
        let text = include_str!("../../collectors/tests/data/secrets.txt");
        // The corpus is checked in and parsed by the test suite; a broken one stops the run.
        let cases = corpus::parse(text).expect("the corpus parses");
        let mut units = Vec::new();
        for case in cases {
            match case.shape {
                Some(corpus::Shape::Secret) => units.extend(case.secrets.iter().map(|s| Unit {
                    text: s.clone(),
                    secrets: vec![s.clone()],
                })),
                // The whole case: a PEM block may span arguments, and only its markers make
                // the lines between them a key.
                Some(corpus::Shape::Argument) => units.push(Unit {
                    text: case.argv.join(" "),
                    secrets: case.secrets.clone(),
                }),
                None => {}
            }
        }
        units
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let argv = split_cmdline(data);
    let masked = mask_cmdline(&argv);
    assert!(masked.chars().count() <= CMDLINE_MAX_CHARS);
    let mut with_secret = argv.clone();
    with_secret.push("--token".into());
    with_secret.push("F0ZZS3CR3T".into());
    if argv.iter().all(|a| !a.contains("F0ZZS3CR3T")) && argv.join(" ").chars().count() < 900 {
        assert!(
            !mask_cmdline(&with_secret).contains("F0ZZS3CR3T"),
            "{with_secret:?}"
        );
    }

    // A shaped secret between two delimiters, after and before whatever the input holds.
    let [pick, before, after, split, rest @ ..] = data else {
        return;
    };
    let units = units();
    let unit = &units[usize::from(*pick) % units.len()];
    let before = DELIMITERS[usize::from(*before) % DELIMITERS.len()];
    let after = DELIMITERS[usize::from(*after) % DELIMITERS.len()];
    let (head, tail) = rest.split_at(usize::from(*split).min(rest.len()));
    let mut argv = split_cmdline(head);
    let wrapped = format!("{before}{}{after}", unit.text);
    // Glued to the argument before it only through a delimiter: without one, a token glued to a
    // word is part of that word.
    match argv.last_mut() {
        Some(last) if !before.is_empty() => last.push_str(&wrapped),
        _ => argv.push(wrapped),
    }
    let mut tail = split_cmdline(tail).into_iter();
    if let Some(first) = tail.next() {
        match argv.last_mut() {
            Some(last) if !after.is_empty() => last.push_str(&first),
            _ => argv.push(first),
        }
    }
    argv.extend(tail);
    let masked = mask_cmdline(&argv);
    for secret in &unit.secrets {
        assert!(!masked.contains(secret.as_str()), "{argv:?} -> {masked:?}");
    }
});
