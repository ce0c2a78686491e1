//! The first pass: names, and the values they give away, word by word.
//!
//! Owns the rules that need a word's neighbours: `--token x`, `NAME=value`, headers
//! (`Authorization: Bearer x`, `Cookie: a=b; c=d`), keys of JSON and YAML (`"password": "x"`),
//! quoted values that span words (`--password="a b"` in a script) and the credential options of
//! known programs ([`super::programs`]). It reads the argv as the program sees it: an argument is
//! one unit, and inside one (a `sh -c` script, a header, a multi-line YAML value) words are split
//! at whitespace. Shapes that give themselves away wherever they stand (URLs, vendor tokens) are
//! the second pass's, [`super::shapes`].

use super::names::{is_name, is_secret_header, looks_secret};
use super::programs::{Context, Found, Value};
use super::MASK;

/// Words after which the next word is a credential wherever they stand (`Bearer x`).
const SCHEMES: &[&str] = &["bearer", "basic", "token"];

/// Authorization schemes (RFC 9110 §11, and the vendors' own: Discord's `Bot`, Okta's `SSWS`,
/// Elasticsearch's `ApiKey`, Splunk HEC's `Splunk`) that stay readable after a header name; what
/// follows them is masked to the end of the header.
const HEADER_SCHEMES: &[&str] = &[
    "bearer",
    "basic",
    "token",
    "digest",
    "bot",
    "negotiate",
    "ntlm",
    "oauth",
    "apikey",
    "aws4-hmac-sha256",
    "ssws",
    "splunk",
    "geniekey",
    "sso-key",
];

/// Characters that wrap a word without being part of its name: quotes and brackets.
const LEAD: &[char] = &['"', '\'', '`', '(', '[', '{', '<'];

/// Quotes and brackets around a key of a JSON or dict literal.
const KEY_PUNCTUATION: &[char] = &['"', '\'', '{', '[', ',', '(', ' '];

/// What the next word is.
#[derive(Clone, Copy)]
enum Next {
    /// A credential (`--token x`, `"password": "x"`, `curl -u admin:x`); a scheme word before it
    /// stays readable (`--header Authorization: Bearer x` split over words).
    Value(Value),
    /// A header's value, masked to `End` after one readable authorization scheme.
    Header(End, bool),
}

/// Where a value that spans words ends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    /// At the end of the line: a header, a YAML scalar.
    Line,
    /// At the closing quote. `true` when the quote belongs to the text around the value
    /// (`'Authorization: Bearer x'`) and is kept; `false` when it is the value's own quote
    /// (`--password="a b"`) and goes with it.
    Quote(char, bool),
    /// At the end of the argument: `--password=a b` as one argument is one value.
    Argument,
}

/// State carried from one argument to the next.
#[derive(Default)]
pub(super) struct Words {
    /// The next argument is a credential (`--password` then `a b`).
    pending: Option<Value>,
    /// The previous argument was `-c` (`sh -c`, `bash -lc`): this one is a script.
    after_dash_c: bool,
    program: Context,
}

/// State within one argument.
struct Arg {
    out: String,
    next: Option<Next>,
    /// Words up to this end belong to a masked value and are dropped.
    swallow: Option<End>,
    /// The previous word was a bare secret name (`Authorization` of `Authorization : x`), and
    /// whether it began its line.
    bare_name: Option<bool>,
    /// The argument is a script: `NAME=value` at its start ends at the first space.
    script: bool,
}

impl Words {
    /// Masks one argument.
    pub(super) fn argument(&mut self, arg: &str) -> String {
        let script = std::mem::replace(&mut self.after_dash_c, is_dash_c(arg));
        if let Some(value) = self.pending.take() {
            if value == Value::Whole && is_one_of(arg, SCHEMES) {
                self.pending = Some(value);
                return arg.to_owned();
            }
            // A value that is itself a secret flag (`--password --token x`) passes the mask on.
            if is_secret_flag(arg) {
                self.pending = Some(Value::Whole);
            }
            // The whole argument is the value: a password may hold spaces.
            return match value {
                Value::Whole => MASK.to_owned(),
                Value::UserPass => user_pass(arg),
            };
        }
        let mut a = Arg {
            out: String::with_capacity(arg.len()),
            next: None,
            swallow: None,
            bare_name: None,
            script,
        };
        let mut rest = arg;
        let mut line_start = true;
        let mut first = true;
        loop {
            let space_len = rest
                .find(|c: char| !c.is_whitespace())
                .unwrap_or(rest.len());
            let (space, tail) = rest.split_at(space_len);
            if space.contains('\n') {
                line_start = true;
                if a.swallow == Some(End::Line) {
                    a.swallow = None;
                }
            }
            if a.swallow.is_none() {
                a.out.push_str(space);
            }
            if tail.is_empty() {
                break;
            }
            let word_len = tail.find(char::is_whitespace).unwrap_or(tail.len());
            let (word, after) = tail.split_at(word_len);
            self.word(&mut a, word, line_start, first);
            line_start = false;
            first = false;
            rest = after;
        }
        // A name that ends its argument (`--password`, `Authorization:`) has its value in the
        // next one.
        self.pending = a.next.map(|next| match next {
            Next::Value(value) => value,
            Next::Header(..) => Value::Whole,
        });
        a.out
    }

    fn word(&mut self, a: &mut Arg, word: &str, line_start: bool, first: bool) {
        if let Some(end) = a.swallow {
            if let End::Quote(quote, keep) = end {
                if let Some(close) = word.find(quote) {
                    a.swallow = None;
                    if keep {
                        a.out.push(quote);
                    }
                    let rest = &word[close + quote.len_utf8()..];
                    if !rest.is_empty() {
                        self.fresh(a, rest, false, false);
                    }
                }
            }
            return;
        }
        match a.next.take() {
            Some(next) => self.value(a, word, next),
            None => self.fresh(a, word, line_start, first),
        }
    }

    /// A word that a name before it made a value.
    fn value(&mut self, a: &mut Arg, word: &str, next: Next) {
        match next {
            Next::Value(value) => {
                if value == Value::Whole && is_one_of(word, SCHEMES) {
                    a.out.push_str(word);
                    a.next = Some(next);
                    return;
                }
                push_value(a, word, value);
                if is_secret_flag(word) {
                    a.next = Some(Next::Value(Value::Whole));
                }
            }
            Next::Header(end, scheme_seen) => {
                if !scheme_seen && is_one_of(word, HEADER_SCHEMES) {
                    a.out.push_str(word);
                    a.next = Some(Next::Header(end, true));
                    return;
                }
                a.out.push_str(MASK);
                if let End::Quote(quote, keep) = end {
                    if let Some(close) = word.find(quote) {
                        if keep {
                            a.out.push(quote);
                        }
                        let rest = &word[close + quote.len_utf8()..];
                        if !rest.is_empty() {
                            self.fresh(a, rest, false, false);
                        }
                        return;
                    }
                }
                a.swallow = Some(end);
            }
        }
    }

    /// A word that nothing before it made a value.
    fn fresh(&mut self, a: &mut Arg, word: &str, line_start: bool, first: bool) {
        let bare_name = a.bare_name.take();
        let core = word.trim_start_matches(LEAD);
        let lead = &word[..word.len() - core.len()];
        if let Some(found) = self.program.option(core) {
            self.program.advance(core);
            match found {
                Found::Separate(value) => {
                    a.out.push_str(word);
                    a.next = Some(Next::Value(value));
                }
                Found::Attached(at, value) => {
                    let (option, credential) = core.split_at(at);
                    a.out.push_str(lead);
                    a.out.push_str(option);
                    push_value(a, credential, value);
                }
            }
            return;
        }
        self.program.advance(core);
        if core == ":" {
            if let Some(line_start) = bare_name {
                // `Authorization : Bearer x`.
                a.out.push_str(word);
                a.next = Some(after_key(word, line_start));
                return;
            }
        }
        let mut word = word;
        let mut core = core;
        let mut lead = lead;
        // `--env=PASSWORD=x`, `-c http.extraHeader=Authorization: …`: a name whose value is not
        // secret is written out, and its value read as a word of its own.
        while let Some((name, value)) = core.split_once('=') {
            if !is_name(name) {
                break;
            }
            a.out.push_str(lead);
            a.out.push_str(name);
            a.out.push('=');
            if looks_secret(name) {
                if first && !a.script {
                    // An argument `--password=a b` or `PASSWORD=a b` is one value, spaces and
                    // all; in a script the shell would end it at the space.
                    a.out.push_str(MASK);
                    a.swallow = Some(End::Argument);
                } else if let Some(quote) = opens_quote(word) {
                    // `'PASSWORD=a b'` in a script: the quote before the name holds the value.
                    a.out.push_str(MASK);
                    a.swallow = Some(End::Quote(quote, true));
                } else {
                    push_value(a, value, Value::Whole);
                }
                return;
            }
            if value.is_empty() {
                return;
            }
            word = value;
            core = value.trim_start_matches(LEAD);
            lead = &value[..value.len() - core.len()];
        }
        if let Some(key) = core.strip_suffix(':') {
            // A key of a JSON, YAML or header line: `"GITHUB_TOKEN": "v"`, `password: v`.
            let key = key.trim_matches(KEY_PUNCTUATION);
            if !key.contains("://") && looks_secret(key) {
                a.out.push_str(word);
                a.next = Some(after_key(word, line_start));
                return;
            }
        }
        if let Some((name, value)) = core.split_once(':') {
            if !value.is_empty() && is_secret_header(name) {
                // `Authorization:Bearer x`, `X-Api-Key:abc`: a header with no space.
                a.out.push_str(lead);
                a.out.push_str(name);
                a.out.push(':');
                self.value(a, value, after_key(word, line_start));
                return;
            }
        }
        if is_secret_flag(core) || is_one_of(core, SCHEMES) {
            a.out.push_str(word);
            a.next = Some(Next::Value(Value::Whole));
            return;
        }
        let (masked, open) = mask_inline_pairs(word);
        a.out.push_str(&masked);
        if open {
            a.swallow = Some(End::Quote('"', false));
        }
        let key = word.trim_matches(KEY_PUNCTUATION);
        a.bare_name = (is_name(key) && looks_secret(key)).then_some(line_start);
    }
}

/// What follows a secret key that ends with a colon. Inside a quote that the key opened
/// (`'Authorization: Bearer x'` in a script), the header runs to the closing quote; at the start
/// of a line (a header argument, a YAML line), to the end of the line; elsewhere (a JSON object
/// or a YAML flow mapping on one line) the value is the next word.
fn after_key(word: &str, line_start: bool) -> Next {
    match opens_quote(word) {
        Some(quote) => Next::Header(End::Quote(quote, true), false),
        // `{password: x, user: y}` begins its line but is a flow mapping, not a YAML line.
        None if line_start && !word.starts_with(['{', '[']) => Next::Header(End::Line, false),
        None => Next::Value(Value::Whole),
    }
}

/// The quote that `word` opens and does not close: the first quote among its leading
/// characters, when it appears an odd number of times.
fn opens_quote(word: &str) -> Option<char> {
    let core = word.trim_start_matches(LEAD);
    let quote = word[..word.len() - core.len()]
        .chars()
        .find(|&c| c == '"' || c == '\'')?;
    (word.matches(quote).count() % 2 == 1).then_some(quote)
}

/// Writes the masked `value` of one word; a value that opens a quote swallows the words up to
/// its closing one (`--password="a b"`).
fn push_value(a: &mut Arg, value: &str, kind: Value) {
    // `export TOKEN=x;` in a script: the `;` ends the command, not the value.
    let (value, semicolon) = match value.strip_suffix(';') {
        Some(stripped) if !stripped.is_empty() && opens_quote(value).is_none() => (stripped, true),
        _ => (value, false),
    };
    match kind {
        Value::UserPass => a.out.push_str(&user_pass(value)),
        Value::Whole => a.out.push_str(MASK),
    }
    if let Some(quote) = opens_quote(value) {
        a.swallow = Some(End::Quote(quote, false));
    }
    if semicolon {
        a.out.push(';');
    }
}

/// `user:password` with the password masked; with an empty password (`-u TOKEN:`) the user is
/// the credential. A user alone is readable: the program asks for the password.
fn user_pass(value: &str) -> String {
    match value.split_once(':') {
        Some((user, password)) if !password.is_empty() => format!("{user}:{MASK}"),
        Some(_) => format!("{MASK}:"),
        None => value.to_owned(),
    }
}

fn is_one_of(word: &str, words: &[&str]) -> bool {
    words.iter().any(|w| word.eq_ignore_ascii_case(w))
}

/// `-c`, `-lc`, `-ec`: the next argument is a script (`sh -c`, `bash -lc`, `python -c`).
fn is_dash_c(arg: &str) -> bool {
    arg.len() <= 6
        && arg.strip_prefix('-').is_some_and(|flags| {
            flags.contains('c') && flags.bytes().all(|b| b.is_ascii_lowercase())
        })
}

/// `--token`, `-auth`: a flag whose value is secret, written without `=`.
fn is_secret_flag(word: &str) -> bool {
    let name = word.trim_start_matches('-');
    name.len() < word.len() && !name.is_empty() && !word.contains('=') && looks_secret(name)
}

/// Masks the values of secret-looking keys in compact JSON inside one word:
/// `{"token":"abc","user":"u"}` becomes `{"token":"***","user":"u"}`. Also says whether the
/// last masked string was left open (`{"password":"a` of `{"password":"a b"}`), so that the
/// words up to its closing quote are masked too.
fn mask_inline_pairs(word: &str) -> (String, bool) {
    let mut out = String::with_capacity(word.len());
    let mut rest = word;
    let mut open = false;
    while let Some(colon) = rest.find("\":") {
        let (before, after) = rest.split_at(colon + 2);
        out.push_str(before);
        let key_start = before[..colon].rfind('"').map_or(0, |q| q + 1);
        let key = &before[key_start..colon];
        rest = after;
        // A key that ends the word has its value in the next word: the caller handles it.
        if !looks_secret(key) || after.is_empty() {
            continue;
        }
        // The value runs to the closing quote of a string, or to the next `,` or `}`.
        let (value_len, quoted) = match after.strip_prefix('"') {
            Some(inner) => match inner.find('"') {
                Some(end) => (end + 2, true),
                // Unterminated: the value is the rest of the word, and goes on in the next.
                None => {
                    open = true;
                    (after.len(), true)
                }
            },
            None => (after.find([',', '}']).unwrap_or(after.len()), false),
        };
        out.push_str(if quoted { "\"***\"" } else { MASK });
        rest = &after[value_len.min(after.len())..];
    }
    out.push_str(rest);
    (out, open)
}
