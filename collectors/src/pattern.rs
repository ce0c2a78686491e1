//! Command-line patterns: the `WATCHDOG_PROC_PATTERNS` / `WATCHDOG_PROC_EXCLUDE` language.
//!
//! Owns parsing a comma-separated list into matchers and matching a joined command line
//! against them. A plain item is a case-sensitive substring; `re:<regex>` is a regular
//! expression (a comma inside one is written `\x2c`, which the regex syntax itself reads as a
//! comma). Items are trimmed and empty items dropped.

use regex::Regex;

/// One item of a pattern list.
#[derive(Debug, Clone)]
pub enum Pattern {
    Substring(String),
    Regex(Regex),
}

impl Pattern {
    /// Parses one item; `re:` introduces a regular expression.
    ///
    /// # Errors
    /// An invalid regular expression.
    pub fn parse(item: &str) -> Result<Self, PatternError> {
        match item.strip_prefix("re:") {
            Some(expr) => Regex::new(expr)
                .map(Pattern::Regex)
                .map_err(|source| PatternError {
                    item: item.to_string(),
                    reason: one_line(&source),
                }),
            None => Ok(Pattern::Substring(item.to_string())),
        }
    }

    pub fn is_match(&self, cmdline: &str) -> bool {
        match self {
            Pattern::Substring(needle) => cmdline.contains(needle.as_str()),
            Pattern::Regex(re) => re.is_match(cmdline),
        }
    }
}

/// regex's syntax errors draw the pattern with a caret over several lines; the line that says
/// what is wrong is the one starting `error:`.
fn one_line(error: &regex::Error) -> String {
    let text = error.to_string();
    text.lines()
        .find_map(|line| line.trim().strip_prefix("error: "))
        .map_or_else(|| text.replace('\n', " "), str::to_string)
}

/// A comma-separated list of patterns; matches when any item does.
#[derive(Debug, Clone, Default)]
pub struct PatternSet {
    patterns: Vec<Pattern>,
}

impl PatternSet {
    /// Parses a comma-separated list, trimming items and dropping empty ones.
    ///
    /// # Errors
    /// The first item that is an invalid regular expression.
    pub fn parse(list: &str) -> Result<Self, PatternError> {
        let patterns = list
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(Pattern::parse)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { patterns })
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    pub fn is_match(&self, cmdline: &str) -> bool {
        self.patterns.iter().any(|p| p.is_match(cmdline))
    }
}

/// A pattern item that is not a valid regular expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pattern {item:?} is not a valid regular expression: {reason}")]
pub struct PatternError {
    pub item: String,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_trimmed_and_empty_items_dropped() {
        let set = PatternSet::parse(" pytest , ,, tox ,").unwrap();
        assert_eq!(set.len(), 2);
        assert!(set.is_match("python -m pytest tests"));
        assert!(set.is_match("tox -e py311"));
        assert!(!set.is_match("cargo test"));
        assert!(PatternSet::parse(" , ").unwrap().is_empty());
    }

    #[test]
    fn substrings_are_case_sensitive() {
        let set = PatternSet::parse("pytest").unwrap();
        assert!(!set.is_match("PYTEST"));
    }

    #[test]
    fn regex_items_match_and_read_x2c_as_a_comma() {
        let set = PatternSet::parse(r"re:^python.* -m (pytest|unittest)\b, re:a\x2cb").unwrap();
        assert!(set.is_match("python3 -m pytest -x"));
        assert!(!set.is_match("vim pytest.ini"));
        assert!(set.is_match("echo a,b"));
    }

    #[test]
    fn an_invalid_regex_names_the_item() {
        let err = PatternSet::parse("pytest, re:(unclosed").unwrap_err();
        assert_eq!(err.item, "re:(unclosed");
        assert_eq!(err.reason, "unclosed group");
    }
}
