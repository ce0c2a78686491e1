//! Configuration from `WATCHDOG_*` environment variables.
//!
//! Owns the list of settings, their defaults, their validation and how they are shown. It reads
//! the variables it is handed (never the process environment itself, so tests pass their own)
//! and never prints a secret. Every setting here is also in `.env.watchdog.example` and the
//! README's table; a test keeps the example file identical to [`Config::default`].
//!
//! envy does the typed parsing; this module wraps it so that an empty value counts as unset
//! (the example file can be used as an `env_file`), lists are trimmed, and errors name the full
//! variable and what it wanted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use watchdog_collectors::pattern::PatternSet;

pub use crate::text::Lang;

/// The prefix of every variable.
pub const PREFIX: &str = "WATCHDOG_";

/// The default `WATCHDOG_JOBS_QUERY`: every running job of a `jobs` table. Columns are read by
/// name (`id`, `pid`, `state` or `status`, `started_at`, `ended_at`, `heartbeat_at`, `name`);
/// others are ignored.
pub const DEFAULT_JOBS_QUERY: &str = "SELECT * FROM jobs WHERE lower(state) = 'running'";

/// The endpoint's default address: loopback only, on a port outside the 9100-9999 range
/// that Prometheus exporters have allocated among themselves.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:19847";

/// How matching processes become entities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// One signal per process group: a shell and its pytest, or its xdist workers, are one alert.
    Pgid,
    /// One signal per process.
    Pid,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Every setting, named as its variable without the prefix, lower-cased.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Seconds between ticks of `watchdog run`.
    pub interval_s: u64,
    /// Seconds a collector may take before its tick counts as failed.
    pub collect_timeout_s: u64,
    /// Consecutive failed ticks after which a collector's failure is itself an alert.
    pub collector_fail_ticks: u32,
    pub collector_fail_cooldown_s: u64,
    /// The tracing filter (`info`, `watchdog=debug`, ...).
    pub log: String,
    pub log_format: LogFormat,
    /// The host named in every alert; empty means this machine's hostname.
    pub host: String,
    pub lang: Lang,
    /// Where alert state, outboxes and dead letters live.
    pub state_dir: PathBuf,
    /// Undelivered events kept per channel.
    pub outbox_max: usize,
    /// The longest wait between delivery retries, in seconds.
    pub retry_max_s: u64,
    /// Empty: no webhook.
    pub webhook_url: String,
    /// `whsec_<base64>`: sign webhooks by the Standard Webhooks spec. Empty: unsigned.
    pub webhook_secret: String,
    /// A Slack incoming-webhook URL. Empty: no Slack.
    pub slack_webhook_url: String,
    /// A Telegram bot token. Empty: no Telegram.
    pub telegram_bot_token: String,
    pub telegram_chat_id: String,
    /// The Bot API server: the public one, or a self-hosted one.
    pub telegram_api_url: String,
    /// Comma-separated Alertmanager base URLs; every alert goes to every one. Empty: none.
    pub alertmanager_urls: String,
    pub alertmanager_bearer_token: String,
    /// `user:password`.
    pub alertmanager_basic_auth: String,
    /// How long past each send an alert stays firing in Alertmanager without a new send.
    pub alertmanager_hold_s: u64,
    /// A URL fetched once per successful tick (healthchecks-style). Empty: none.
    pub heartbeat_url: String,
    /// Extra PEM certificates every HTTP client trusts. Empty: the system's only.
    pub ca_file: String,
    /// The certificates of `ca_file`, read once by validation; empty without one.
    #[serde(skip)]
    pub ca_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// Where `/metrics`, `/healthz`, `/readyz` and `/status` are served; `off` for nowhere.
    pub listen: String,
    pub jobs_enabled: bool,
    /// The job list as JSON over HTTP; or
    pub jobs_url: String,
    pub jobs_token: String,
    /// a SQLite file, read with `jobs_query`.
    pub jobs_sqlite: String,
    pub jobs_query: String,
    /// States that mean running, compared without case.
    pub jobs_running_states: String,
    /// `host`, or a pattern for the orchestrator container's init.
    pub jobs_pid_ns: String,
    pub jobs_pid_slack_s: u64,
    /// 0 turns the check off.
    pub jobs_max_running_min: u64,
    /// 0 turns the check off.
    pub jobs_heartbeat_s: u64,
    pub jobs_leftover_grace_s: u64,
    pub jobs_leftover_keep_h: u64,
    pub jobs_cooldown_s: u64,
    pub proc_enabled: bool,
    pub proc_root: PathBuf,
    pub proc_patterns: String,
    pub proc_exclude: String,
    pub proc_age_min: u64,
    pub proc_cooldown_s: u64,
    pub proc_group_by: GroupBy,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            interval_s: 30,
            collect_timeout_s: 10,
            collector_fail_ticks: 3,
            collector_fail_cooldown_s: 1800,
            log: "info".into(),
            log_format: LogFormat::Text,
            host: String::new(),
            lang: Lang::En,
            state_dir: PathBuf::from("/var/lib/watchdog"),
            outbox_max: 10_000,
            retry_max_s: 300,
            webhook_url: String::new(),
            webhook_secret: String::new(),
            slack_webhook_url: String::new(),
            telegram_bot_token: String::new(),
            telegram_chat_id: String::new(),
            telegram_api_url: "https://api.telegram.org".into(),
            alertmanager_urls: String::new(),
            alertmanager_bearer_token: String::new(),
            alertmanager_basic_auth: String::new(),
            alertmanager_hold_s: 600,
            heartbeat_url: String::new(),
            ca_file: String::new(),
            ca_roots: Vec::new(),
            listen: DEFAULT_LISTEN.into(),
            jobs_enabled: false,
            jobs_url: String::new(),
            jobs_token: String::new(),
            jobs_sqlite: String::new(),
            jobs_query: DEFAULT_JOBS_QUERY.into(),
            jobs_running_states: "running".into(),
            jobs_pid_ns: "host".into(),
            jobs_pid_slack_s: 120,
            jobs_max_running_min: 120,
            jobs_heartbeat_s: 0,
            jobs_leftover_grace_s: 300,
            jobs_leftover_keep_h: 24,
            jobs_cooldown_s: 1800,
            proc_enabled: false,
            proc_root: PathBuf::from("/proc"),
            proc_patterns: "pytest".into(),
            proc_exclude: String::new(),
            proc_age_min: 60,
            proc_cooldown_s: 1800,
            proc_group_by: GroupBy::Pgid,
        }
    }
}

/// What each variable wants, for error messages. A key missing here falls back to its type.
const EXPECTS: &[(&str, &str)] = &[
    ("interval_s", "a whole number of seconds, at least 1"),
    ("collect_timeout_s", "a whole number of seconds, at least 1"),
    (
        "collector_fail_ticks",
        "a whole number of ticks, at least 1",
    ),
    (
        "collector_fail_cooldown_s",
        "a whole number of seconds (0 or more)",
    ),
    ("log", "a tracing filter such as info or watchdog=debug"),
    ("log_format", "text or json"),
    ("host", "a host name"),
    ("lang", "en or ru"),
    ("state_dir", "a directory"),
    ("outbox_max", "a whole number of events, at least 1"),
    ("retry_max_s", "a whole number of seconds, at least 1"),
    ("webhook_url", "an http:// or https:// URL"),
    ("webhook_secret", "whsec_ followed by a base64 key"),
    ("slack_webhook_url", "an http:// or https:// URL"),
    (
        "telegram_bot_token",
        "a bot token, set together with WATCHDOG_TELEGRAM_CHAT_ID",
    ),
    (
        "telegram_chat_id",
        "a chat id, set together with WATCHDOG_TELEGRAM_BOT_TOKEN",
    ),
    ("telegram_api_url", "an http:// or https:// URL"),
    (
        "alertmanager_urls",
        "a comma-separated list of http:// or https:// base URLs",
    ),
    (
        "alertmanager_bearer_token",
        "a token, not together with WATCHDOG_ALERTMANAGER_BASIC_AUTH",
    ),
    ("alertmanager_basic_auth", "user:password"),
    (
        "alertmanager_hold_s",
        "a whole number of seconds, at least 4 x WATCHDOG_INTERVAL_S",
    ),
    ("heartbeat_url", "an http:// or https:// URL"),
    ("ca_file", "a readable file of PEM certificates"),
    (
        "listen",
        "host:port (such as 127.0.0.1:19847 or 0.0.0.0:19847), or off",
    ),
    ("jobs_enabled", "true or false"),
    (
        "jobs_url",
        "an http:// or https:// URL, or nothing when WATCHDOG_JOBS_SQLITE is set",
    ),
    ("jobs_token", "a bearer token"),
    (
        "jobs_sqlite",
        "the path of a SQLite file, or nothing when WATCHDOG_JOBS_URL is set",
    ),
    ("jobs_query", "an SQL query"),
    ("jobs_running_states", "a comma-separated list of states"),
    (
        "jobs_pid_ns",
        "host, or patterns for the orchestrator's init",
    ),
    ("jobs_pid_slack_s", "a whole number of seconds (0 or more)"),
    (
        "jobs_max_running_min",
        "a whole number of minutes (0 turns it off)",
    ),
    (
        "jobs_heartbeat_s",
        "a whole number of seconds (0 turns it off)",
    ),
    (
        "jobs_leftover_grace_s",
        "a whole number of seconds (0 or more)",
    ),
    (
        "jobs_leftover_keep_h",
        "a whole number of hours (0 or more)",
    ),
    ("jobs_cooldown_s", "a whole number of seconds (0 or more)"),
    ("proc_enabled", "true or false"),
    ("proc_root", "a directory"),
    (
        "proc_patterns",
        "a comma-separated list of substrings or re:<regex> items",
    ),
    (
        "proc_exclude",
        "a comma-separated list of substrings or re:<regex> items",
    ),
    ("proc_age_min", "a whole number of minutes (0 or more)"),
    ("proc_cooldown_s", "a whole number of seconds (0 or more)"),
    ("proc_group_by", "pgid or pid"),
];

/// Keys whose values are never printed: shown as `***` when set.
const SECRET_KEYS: &[&str] = &[
    "webhook_secret",
    "jobs_token",
    "telegram_bot_token",
    "alertmanager_bearer_token",
    "alertmanager_basic_auth",
];

/// URL keys: their path and query may hold a token, so only the origin is ever printed.
const URL_KEYS: &[&str] = &[
    "webhook_url",
    "jobs_url",
    "slack_webhook_url",
    "telegram_api_url",
    "alertmanager_urls",
    "heartbeat_url",
];

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
}

impl Config {
    /// Reads the configuration from `vars` (name, value pairs; other prefixes are ignored).
    ///
    /// # Errors
    /// The first variable whose value is malformed or fails validation.
    pub fn from_vars<I>(vars: I) -> Result<Loaded, ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let known = Self::keys();
        let mut set = BTreeMap::new();
        let mut unknown = Vec::new();
        for (name, value) in vars {
            let Some(key) = name.strip_prefix(PREFIX) else {
                continue;
            };
            let key = key.to_ascii_lowercase();
            if !known.contains(&key) {
                unknown.push(UnknownVar {
                    closest: closest_var(&name),
                    var: name,
                });
                continue;
            }
            // Empty counts as unset, so an example file with blank values keeps the defaults.
            let value = value.trim().to_string();
            if !value.is_empty() {
                set.insert(key, value);
            }
        }
        let mut config: Config = envy::from_iter(set.clone()).map_err(|e| {
            // Most envy errors name the key; some (an unknown enum variant) do not, and then
            // the culprit is the variable that fails on its own.
            let key = envy_key(&e)
                .filter(|key| set.contains_key(key))
                .or_else(|| {
                    set.iter()
                        .find(|(k, v)| {
                            envy::from_iter::<_, Config>([((*k).clone(), (*v).clone())]).is_err()
                        })
                        .map(|(k, _)| k.clone())
                })
                .unwrap_or_default();
            Self::invalid(&key, set.get(&key).map(String::as_str))
        })?;
        config.validate()?;
        Ok(Loaded { config, unknown })
    }

    /// Checks what the types alone cannot.
    fn validate(&mut self) -> Result<(), ConfigError> {
        let at_least_one = [
            ("interval_s", self.interval_s),
            ("collect_timeout_s", self.collect_timeout_s),
            ("collector_fail_ticks", u64::from(self.collector_fail_ticks)),
            ("outbox_max", self.outbox_max as u64),
            ("retry_max_s", self.retry_max_s),
        ];
        if let Some((key, _)) = at_least_one.iter().find(|(_, value)| *value == 0) {
            return Err(Self::invalid(key, Some("0")));
        }
        for (key, value) in [
            ("webhook_url", &self.webhook_url),
            ("slack_webhook_url", &self.slack_webhook_url),
            ("telegram_api_url", &self.telegram_api_url),
            ("heartbeat_url", &self.heartbeat_url),
        ] {
            if !value.is_empty() && http_url(value).is_none() {
                return Err(Self::invalid(key, None));
            }
        }
        if self
            .alertmanager_url_list()
            .iter()
            .any(|u| http_url(u).is_none())
        {
            return Err(Self::invalid("alertmanager_urls", None));
        }
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
            return Err(Self::invalid("alertmanager_hold_s", Some(&value)));
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
                (false, true) if http_url(&self.jobs_url).is_none() => {
                    return Err(Self::invalid("jobs_url", None));
                }
                _ => {}
            }
        }
        self.jobs_pid_ns_patterns()?;
        if self.listen != "off" && self.listen_addr().is_none() {
            return Err(Self::invalid("listen", Some(&self.listen)));
        }
        if !self.ca_file.is_empty() {
            match crate::tls::load_ca_file(Path::new(&self.ca_file)) {
                Ok(roots) => self.ca_roots = roots,
                Err(e) => {
                    return Err(ConfigError {
                        expected: format!("a readable file of PEM certificates ({e})"),
                        ..Self::invalid("ca_file", Some(&self.ca_file))
                    })
                }
            }
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

    /// `WATCHDOG_JOBS_RUNNING_STATES`, lower-cased, trimmed, empty items dropped.
    pub fn jobs_running_state_list(&self) -> Vec<String> {
        self.jobs_running_states
            .split(',')
            .map(|s| s.trim().to_lowercase())
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// The endpoint's address; `None` when `WATCHDOG_LISTEN=off` (or invalid, which validation
    /// refuses).
    pub fn listen_addr(&self) -> Option<std::net::SocketAddr> {
        self.listen.parse().ok()
    }

    /// The Alertmanager base URLs, trimmed, empty items dropped.
    pub fn alertmanager_url_list(&self) -> Vec<String> {
        self.alertmanager_urls
            .split(',')
            .map(|u| u.trim().trim_end_matches('/').to_string())
            .filter(|u| !u.is_empty())
            .collect()
    }

    /// The configured channels as (name, where), secrets masked: for `check-config` and logs.
    pub fn channels(&self) -> Vec<(&'static str, String)> {
        let mut channels = Vec::new();
        if !self.webhook_url.is_empty() {
            let signed = if self.webhook_secret.is_empty() {
                "unsigned"
            } else {
                "signed"
            };
            channels.push((
                "webhook",
                format!("{} ({signed})", mask_url(&self.webhook_url)),
            ));
        }
        if !self.slack_webhook_url.is_empty() {
            channels.push(("slack", mask_url(&self.slack_webhook_url)));
        }
        if !self.telegram_bot_token.is_empty() {
            let chat = &self.telegram_chat_id;
            channels.push((
                "telegram",
                format!("{} chat {chat}", mask_url(&self.telegram_api_url)),
            ));
        }
        for url in self.alertmanager_url_list() {
            channels.push(("alertmanager", mask_url(&url)));
        }
        if !self.heartbeat_url.is_empty() {
            channels.push(("heartbeat", mask_url(&self.heartbeat_url)));
        }
        channels
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

    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.interval_s)
    }

    /// The age past which a matching process is stuck, in seconds.
    pub fn proc_age_threshold_s(&self) -> u64 {
        self.proc_age_min.saturating_mul(60)
    }

    fn invalid(key: &str, value: Option<&str>) -> ConfigError {
        let expected = EXPECTS
            .iter()
            .find(|(k, _)| *k == key)
            .map_or("a valid value", |(_, e)| e);
        ConfigError {
            var: format!("{PREFIX}{}", key.to_ascii_uppercase()),
            value: value
                .filter(|_| !SECRET_KEYS.contains(&key) && !URL_KEYS.contains(&key))
                .map(str::to_string),
            expected: expected.to_string(),
        }
    }

    /// The setting keys (variable names without the prefix, lower-cased), in display order.
    pub fn keys() -> Vec<String> {
        Self::default()
            .entries()
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    }

    /// Every setting as (key, value as it would be written in the environment).
    pub fn entries(&self) -> Vec<(String, String)> {
        let value = serde_json::to_value(self).unwrap_or_default();
        let Some(object) = value.as_object() else {
            return Vec::new();
        };
        object
            .iter()
            .map(|(key, value)| {
                let text = match value {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (key.clone(), text)
            })
            .collect()
    }

    /// The effective configuration as `WATCHDOG_*=value` lines, secrets masked.
    pub fn display_lines(&self) -> Vec<String> {
        self.entries()
            .into_iter()
            .map(|(key, value)| {
                let shown = if value.is_empty() {
                    value
                } else if SECRET_KEYS.contains(&key.as_str()) {
                    "***".to_string()
                } else if URL_KEYS.contains(&key.as_str()) {
                    value
                        .split(',')
                        .map(|u| mask_url(u.trim()))
                        .collect::<Vec<_>>()
                        .join(",")
                } else {
                    value
                };
                format!("{PREFIX}{}={shown}", key.to_ascii_uppercase())
            })
            .collect()
    }
}

/// `value` as an http(s) URL with a host, or `None`.
pub fn http_url(value: &str) -> Option<reqwest::Url> {
    let url = reqwest::Url::parse(value).ok()?;
    (matches!(url.scheme(), "http" | "https") && url.host_str().is_some()).then_some(url)
}

/// A URL as it may be printed: its origin, and `/***` when it has a path, query or credentials
/// (Slack and Telegram put their tokens there).
pub fn mask_url(value: &str) -> String {
    match reqwest::Url::parse(value) {
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

/// The key envy blames: its messages end in `provided by KEY` or `missing value for field key`.
fn envy_key(error: &envy::Error) -> Option<String> {
    match error {
        envy::Error::MissingValue(field) => Some(field.to_string()),
        envy::Error::Custom(message) => message
            .rsplit_once("provided by ")
            .map(|(_, key)| key.trim().to_ascii_lowercase()),
    }
}

/// The known variable nearest to `name`, if it is near enough to be the intended one.
fn closest_var(name: &str) -> Option<String> {
    Config::keys()
        .into_iter()
        .map(|key| format!("{PREFIX}{}", key.to_ascii_uppercase()))
        .map(|known| (edit_distance(name, &known), known))
        .filter(|(distance, known)| *distance <= 3.max(known.len() / 5))
        .min()
        .map(|(_, known)| known)
}

/// Levenshtein distance over bytes; variable names are ASCII.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.iter().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
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
    fn mask_url_keeps_only_the_origin() {
        assert_eq!(mask_url("http://127.0.0.1:9093"), "http://127.0.0.1:9093");
        assert_eq!(mask_url("http://127.0.0.1:9093/"), "http://127.0.0.1:9093");
        assert_eq!(mask_url("https://h/a/b?c=d"), "https://h/***");
        assert_eq!(mask_url("https://u:p@h/"), "https://h/***");
        assert_eq!(mask_url("not a url"), "***");
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
    fn every_setting_says_what_it_expects() {
        for key in Config::keys() {
            assert!(
                EXPECTS.iter().any(|(k, _)| *k == key),
                "{key} is missing from EXPECTS"
            );
        }
        assert_eq!(
            EXPECTS.len(),
            Config::keys().len(),
            "EXPECTS names a setting that is gone"
        );
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
