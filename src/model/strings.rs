//! String helpers that more than one stage needs: one of each.
//!
//! The display cut, the escape of chat markup (Slack and Telegram's HTML mode ask for the same
//! three), the masking of a URL down to its origin, and the comma-list split of settings.

/// `s` cut to at most `max` characters, with `…` in place of what was cut.
pub fn cut(mut s: String, max: usize) -> String {
    if s.chars().count() <= max {
        return s;
    }
    let keep = max.saturating_sub(1);
    let end = s.char_indices().nth(keep).map_or(s.len(), |(i, _)| i);
    s.truncate(end);
    if max > 0 {
        s.push('…');
    }
    s
}

/// The three characters chat markup gives meaning to (`<@U1>` pings in Slack, `<b>` is bold in
/// Telegram's HTML mode), escaped as entities.
pub fn escape_markup(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A URL as it may be printed: its origin, and `/***` when it has a path, query or credentials
/// (Slack and Telegram put their tokens there). Anything that is not a URL with a host is `***`.
pub fn mask_url(value: &str) -> String {
    match url::Url::parse(value) {
        Ok(url) if url.host_str().is_some() => {
            let origin = url.origin().ascii_serialization();
            let hidden = url.path() != "/"
                || url.query().is_some()
                || !url.username().is_empty()
                || url.password().is_some();
            if hidden {
                format!("{origin}/***")
            } else {
                origin
            }
        }
        _ => "***".to_string(),
    }
}

/// Free text from outside (a receiver's error, a log line) with every word that looks like a
/// secret masked, by the same rules as command lines.
pub fn mask_text(text: &str) -> String {
    let words: Vec<&str> = text.split(' ').collect();
    watchdog_collectors::mask::mask_cmdline(&words)
}

/// The items of a comma-separated setting, trimmed, empty ones dropped.
pub fn comma_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_keeps_short_strings_and_marks_long_ones() {
        assert_eq!(cut("abc".into(), 3), "abc");
        assert_eq!(cut("abcd".into(), 3), "ab…");
        assert_eq!(cut("жжжж".into(), 2), "ж…");
        assert_eq!(cut("abc".into(), 0), "");
    }

    #[test]
    fn markup_is_escaped_so_nobody_is_pinged() {
        assert_eq!(
            escape_markup("pytest <!channel> & <@U1> -> x"),
            "pytest &lt;!channel&gt; &amp; &lt;@U1&gt; -&gt; x"
        );
    }

    #[test]
    fn mask_url_keeps_only_the_origin() {
        assert_eq!(mask_url("http://127.0.0.1:9093"), "http://127.0.0.1:9093");
        assert_eq!(mask_url("http://127.0.0.1:9093/"), "http://127.0.0.1:9093");
        assert_eq!(mask_url("https://h/a/b?c=d"), "https://h/***");
        assert_eq!(mask_url("https://u:p@h/"), "https://h/***");
        assert_eq!(mask_url("not a url"), "***");
    }

    #[test]
    fn comma_lists_are_trimmed_and_skip_empty_items() {
        assert_eq!(comma_list(" a, b ,,c ,"), ["a", "b", "c"]);
        assert!(comma_list(" , ").is_empty());
    }
}
