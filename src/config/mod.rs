//! Configuration from `WATCHDOG_*` environment variables.
//!
//! Owns reading the variables it is handed (never the process environment itself, so tests
//! pass their own), their checks, how they are shown, and the typed settings each part gets.
//! Each variable is declared once, in [`vars`]; everything here is derived from that
//! declaration. Values are parsed once, at start: nothing re-reads a setting's text later. It
//! never prints a secret.
//!
//! envy does the typed parsing; before it, every value is checked against its declaration, so
//! that an empty value counts as unset (the example file can be used as an `env_file`), a number
//! outside its range is refused, and every error names the full variable and what it wanted.

mod settings;
mod vars;

use std::collections::BTreeMap;
use std::path::Path;

use watchdog_collectors::pattern::PatternSet;

pub use settings::{
    DeliverySettings, EndpointSettings, JobsSettings, JobsSourceSettings, PressureSettings,
    ProcSettings, RunnerSettings, Settings,
};
pub use vars::{
    Check, Config, Decimal, LogFormat, Shown, Var, DEFAULT_JOBS_QUERY, DEFAULT_LISTEN, VARS,
};

pub use crate::model::Lang;
pub use crate::signals::proc::GroupBy;

/// The prefix of every variable.
pub const PREFIX: &str = "WATCHDOG_";

/// A variable whose value could not be used. Shown as one line; exits with status 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}{shown}: expected {expected}", shown = shown_value(.value.as_deref()))]
pub struct ConfigError {
    /// The full variable name.
    pub var: String,
    /// The value, unless it may hold a secret.
    pub value: Option<String>,
    pub expected: String,
}

fn shown_value(value: Option<&str>) -> String {
    value.map(|v| format!("={v:?}")).unwrap_or_default()
}

/// A `WATCHDOG_*` variable that no setting reads: usually a typo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownVar {
    pub var: String,
    /// The known variable it most resembles, when one is close.
    pub closest: Option<String>,
}

impl std::fmt::Display for UnknownVar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is not a watchdog setting", self.var)?;
        match &self.closest {
            Some(closest) => write!(f, " (did you mean {closest}?)"),
            None => Ok(()),
        }
    }
}

/// A loaded configuration and what was odd about the variables it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub unknown: Vec<UnknownVar>,
    /// The certificates of `WATCHDOG_CA_FILE`, read once, by validation.
    pub ca_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
}

fn var(key: &str) -> Option<&'static Var> {
    VARS.iter().find(|v| v.key == key)
}

impl Config {
    /// Reads the configuration from `vars` (name, value pairs; other prefixes are ignored).
    ///
    /// # Errors
    /// The first variable whose value is malformed, out of its range, or fails validation.
    pub fn from_vars<I>(vars: I) -> Result<Loaded, ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let mut set = BTreeMap::new();
        let mut unknown = Vec::new();
        for (name, value) in vars {
            let Some(key) = name.strip_prefix(PREFIX) else {
                continue;
            };
            let key = key.to_ascii_lowercase();
            let Some(declared) = var(&key) else {
                unknown.push(UnknownVar {
                    closest: closest_var(&name),
                    var: name,
                });
                continue;
            };
            // Empty counts as unset, so an example file with blank values keeps the defaults.
            let value = value.trim().to_string();
            if value.is_empty() {
                continue;
            }
            check(declared, &value)?;
            set.insert(key, value);
        }
        let config: Config = envy::from_iter(set.clone()).map_err(|e| {
            // Every value passed its declared check, so this is a type the check does not
            // cover; blame the variable that fails on its own.
            let key = set
                .iter()
                .find(|(k, v)| {
                    envy::from_iter::<_, Config>([((*k).clone(), (*v).clone())]).is_err()
                })
                .map(|(k, _)| k.clone())
                .unwrap_or_default();
            let mut error = Self::invalid(&key, set.get(&key).map(String::as_str));
            error.expected = format!("{} ({e})", error.expected);
            error
        })?;
        config.validate()?;
        let ca_roots = config.ca_roots()?;
        Ok(Loaded {
            config,
            unknown,
            ca_roots,
        })
    }

    /// Checks what one variable alone cannot say.
    fn validate(&self) -> Result<(), ConfigError> {
        if self.telegram_bot_token.is_empty() != self.telegram_chat_id.is_empty() {
            let missing = if self.telegram_chat_id.is_empty() {
                "telegram_chat_id"
            } else {
                "telegram_bot_token"
            };
            return Err(Self::invalid(missing, None));
        }
        if !self.alertmanager_bearer_token.is_empty() && !self.alertmanager_basic_auth.is_empty() {
            return Err(Self::invalid("alertmanager_bearer_token", None));
        }
        if !self.alertmanager_basic_auth.is_empty() && !self.alertmanager_basic_auth.contains(':') {
            return Err(Self::invalid("alertmanager_basic_auth", None));
        }
        if !self.alertmanager_urls.is_empty()
            && self.alertmanager_hold_s < self.interval_s.saturating_mul(4)
        {
            let value = self.alertmanager_hold_s.to_string();
            return Err(ConfigError {
                expected: "a whole number of seconds, at least 4 x WATCHDOG_INTERVAL_S".into(),
                ..Self::invalid("alertmanager_hold_s", Some(&value))
            });
        }
        if self.jobs_enabled {
            match (self.jobs_url.is_empty(), self.jobs_sqlite.is_empty()) {
                (true, true) => return Err(ConfigError {
                    expected: "a job source while WATCHDOG_JOBS_ENABLED=true: WATCHDOG_JOBS_URL or WATCHDOG_JOBS_SQLITE".into(),
                    ..Self::invalid("jobs_url", None)
                }),
                (false, false) => return Err(ConfigError {
                    expected: "one job source: WATCHDOG_JOBS_URL or WATCHDOG_JOBS_SQLITE, not both".into(),
                    ..Self::invalid("jobs_url", None)
                }),
                _ => {}
            }
        }
        self.jobs_pid_ns_patterns()?;
        if self.listen != "off" && self.listen_addr().is_none() {
            return Err(Self::invalid("listen", Some(&self.listen)));
        }
        // It goes in a header: printable ASCII, and no space to split it.
        if !self.listen_token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Self::invalid("listen_token", None));
        }
        if !self.webhook_secret.is_empty() && self.webhook_key().is_none() {
            return Err(Self::invalid("webhook_secret", None));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log) {
            return Err(ConfigError {
                expected: format!("a tracing filter ({e})"),
                ..Self::invalid("log", Some(&self.log))
            });
        }
        self.proc_pattern_sets()?;
        Ok(())
    }

    /// The certificates of `WATCHDOG_CA_FILE` (none when it is empty).
    ///
    /// # Errors
    /// The file is not a regular file of PEM certificates of at most 1 MiB.
    pub fn ca_roots(&self) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, ConfigError> {
        if self.ca_file.is_empty() {
            return Ok(Vec::new());
        }
        crate::tls::load_ca_file(Path::new(&self.ca_file)).map_err(|e| ConfigError {
            expected: format!("a regular file of PEM certificates, at most 1 MiB ({e})"),
            ..Self::invalid("ca_file", Some(&self.ca_file))
        })
    }

    /// The compiled include and exclude patterns of the proc collector.
    ///
    /// # Errors
    /// An invalid regular expression, or no include pattern at all while the collector is on.
    pub fn proc_pattern_sets(&self) -> Result<(PatternSet, PatternSet), ConfigError> {
        let parse = |key: &str, list: &str| {
            PatternSet::parse(list).map_err(|e| ConfigError {
                expected: format!("valid patterns; {e}"),
                ..Self::invalid(key, Some(list))
            })
        };
        let patterns = parse("proc_patterns", &self.proc_patterns)?;
        let exclude = parse("proc_exclude", &self.proc_exclude)?;
        if self.proc_enabled && patterns.is_empty() {
            return Err(ConfigError {
                expected: "at least one pattern while WATCHDOG_PROC_ENABLED=true".into(),
                ..Self::invalid("proc_patterns", Some(&self.proc_patterns))
            });
        }
        Ok((patterns, exclude))
    }

    /// The pattern of the orchestrator's init, or `None` for `WATCHDOG_JOBS_PID_NS=host`.
    ///
    /// # Errors
    /// An invalid regular expression.
    pub fn jobs_pid_ns_patterns(&self) -> Result<Option<PatternSet>, ConfigError> {
        let value = self.jobs_pid_ns.trim();
        if value.eq_ignore_ascii_case("host") {
            return Ok(None);
        }
        let patterns = PatternSet::parse(value).map_err(|e| ConfigError {
            expected: format!("host, or valid patterns; {e}"),
            ..Self::invalid("jobs_pid_ns", Some(value))
        })?;
        if patterns.is_empty() {
            return Err(Self::invalid("jobs_pid_ns", Some(value)));
        }
        Ok(Some(patterns))
    }

    /// The endpoint's address; `None` when `WATCHDOG_LISTEN=off` (or invalid, which validation
    /// refuses).
    pub fn listen_addr(&self) -> Option<std::net::SocketAddr> {
        self.listen.parse().ok()
    }

    /// The Alertmanager base URLs, trimmed, empty items dropped.
    pub fn alertmanager_url_list(&self) -> Vec<String> {
        crate::model::comma_list(&self.alertmanager_urls)
            .into_iter()
            .map(|u| u.trim_end_matches('/').to_string())
            .collect()
    }

    /// The configured channels as (name, where), secrets masked: for `check-config` and logs.
    pub fn channels(&self) -> Vec<(&'static str, String)> {
        settings::channel_settings(self).targets()
    }

    /// The HMAC key of `WATCHDOG_WEBHOOK_SECRET`: the bytes after `whsec_`, base64-decoded.
    pub fn webhook_key(&self) -> Option<Vec<u8>> {
        use base64::Engine as _;
        let encoded = self.webhook_secret.strip_prefix("whsec_")?;
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .filter(|key| !key.is_empty())
    }

    fn invalid(key: &str, value: Option<&str>) -> ConfigError {
        let declared = var(key);
        ConfigError {
            var: format!("{PREFIX}{}", key.to_ascii_uppercase()),
            value: value
                .filter(|_| declared.is_some_and(|v| v.check.shown() == Shown::AsIs))
                .map(str::to_string),
            expected: declared.map_or_else(|| "a valid value".into(), |v| v.check.expects()),
        }
    }

    /// The setting keys (variable names without the prefix, lower-cased), in display order.
    pub fn keys() -> Vec<String> {
        VARS.iter().map(|v| v.key.to_string()).collect()
    }

    /// Every setting as (key, value as it would be written in the environment), in the order
    /// of [`VARS`].
    pub fn entries(&self) -> Vec<(String, String)> {
        let value = serde_json::to_value(self).unwrap_or_default();
        VARS.iter()
            .map(|v| {
                let text = match value.get(v.key) {
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => String::new(),
                };
                (v.key.to_string(), text)
            })
            .collect()
    }

    /// The effective configuration as `WATCHDOG_*=value` lines, by name, secrets masked.
    pub fn display_lines(&self) -> Vec<String> {
        let mut entries: Vec<((String, String), &Var)> =
            self.entries().into_iter().zip(VARS).collect();
        // By the lower-cased key, the order check-config has always printed.
        entries.sort_by(|a, b| a.0 .0.cmp(&b.0 .0));
        entries
            .into_iter()
            .map(|((key, value), declared)| {
                let shown = match declared.check.shown() {
                    _ if value.is_empty() => value,
                    Shown::Never => "***".to_string(),
                    Shown::Origin => crate::model::comma_list(&value)
                        .iter()
                        .map(|u| mask_url(u))
                        .collect::<Vec<_>>()
                        .join(","),
                    Shown::AsIs => value,
                };
                format!("{PREFIX}{}={shown}", key.to_ascii_uppercase())
            })
            .collect()
    }
}

/// Checks one value against its declaration.
fn check(declared: &Var, value: &str) -> Result<(), ConfigError> {
    let ok = match declared.check {
        Check::Whole { min, max, .. } => {
            value.parse::<u64>().is_ok_and(|n| (min..=max).contains(&n))
        }
        Check::Decimal { min, max, .. } => {
            plain_decimal(value).is_some_and(|n| (min..=max).contains(&n))
        }
        Check::Bool => matches!(value, "true" | "false"),
        Check::OneOf(words) => words.contains(&value),
        Check::Url => http_url(value).is_some(),
        Check::UrlList => crate::model::comma_list(value)
            .iter()
            .all(|u| http_url(u).is_some()),
        Check::Text { .. } | Check::Secret { .. } => true,
    };
    if ok {
        Ok(())
    } else {
        Err(Config::invalid(declared.key, Some(value)))
    }
}

/// A decimal as people type one (`50`, `0.1`, `12.5`): digits and at most one dot, so Rust's
/// float grammar (`inf`, `NaN`, `1e2`, `+5`, `-0`) cannot slip through; finite.
fn plain_decimal(value: &str) -> Option<f64> {
    let plain = value.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && value.bytes().filter(|&b| b == b'.').count() <= 1
        && value.bytes().any(|b| b.is_ascii_digit());
    if !plain {
        return None;
    }
    value.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// `value` as an http(s) URL with a host, or `None`.
pub fn http_url(value: &str) -> Option<url::Url> {
    let url = url::Url::parse(value).ok()?;
    (matches!(url.scheme(), "http" | "https") && url.host_str().is_some()).then_some(url)
}

pub use crate::model::mask_url;

/// The known variable nearest to `name`, if it is near enough to be the intended one.
fn closest_var(name: &str) -> Option<String> {
    VARS.iter()
        .map(Var::name)
        .map(|known| (strsim::levenshtein(name, &known), known))
        .filter(|(distance, known)| *distance <= 3.max(known.len() / 5))
        .min()
        .map(|(_, known)| known)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
        Config::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn defaults_are_the_ones_operators_rely_on() {
        let config = load(&[]).unwrap().config;
        assert_eq!(config, Config::default());
        assert!(!config.proc_enabled);
        assert_eq!(config.proc_age_min, 60);
        assert_eq!(config.proc_patterns, "pytest");
        assert_eq!(config.proc_cooldown_s, 1800);
        assert_eq!(config.proc_root, PathBuf::from("/proc"));
        assert_eq!(config.interval_s, 30);
        assert_eq!(config.proc_group_by, GroupBy::Pgid);
        assert_eq!(config.collect_timeout_s, 10);
        assert_eq!(config.collector_fail_ticks, 3);
        assert_eq!(config.state_dir, PathBuf::from("/var/lib/watchdog"));
        assert_eq!(config.outbox_max, 10_000);
        assert_eq!(config.retry_max_s, 300);
        assert_eq!(config.lang, Lang::En);
    }

    #[test]
    fn values_are_read_and_empty_ones_count_as_unset() {
        let config = load(&[
            ("WATCHDOG_PROC_ENABLED", "true"),
            ("WATCHDOG_PROC_AGE_MIN", " 5 "),
            ("WATCHDOG_PROC_GROUP_BY", "pid"),
            ("WATCHDOG_PROC_PATTERNS", ""),
            ("WATCHDOG_INTERVAL_S", ""),
            ("OTHER_PROC_AGE_MIN", "7"),
        ])
        .unwrap()
        .config;
        assert!(config.proc_enabled);
        assert_eq!(config.proc_age_min, 5);
        assert_eq!(config.proc_group_by, GroupBy::Pid);
        assert_eq!(config.proc_patterns, "pytest");
        assert_eq!(config.interval_s, 30);
    }

    #[test]
    fn bad_values_name_the_full_variable_and_what_it_wanted() {
        let cases: &[(&str, &str, &str)] = &[
            ("WATCHDOG_PROC_AGE_MIN", "abc", "whole number of minutes"),
            ("WATCHDOG_PROC_AGE_MIN", "-5", "whole number of minutes"),
            ("WATCHDOG_PROC_COOLDOWN_S", "1.5", "whole number of seconds"),
            ("WATCHDOG_INTERVAL_S", "0", "at least 1"),
            ("WATCHDOG_INTERVAL_S", "-1", "at least 1"),
            ("WATCHDOG_PROC_ENABLED", "maybe", "true or false"),
            ("WATCHDOG_PROC_ENABLED", "1", "true or false"),
            ("WATCHDOG_PROC_GROUP_BY", "session", "pgid or pid"),
            ("WATCHDOG_PROC_PATTERNS", "re:(", "valid patterns"),
            ("WATCHDOG_PROC_EXCLUDE", "ok, re:[z-a]", "valid patterns"),
            ("WATCHDOG_LOG", "watchdog=loud", "tracing filter"),
            ("WATCHDOG_COLLECT_TIMEOUT_S", "0", "at least 1"),
            ("WATCHDOG_COLLECTOR_FAIL_TICKS", "0", "at least 1"),
            ("WATCHDOG_OUTBOX_MAX", "0", "at least 1"),
            ("WATCHDOG_RETRY_MAX_S", "x", "whole number of seconds"),
            ("WATCHDOG_LOG_FORMAT", "yaml", "text or json"),
            ("WATCHDOG_LANG", "de", "en or ru"),
            (
                "WATCHDOG_WEBHOOK_URL",
                "ftp://h/x",
                "http:// or https:// URL",
            ),
            (
                "WATCHDOG_WEBHOOK_URL",
                "hooks.example/x",
                "http:// or https:// URL",
            ),
            ("WATCHDOG_WEBHOOK_SECRET", "hunter2", "whsec_"),
            ("WATCHDOG_WEBHOOK_SECRET", "whsec_!!notbase64", "whsec_"),
            (
                "WATCHDOG_SLACK_WEBHOOK_URL",
                "hooks.slack.com/x",
                "http:// or https:// URL",
            ),
            (
                "WATCHDOG_ALERTMANAGER_URLS",
                "http://am:9093, am-1:9093",
                "http:// or https://",
            ),
            (
                "WATCHDOG_ALERTMANAGER_BASIC_AUTH",
                "nocolon",
                "user:password",
            ),
            ("WATCHDOG_HEARTBEAT_URL", "ping", "http:// or https:// URL"),
            (
                "WATCHDOG_CA_FILE",
                "/nonexistent/ca.pem",
                "PEM certificates",
            ),
        ];
        for (var, value, wanted) in cases {
            let err = load(&[(var, value)]).expect_err(var);
            assert_eq!(&err.var, var, "{var}={value}");
            let line = err.to_string();
            assert!(line.starts_with(var), "{var}={value}: {line}");
            assert!(line.contains(wanted), "{var}={value}: {line}");
            assert!(!line.contains('\n'), "{var}={value}: {line}");
        }
    }

    #[test]
    fn secrets_are_never_printed_in_errors_or_display() {
        let secret = "whsec_c2VjcmV0LWtleS0x";
        let url = "https://hooks.example.com/services/T0/B0/tok3n?sig=abc";
        let err = load(&[("WATCHDOG_WEBHOOK_URL", "ftp://u:pw@h/tok3n")]).unwrap_err();
        assert!(!err.to_string().contains("tok3n"), "{err}");
        let err = load(&[("WATCHDOG_WEBHOOK_SECRET", "whsec_$$$tok3n")]).unwrap_err();
        assert!(!err.to_string().contains("tok3n"), "{err}");
        let config = load(&[
            ("WATCHDOG_WEBHOOK_URL", url),
            ("WATCHDOG_WEBHOOK_SECRET", secret),
        ])
        .unwrap()
        .config;
        assert_eq!(config.webhook_key().as_deref(), Some(&b"secret-key-1"[..]));
        let lines = config.display_lines().join("\n");
        assert!(
            lines.contains("WATCHDOG_WEBHOOK_URL=https://hooks.example.com/***"),
            "{lines}"
        );
        assert!(lines.contains("WATCHDOG_WEBHOOK_SECRET=***"), "{lines}");
        assert!(
            !lines.contains("tok3n") && !lines.contains("c2Vj"),
            "{lines}"
        );
    }

    #[test]
    fn alertmanager_hold_must_cover_four_intervals() {
        let am = ("WATCHDOG_ALERTMANAGER_URLS", "http://127.0.0.1:9093");
        let err = load(&[am, ("WATCHDOG_INTERVAL_S", "200")]).unwrap_err();
        assert_eq!(err.var, "WATCHDOG_ALERTMANAGER_HOLD_S");
        assert!(load(&[am, ("WATCHDOG_INTERVAL_S", "150")]).is_ok());
        assert!(
            load(&[("WATCHDOG_INTERVAL_S", "200")]).is_ok(),
            "only with Alertmanager on"
        );
    }

    #[test]
    fn channels_are_listed_with_their_secrets_masked() {
        let config = load(&[
            ("WATCHDOG_WEBHOOK_URL", "https://h/hook?key=tok3n"),
            (
                "WATCHDOG_SLACK_WEBHOOK_URL",
                "https://hooks.slack.com/services/T/B/tok3n",
            ),
            ("WATCHDOG_TELEGRAM_BOT_TOKEN", "123:tok3n"),
            ("WATCHDOG_TELEGRAM_CHAT_ID", "-100"),
            (
                "WATCHDOG_ALERTMANAGER_URLS",
                "http://am-0:9093/, http://am-1:9093",
            ),
            ("WATCHDOG_ALERTMANAGER_BASIC_AUTH", "u:tok3n"),
        ])
        .unwrap()
        .config;
        let channels = config.channels();
        let names: Vec<_> = channels.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "webhook",
                "slack",
                "telegram",
                "alertmanager",
                "alertmanager"
            ]
        );
        assert_eq!(channels[3].1, "http://am-0:9093");
        let shown = format!("{channels:?} {}", config.display_lines().join(" "));
        assert!(!shown.contains("tok3n"), "{shown}");
    }

    #[test]
    fn enabling_proc_without_any_pattern_is_an_error() {
        let err = load(&[
            ("WATCHDOG_PROC_ENABLED", "true"),
            ("WATCHDOG_PROC_PATTERNS", " , "),
        ])
        .unwrap_err();
        assert_eq!(err.var, "WATCHDOG_PROC_PATTERNS");
    }

    #[test]
    fn unknown_variables_are_reported_with_the_closest_known_one() {
        let loaded = load(&[
            ("WATCHDOG_PROC_ENABLE", "true"),
            ("WATCHDOG_INTERVALS", "5"),
            ("WATCHDOG_SOMETHING_ELSE_ENTIRELY", "x"),
        ])
        .unwrap();
        let closest: Vec<_> = loaded
            .unknown
            .iter()
            .map(|u| u.closest.as_deref())
            .collect();
        assert_eq!(
            closest,
            [
                Some("WATCHDOG_PROC_ENABLED"),
                Some("WATCHDOG_INTERVAL_S"),
                None
            ]
        );
        assert!(
            !loaded.config.proc_enabled,
            "a typo must not switch anything on"
        );
    }

    #[test]
    fn display_lines_name_every_variable() {
        let lines = Config::default().display_lines();
        assert!(lines.contains(&"WATCHDOG_PROC_ENABLED=false".to_string()));
        assert!(lines.contains(&"WATCHDOG_PROC_EXCLUDE=".to_string()));
        assert_eq!(lines.len(), Config::keys().len());
    }

    #[test]
    fn half_a_telegram_config_names_the_missing_half() {
        let err = load(&[("WATCHDOG_TELEGRAM_BOT_TOKEN", "123:tok3n")]).unwrap_err();
        assert_eq!(err.var, "WATCHDOG_TELEGRAM_CHAT_ID");
        assert!(!err.to_string().contains("tok3n"), "{err}");
        let err = load(&[("WATCHDOG_TELEGRAM_CHAT_ID", "42")]).unwrap_err();
        assert_eq!(err.var, "WATCHDOG_TELEGRAM_BOT_TOKEN");
    }

    #[test]
    fn every_variable_is_declared_once_with_a_doc_line() {
        let mut keys: Vec<&str> = VARS.iter().map(|v| v.key).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), VARS.len(), "a variable is declared twice");
        for v in VARS {
            assert!(!v.doc.is_empty() && !v.doc.contains('\n'), "{}", v.key);
        }
        assert_eq!(Config::default().entries().len(), VARS.len());
    }

    #[test]
    fn every_number_is_refused_just_outside_its_range_and_taken_at_its_ends() {
        for v in VARS {
            let Check::Whole { min, max, .. } = v.check else {
                continue;
            };
            let name = v.name();
            // Alertmanager's hold is only checked against the interval while it is on.
            for ok in [min, max] {
                let loaded = load(&[(&name, &ok.to_string())]);
                assert!(loaded.is_ok(), "{name}={ok}: {:?}", loaded.err());
            }
            let mut refused = vec![max.saturating_add(1).to_string(), "-1".into(), "1e3".into()];
            if min > 0 {
                refused.push((min - 1).to_string());
            }
            for bad in refused {
                let err = load(&[(&name, &bad)]).expect_err(&name);
                assert_eq!(err.var, name, "{name}={bad}");
                assert!(
                    err.to_string().contains(&max.to_string()),
                    "{name}={bad}: {err}"
                );
            }
        }
    }

    #[test]
    fn every_decimal_is_refused_just_outside_its_range_and_taken_at_its_ends() {
        let mut seen = 0;
        for v in VARS {
            let Check::Decimal { min, max, .. } = v.check else {
                continue;
            };
            seen += 1;
            let name = v.name();
            for ok in [min, max, (min + max) / 2.0] {
                let loaded = load(&[(&name, &ok.to_string())]);
                assert!(loaded.is_ok(), "{name}={ok}: {:?}", loaded.err());
            }
            // Just outside at the precision people type: a tenth below the least, a tenth over.
            let below = format!("{:.2}", min - 0.01);
            let over = format!("{:.1}", max + 0.1);
            for bad in [
                below.as_str(),
                over.as_str(),
                "-1",
                "1e1",
                "NaN",
                "inf",
                "+5",
                "1.2.3",
                ".",
                "",
            ] {
                if bad.is_empty() {
                    continue; // empty is unset, not refused
                }
                let err = load(&[(&name, bad)]).expect_err(&format!("{name}={bad}"));
                assert_eq!(err.var, name, "{name}={bad}");
                let line = err.to_string();
                assert!(line.contains(&max.to_string()), "{name}={bad}: {line}");
                assert!(line.contains("decimal number"), "{name}={bad}: {line}");
            }
        }
        assert_eq!(seen, 4, "the four pressure thresholds are decimals");
    }

    #[test]
    fn pressure_thresholds_read_as_typed_and_show_without_a_fraction() {
        let config = load(&[
            ("WATCHDOG_PRESSURE_CPU_PCT", "0.1"),
            ("WATCHDOG_PRESSURE_IO_PCT", "100"),
            ("WATCHDOG_PRESSURE_LOAD_PCT", "10000"),
        ])
        .unwrap()
        .config;
        assert_eq!(config.pressure_cpu_pct, Decimal(0.1));
        assert_eq!(config.pressure_io_pct, Decimal(100.0));
        assert_eq!(config.pressure_memory_pct, Decimal(10.0));
        let lines = config.display_lines();
        for line in [
            "WATCHDOG_PRESSURE_CPU_PCT=0.1",
            "WATCHDOG_PRESSURE_IO_PCT=100",
            "WATCHDOG_PRESSURE_MEMORY_PCT=10",
            "WATCHDOG_PRESSURE_LOAD_PCT=10000",
            "WATCHDOG_PRESSURE_ENABLED=false",
        ] {
            assert!(lines.contains(&line.to_string()), "{line}: {lines:?}");
        }
    }

    #[test]
    fn typo_hints_come_from_the_declared_names() {
        assert_eq!(
            closest_var("WATCHDOG_PROC_AGE_MINS").as_deref(),
            Some("WATCHDOG_PROC_AGE_MIN")
        );
        assert_eq!(closest_var("WATCHDOG_ZZZZZZZZZZZZZZZZZZZZZZ"), None);
    }
}
