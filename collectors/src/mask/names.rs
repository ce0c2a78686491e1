//! Which names make their value secret: `--api-key`, `GH_PAT`, `?sig=`, `"password":`.
//!
//! Owns the word lists and the one test, [`looks_secret`], that the flag, assignment, header,
//! JSON and query rules share. It sees a name, never the value.
//!
//! Matching is by substring of the lower-cased name, so `APITOKEN`, `x-vault-token` and
//! `--apikey` all hit. Words too short to be matched inside others (`pat`, `pass`, `sig`) must be
//! a whole part of the name, so `GH_PAT` hits and `--path` does not. Look-alikes are exempt only
//! by an explicit list of whole words: a hit that lies inside a part such as `tokenizer` or
//! `keyword` does not count, and a few whole names that are known switches or counts
//! (`--password-stdin`, `--max-tokens`) are not secret names. Anything else that contains a
//! secret word is secret: where it must choose, it masks.

/// Words that make a name secret wherever they stand in it. Compared against the lower-cased
/// name with `_` and `.` read as `-`, so `api-key` also covers `API_KEY` and `api.key`.
const PARTS: &[&str] = &[
    "token",
    "passw",
    "passphrase",
    "secret",
    "credential",
    "creds",
    "apikey",
    "api-key",
    "key",
    "pwd",
    "auth",
    "cookie",
    "session-id",
    "sessionid",
    "signature",
    "mnemonic",
];

/// Words that make a name secret only as a whole part of it (`DB_PASS`, `GH_PAT`, `&sig=`):
/// inside other words they are common (`path`, `bypass`, `signal`).
const WHOLE_PARTS: &[&str] = &[
    "pass", "passin", "passout", "pw", "pat", "sig", "sas", "dsn", "psk", "otp", "jwt", "bearer",
    "hmac",
];

/// Parts of a name that contain a secret word and are not secret. Each is a whole word of the
/// name: `TOKENIZER_PATH` is readable, `TOKENIZER_TOKEN` is not.
const EXEMPT_PARTS: &[&str] = &[
    "tokenizer",
    "tokenizers",
    "tokenize",
    "tokenized",
    "tokenization",
    "detokenize",
    "keyword",
    "keywords",
    "keyboard",
    "keyframe",
    "keyframes",
    "keypoint",
    "keypoints",
    "keystroke",
    "keystrokes",
    "keymap",
    "keyspace",
    "keyserver",
    "keycloak",
    "hotkey",
    "hotkeys",
    "monkey",
    "donkey",
    "turkey",
    "hockey",
    "jockey",
    "whiskey",
    "author",
    "authors",
    "authored",
    "authority",
    "xauthority",
    "unauthenticated",
];

/// Whole names (lower-cased, `_` and `.` read as `-`, leading dashes dropped) that contain a
/// secret word and take no secret: switches that take no value at all (`docker login
/// --password-stdin`, ansible's `--ask-pass`) and counts (`--max-tokens 512`).
const EXEMPT_NAMES: &[&str] = &[
    "password-stdin",
    "ask-pass",
    "ask-become-pass",
    "ask-vault-pass",
    "pass-through",
    "max-tokens",
    "max-new-tokens",
    "max-output-tokens",
    "max-completion-tokens",
    "max-tokens-to-sample",
    "min-tokens",
    "num-tokens",
    "ssh-auth-sock",
    "recv-keys",
];

/// Whether a value named `name` (`--api-key`, `GITHUB_TOKEN`, `X-Amz-Signature`, `"password"`)
/// is secret. Leading dashes are ignored.
pub(super) fn looks_secret(name: &str) -> bool {
    let name = name.trim_start_matches('-');
    // The shortest secret words (`pw`) have two letters.
    if name.len() < 2 {
        return false;
    }
    // Most names hold no secret word at all: say so without allocating.
    if !PARTS
        .iter()
        .chain(WHOLE_PARTS)
        .chain(&["x-amz-"])
        .any(|word| contains_ignore_case(name, word))
    {
        return false;
    }
    let lower = normalise(name);
    // `--no-token` and `NO_AUTH=1` switch something off; they never carry a secret.
    if lower.starts_with("no-") || EXEMPT_NAMES.contains(&lower.as_str()) {
        return false;
    }
    // Every part of AWS's presigned query (`X-Amz-Credential`, `X-Amz-Security-Token`) is masked,
    // the harmless `X-Amz-Date` with them: one rule is easier to trust than a list.
    if lower.starts_with("x-amz-") {
        return true;
    }
    let parts = parts(name);
    let part_at = |index: usize| {
        parts
            .iter()
            .find(|&&(start, end)| start <= index && index < end)
    };
    let hit_counts = |start: usize, len: usize| match part_at(start) {
        // A hit inside one exempt word (`token` in `tokenizer`) does not count; one that spans
        // two parts (`session-id`) or lies in any other word does.
        Some(&(part_start, part_end)) if start + len <= part_end => {
            !EXEMPT_PARTS.contains(&&lower[part_start..part_end])
        }
        _ => true,
    };
    let substring_hit = PARTS.iter().any(|word| {
        lower
            .match_indices(word)
            .any(|(start, _)| hit_counts(start, word.len()))
    });
    substring_hit
        || parts
            .iter()
            .any(|&(start, end)| WHOLE_PARTS.contains(&&lower[start..end]))
}

/// Whether `name` may stand before a colon with no space as a header with a secret value
/// (`Authorization:Bearer x`, `X-Api-Key:abc`). Narrower than [`looks_secret`]: a word such as
/// `auth:app` or `keyserver:main` is Python's `module:object`, not a header.
pub(super) fn is_secret_header(name: &str) -> bool {
    let lower = normalise(name);
    const ENDINGS: &[&str] = &[
        "authorization",
        "cookie",
        "token",
        "apikey",
        "-key",
        "secret",
        "password",
        "passwd",
    ];
    !lower.is_empty()
        && lower
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && ENDINGS.iter().any(|ending| lower.ends_with(ending))
        && looks_secret(name)
}

/// Whether every character of `name` can be part of a name: `--db-password`, `DB_PASS`,
/// `spring.datasource.password`, `user[password]`.
pub(super) fn is_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(is_name_byte)
}

pub(super) fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'[' | b']')
}

/// Whether `name` contains `word` (lower-case, with `-` standing for `-`, `_` or `.`),
/// ignoring ASCII case.
fn contains_ignore_case(name: &str, word: &str) -> bool {
    let word = word.as_bytes();
    name.as_bytes().windows(word.len()).any(|window| {
        window
            .iter()
            .zip(word)
            .all(|(&b, &w)| b.to_ascii_lowercase() == w || (w == b'-' && matches!(b, b'_' | b'.')))
    })
}

/// Lower-cased, with `_` and `.` read as `-`. ASCII-only changes, so byte offsets stay valid.
fn normalise(name: &str) -> String {
    name.to_ascii_lowercase().replace(['_', '.'], "-")
}

/// The byte ranges of the words of a name: split at every character that is not a letter or a
/// digit, and where a lower-case letter meets an upper-case one (`monkeyPatch`, `ghPat`).
fn parts(name: &str) -> Vec<(usize, usize)> {
    let bytes = name.as_bytes();
    let mut parts = Vec::new();
    let mut start = None;
    for (i, &b) in bytes.iter().enumerate() {
        let is_word = b.is_ascii_alphanumeric();
        let camel = i > 0 && bytes[i - 1].is_ascii_lowercase() && b.is_ascii_uppercase();
        match start {
            Some(s) if !is_word || camel => {
                parts.push((s, i));
                start = is_word.then_some(i);
            }
            None if is_word => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        parts.push((s, bytes.len()));
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_words_hit_anywhere_in_a_name() {
        for name in [
            "--token",
            "APITOKEN",
            "GITHUB_TOKEN",
            "--api-key",
            "--apikey",
            "api.key",
            "X-Vault-Token",
            "DB_PASSWORD",
            "--client-secret",
            "AWS_SECRET_ACCESS_KEY",
            "SESSION_ID",
            "X-Amz-Signature",
            "X-Amz-Date",
            "myTokenizerToken",
        ] {
            assert!(looks_secret(name), "{name} is a secret name");
        }
    }

    #[test]
    fn short_words_hit_only_as_a_whole_part() {
        for name in [
            "GH_PAT",
            "--pass",
            "DB_PASS",
            "sig",
            "dbPass",
            "SENTRY_DSN",
            "--otp",
        ] {
            assert!(looks_secret(name), "{name} is a secret name");
        }
        for name in [
            "--path", "PATTERN", "--bypass", "signal", "--passes", "--design",
        ] {
            assert!(!looks_secret(name), "{name} is not a secret name");
        }
    }

    #[test]
    fn look_alikes_are_exempt_by_whole_word() {
        for name in [
            "--tokenizer",
            "TOKENIZER_PATH",
            "--keyword",
            "monkeyPatch",
            "--author",
            "GIT_AUTHOR_NAME",
            "--allow-unauthenticated",
            "--password-stdin",
            "--max-tokens",
            "max_new_tokens",
            "--no-auth",
            "SSH_AUTH_SOCK",
            "--keep-going",
            "",
            "--",
        ] {
            assert!(!looks_secret(name), "{name} is not a secret name");
        }
    }

    #[test]
    fn only_header_shaped_names_take_a_value_after_a_bare_colon() {
        for name in [
            "Authorization",
            "Proxy-Authorization",
            "X-Api-Key",
            "Cookie",
            "PRIVATE-TOKEN",
        ] {
            assert!(is_secret_header(name), "{name}");
        }
        for name in ["auth", "keyserver", "auth_service", "tokenizer", "key.py"] {
            assert!(!is_secret_header(name), "{name}");
        }
    }
}
