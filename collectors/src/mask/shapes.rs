//! The second pass: secrets that give themselves away by their shape, wherever they stand.
//!
//! Owns the rules that need no neighbouring word: the userinfo of a URL, `name=value` pairs
//! inside a word (a URL's query, a form body, `--set a=1,password=x`), webhook URLs whose path is
//! the credential, vendor tokens by their documented prefix and length, JWTs, and PEM private
//! key blocks (those first, on the raw argv). Each scanner walks the text once and returns byte
//! ranges to mask; the ranges are merged and replaced in one go, so the rules cannot undo one
//! another.

use std::borrow::Cow;

use super::names::{is_name_byte, looks_secret};
use super::MASK;

/// Masks every shape-recognised secret in `text` (one argument, after the first pass).
pub(super) fn mask(text: &str) -> String {
    let mut ranges = Vec::new();
    url_userinfo(text, &mut ranges);
    pairs(text, &mut ranges);
    webhook_paths(text, &mut ranges);
    tokens(text, &mut ranges);
    replace(text, ranges)
}

/// Bytes that end a URL's authority (RFC 3986 §3.2) or the URL itself. A comma ends it too:
/// lists of URLs in one flag are common.
fn ends_authority(b: u8) -> bool {
    matches!(
        b,
        b'/' | b'?' | b'#' | b',' | b'"' | b'\'' | b'`' | b'<' | b'>'
    ) || b.is_ascii_whitespace()
}

/// `scheme://user:password@host`: the password; and the user as well when it does not read as a
/// login (`https://ghp_…@github.com`, `https://TOKEN:x-oauth-basic@github.com`).
fn url_userinfo(text: &str, ranges: &mut Vec<(usize, usize)>) {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(found) = text[from..].find("://") {
        let start = from + found + 3;
        let end = bytes[start..]
            .iter()
            .position(|&b| ends_authority(b))
            .map_or(bytes.len(), |len| start + len);
        // The last '@' ends the userinfo: a password may hold '@'.
        if let Some(at) = text[start..end].rfind('@') {
            let userinfo = &text[start..start + at];
            match userinfo.split_once(':') {
                Some((user, _)) if looks_like_login(user) => {
                    ranges.push((start + user.len() + 1, start + at));
                }
                _ if looks_like_login(userinfo) => {}
                _ => ranges.push((start, start + at)),
            }
        }
        from = end.max(start);
    }
}

/// A user name as people write them in URLs (`git`, `app`, `deploy`, `x-access-token`,
/// `gitlab-ci-token`, `build01`): short, lower-case, a letter first and few digits. Tokens are
/// long, mixed-case or dense with digits, so anything else in that place is masked.
fn looks_like_login(user: &str) -> bool {
    let bytes = user.as_bytes();
    (1..=16).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes.iter().all(|&b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
        && bytes.iter().filter(|b| b.is_ascii_digit()).count() <= 3
}

/// Bytes that end a value inside a word: the next pair (`&`, `;`, `,`), a URL fragment, a
/// closing quote or bracket.
fn ends_value(b: u8) -> bool {
    matches!(
        b,
        b'&' | b';' | b',' | b'#' | b'"' | b'\'' | b'`' | b')' | b']' | b'}' | b'<' | b'>'
    ) || b.is_ascii_whitespace()
}

/// `name=value` anywhere in the text whose name looks secret: `?access_token=`, `&sig=`,
/// `X-Amz-Signature=`, `-d client_secret=…&code=…`, `/p:Password=…`. The value runs to the next
/// delimiter; a quoted one to its closing quote.
fn pairs(text: &str, ranges: &mut Vec<(usize, usize)>) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(found) = bytes[i..].iter().position(|&b| b == b'=') {
        let eq = i + found;
        // The name ends at the '=' and starts after the last byte that cannot be in one; it never
        // reaches back past `i`, so every byte is walked back over once.
        let mut start = eq;
        while start > i && is_name_byte(bytes[start - 1]) {
            start -= 1;
        }
        i = eq + 1;
        // The shortest secret names (`pw`, `sig`) have two letters; most `=` have a short name.
        if eq - start < 2 || !looks_secret(&text[start..eq]) {
            continue;
        }
        let value_start = eq + 1;
        let value_end = match bytes.get(value_start) {
            Some(&quote @ (b'"' | b'\'')) => bytes[value_start + 1..]
                .iter()
                .position(|&b| b == quote)
                .map_or(bytes.len(), |len| value_start + len + 2),
            _ => bytes[value_start..]
                .iter()
                .position(|&b| ends_value(b))
                .map_or(bytes.len(), |len| value_start + len),
        };
        ranges.push((value_start, value_end));
        i = value_end.max(i);
    }
}

/// Webhook URLs whose path is the credential, and where it starts. Slack's incoming webhooks
/// and workflow triggers, Discord's webhooks, and the Telegram Bot API (`/bot<token>/method`),
/// each as its vendor documents the URL.
const WEBHOOK_PATHS: &[(&str, bool)] = &[
    ("hooks.slack.com/services/", false),
    ("hooks.slack.com/workflows/", false),
    ("hooks.slack.com/triggers/", false),
    ("hooks.slack-gov.com/services/", false),
    ("discord.com/api/webhooks/", false),
    ("discordapp.com/api/webhooks/", false),
    // Only the token segment: the method after it (`/sendMessage`) is worth reading.
    ("api.telegram.org/bot", true),
    ("api.telegram.org/file/bot", true),
];

/// Path parts that every webhook URL above holds; paths are case-sensitive, so a text without
/// any of them is passed over without lower-casing it.
const WEBHOOK_HINTS: &[&str] = &[
    "/services/",
    "/workflows/",
    "/triggers/",
    "/webhooks/",
    "/bot",
];

fn webhook_paths(text: &str, ranges: &mut Vec<(usize, usize)>) {
    if !WEBHOOK_HINTS.iter().any(|hint| text.contains(hint)) {
        return;
    }
    let lower = text.to_ascii_lowercase();
    let bytes = text.as_bytes();
    for &(marker, one_segment) in WEBHOOK_PATHS {
        let mut from = 0;
        while let Some(found) = lower[from..].find(marker) {
            let start = from + found + marker.len();
            let end = bytes[start..]
                .iter()
                .position(|&b| {
                    matches!(b, b'?' | b'#' | b'"' | b'\'' | b'`' | b'<' | b'>')
                        || b.is_ascii_whitespace()
                        || (one_segment && b == b'/')
                })
                .map_or(bytes.len(), |len| start + len);
            ranges.push((start, end));
            // Past the masked path, not just the marker: a path full of markers is walked once.
            from = end;
        }
    }
}

/// Which bytes a token's body is made of.
#[derive(Clone, Copy)]
enum Body {
    /// `[A-Za-z0-9]`
    Base62,
    /// `[A-Za-z0-9_]`
    Word,
    /// `[A-Za-z0-9_-]`: base64url.
    UrlSafe,
    /// `[A-Za-z0-9_.-]`
    Dotted,
    /// `[A-Za-z0-9-]`
    Dashed,
    /// `[A-Z0-9]`
    Upper,
}

impl Body {
    fn has(self, b: u8) -> bool {
        match self {
            Body::Base62 => b.is_ascii_alphanumeric(),
            Body::Word => b.is_ascii_alphanumeric() || b == b'_',
            Body::UrlSafe => b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'),
            Body::Dotted => b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'),
            Body::Dashed => b.is_ascii_alphanumeric() || b == b'-',
            Body::Upper => b.is_ascii_uppercase() || b.is_ascii_digit(),
        }
    }
}

/// Vendor tokens: documented prefix, the bytes of the rest, and its shortest length. The prefix
/// stays readable (`ghp_***` says which kind of credential was there); the rest is masked to the
/// end of its run however long it is. Longer prefixes come before their shorter look-alikes.
const TOKENS: &[(&str, Body, usize)] = &[
    // GitHub: `ghp_` (classic PAT), `gho_`, `ghu_`, `ghs_`, `ghr_` + 36 base62 today; GitHub says
    // the length may grow. Fine-grained PATs: `github_pat_` + 82.
    ("github_pat_", Body::Word, 40),
    ("ghp_", Body::Base62, 30),
    ("gho_", Body::Base62, 30),
    ("ghu_", Body::Base62, 30),
    ("ghs_", Body::Base62, 30),
    ("ghr_", Body::Base62, 30),
    // GitLab's token prefixes: personal, OAuth secret, deploy, runner, CI job, trigger, feed,
    // incoming mail, agent, SCIM, feature flags client.
    ("glpat-", Body::Dotted, 20),
    ("gloas-", Body::Dotted, 20),
    ("gldt-", Body::Dotted, 20),
    ("glrt-", Body::Dotted, 20),
    ("glcbt-", Body::Dotted, 20),
    ("glptt-", Body::Dotted, 20),
    ("glft-", Body::Dotted, 20),
    ("glimt-", Body::Dotted, 20),
    ("glagent-", Body::Dotted, 20),
    ("glsoat-", Body::Dotted, 20),
    ("glffct-", Body::Dotted, 20),
    // Slack: bot, user, app, refresh, legacy workspace tokens, rotating and app-level tokens.
    ("xoxb-", Body::Dashed, 10),
    ("xoxp-", Body::Dashed, 10),
    ("xoxa-", Body::Dashed, 10),
    ("xoxr-", Body::Dashed, 10),
    ("xoxs-", Body::Dashed, 10),
    ("xoxe.xoxp-", Body::Dashed, 10),
    ("xoxe-", Body::Dashed, 10),
    ("xapp-", Body::Dashed, 10),
    // AWS access key ids: `AKIA` (long-term) and `ASIA` (temporary) + 16.
    ("AKIA", Body::Upper, 16),
    ("ASIA", Body::Upper, 16),
    // Stripe: secret and restricted keys, live and test, and webhook signing secrets.
    ("sk_live_", Body::Base62, 16),
    ("sk_test_", Body::Base62, 16),
    ("rk_live_", Body::Base62, 16),
    ("rk_test_", Body::Base62, 16),
    ("whsec_", Body::UrlSafe, 16),
    // npm: `npm_` + 36 base62.
    ("npm_", Body::Base62, 36),
    // PyPI: `pypi-` + a base64url macaroon, well over 100 long.
    ("pypi-", Body::UrlSafe, 40),
    // Docker Hub: personal and organisation access tokens.
    ("dckr_pat_", Body::UrlSafe, 20),
    ("dckr_oat_", Body::UrlSafe, 20),
    // Anthropic (`sk-ant-api03-…`, `sk-ant-admin01-…`) before OpenAI's `sk-` and `sk-proj-`.
    ("sk-ant-", Body::UrlSafe, 20),
    ("sk-", Body::UrlSafe, 32),
    // Google API keys: `AIza` + 35.
    ("AIza", Body::UrlSafe, 35),
    // Hugging Face user access tokens.
    ("hf_", Body::Base62, 30),
    // HashiCorp Vault service, batch and recovery tokens.
    ("hvs.", Body::UrlSafe, 20),
    ("hvb.", Body::UrlSafe, 20),
    ("hvr.", Body::UrlSafe, 20),
];

/// A JWT (RFC 7519): base64url segments joined by dots, the first a JSON header, so `eyJ`.
const JWT_PREFIX: &str = "eyJ";
/// The shortest text taken for a JWT, with at least two dots: a header alone is 20 long.
const JWT_MIN: usize = 24;

fn jwt_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

/// Which bytes a token or a JWT can start with: a cheap test before the table is walked.
const TOKEN_STARTS: [bool; 256] = {
    let mut starts = [false; 256];
    starts[JWT_PREFIX.as_bytes()[0] as usize] = true;
    let mut i = 0;
    while i < TOKENS.len() {
        starts[TOKENS[i].0.as_bytes()[0] as usize] = true;
        i += 1;
    }
    starts
};

fn starts_a_token(b: u8) -> bool {
    TOKEN_STARTS[usize::from(b)]
}

/// Whether `before` ends with a URL escape (`%20`, `%2F`): what follows it starts a word.
fn is_percent_escape(before: &[u8]) -> bool {
    matches!(before, [.., b'%', a, b] if a.is_ascii_hexdigit() && b.is_ascii_hexdigit())
}

fn tokens(text: &str, ranges: &mut Vec<(usize, usize)>) {
    let bytes = text.as_bytes();
    let mut i = 0;
    // A failed JWT run is failed from any later start inside it (fewer dots, shorter), so it is
    // not walked again: that keeps the scan linear on `eyJ.eyJ.eyJ…`.
    let mut jwt_checked_to = 0;
    while i < bytes.len() {
        let at_boundary = i == 0
            || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_')
            || is_percent_escape(&bytes[..i]);
        if !at_boundary || !starts_a_token(bytes[i]) {
            i += 1;
            continue;
        }
        let rest = &bytes[i..];
        if i >= jwt_checked_to && rest.starts_with(JWT_PREFIX.as_bytes()) {
            let len = rest
                .iter()
                .position(|&b| !jwt_byte(b))
                .unwrap_or(rest.len());
            let dots = rest[..len].iter().filter(|&&b| b == b'.').count();
            if len >= JWT_MIN && dots >= 2 {
                ranges.push((i, i + len));
                i += len;
                continue;
            }
            jwt_checked_to = i + len;
        }
        let found = TOKENS.iter().find_map(|&(prefix, body, min)| {
            let after = rest.strip_prefix(prefix.as_bytes())?;
            // Only as far as the shortest length to decide; the whole run once it matched.
            let short = after.iter().take(min).take_while(|&&b| body.has(b)).count();
            (short == min).then(|| {
                let len = after
                    .iter()
                    .position(|&b| !body.has(b))
                    .unwrap_or(after.len());
                (prefix.len(), len)
            })
        });
        match found {
            Some((prefix_len, len)) => {
                ranges.push((i + prefix_len, i + prefix_len + len));
                i += prefix_len + len;
            }
            None => i += 1,
        }
    }
}

/// The label of a PEM private key (RFC 7468 §10, and PGP's armor), bounded so that a stray
/// `-----BEGIN` cannot make the search walk the rest of the text.
const PEM_LABEL_MAX: usize = 64;

/// Masks the body of every PEM private key block in `argv`, before anything else reads it: a
/// rule that masks a header or a quoted value could otherwise take the `-----BEGIN` line and
/// leave the key's lines after it readable. An unquoted key arrives as many arguments, so the
/// argv is searched joined with NULs (which no argument read from /proc holds) and split again.
pub(super) fn mask_pem_blocks<S: AsRef<str>>(argv: &[S]) -> Vec<Cow<'_, str>> {
    let borrowed = || argv.iter().map(|arg| Cow::Borrowed(arg.as_ref())).collect();
    if !argv.iter().any(|arg| arg.as_ref().contains("-----BEGIN")) {
        return borrowed();
    }
    if argv.iter().any(|arg| arg.as_ref().contains('\0')) {
        return argv
            .iter()
            .map(|arg| Cow::Owned(mask_pem(arg.as_ref())))
            .collect();
    }
    let joined = argv
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join("\0");
    mask_pem(&joined)
        .split('\0')
        .map(|arg| Cow::Owned(arg.to_owned()))
        .collect()
}

/// Masks the body of every PEM private key block in `text`: between `-----BEGIN … PRIVATE
/// KEY-----` and `-----END`, or to the end when the block is not closed.
fn mask_pem(text: &str) -> String {
    let blank = |c: char| c.is_whitespace() || c == '\0';
    let mut ranges = Vec::new();
    let mut from = 0;
    while let Some(found) = text[from..].find("-----BEGIN") {
        let label_start = from + found + "-----BEGIN".len();
        let label = text[label_start..]
            .find("-----")
            .filter(|&len| len <= PEM_LABEL_MAX)
            .map(|len| &text[label_start..label_start + len]);
        // Resume right after this `-----BEGIN`, not after its label: a label that is not one
        // may run into the next block's marker.
        from = label_start;
        let Some(label) = label.filter(|label| label.contains("PRIVATE")) else {
            continue;
        };
        let body_start = label_start + label.len() + "-----".len();
        let body_end = text[body_start..]
            .find("-----END")
            .map_or(text.len(), |len| body_start + len);
        let body = &text[body_start..body_end];
        let start = body_start + (body.len() - body.trim_start_matches(blank).len());
        let end = body_start + body.trim_end_matches(blank).len();
        ranges.push((start, end.max(start)));
        from = body_end;
    }
    replace(text, ranges)
}

/// Replaces each range of `text` with [`MASK`]; overlapping and touching ranges become one.
fn replace(text: &str, mut ranges: Vec<(usize, usize)>) -> String {
    ranges.retain(|&(start, end)| start < end);
    if ranges.is_empty() {
        return text.to_owned();
    }
    ranges.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (start, end) in merged {
        // Every scanner stops at ASCII bytes, so these are character boundaries; widening to
        // one keeps a mistake from panicking, and masks more rather than less.
        let start = floor_boundary(text, start).max(copied);
        let end = ceil_boundary(text, end);
        if end <= start {
            continue;
        }
        out.push_str(&text[copied..start]);
        out.push_str(MASK);
        copied = end;
    }
    out.push_str(&text[copied..]);
    out
}

fn floor_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_boundary(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i += 1;
    }
    i
}
