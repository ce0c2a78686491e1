//! The typed settings each part of watchdog gets, parsed once from [`Config`] at start.
//!
//! Every part is handed its own area and nothing else: the runner its intervals, the engine its
//! [`Rules`], each collector and signal builder its own settings, delivery its channels. No
//! part imports the config module, and nothing re-parses a setting's text after start.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;

use watchdog_collectors::pattern::PatternSet;
use watchdog_collectors::pressure::Thresholds;

use super::{http_url, Config, ConfigError, Loaded};
use crate::engine::Rules;
use crate::model::{comma_list, Lang};
use crate::notify::{alertmanager::Auth, ChannelSettings, TelegramSettings};
use crate::signals::jobs::JobsRules;
use crate::signals::pressure::PressureRules;
use crate::signals::proc::ProcRules;
use crate::tls::SharedConfig;

/// Everything, by area.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The host named in every alert: `WATCHDOG_HOST`, or this machine's hostname.
    pub host: String,
    pub lang: Lang,
    pub runner: RunnerSettings,
    pub rules: Rules,
    /// `None` while the proc collector is off.
    pub proc: Option<ProcSettings>,
    /// `None` while the jobs collector is off.
    pub jobs: Option<JobsSettings>,
    /// `None` while the pressure collector is off.
    pub pressure: Option<PressureSettings>,
    pub delivery: DeliverySettings,
    /// Where the endpoint listens; `None` for `off`.
    pub listen: Option<SocketAddr>,
    pub endpoint: EndpointSettings,
    /// The one TLS client configuration: the system's roots and those of `WATCHDOG_CA_FILE`,
    /// built on first use and shared by every outbound client.
    pub tls: Arc<SharedConfig>,
}

/// The tick loop's own settings.
#[derive(Debug, Clone)]
pub struct RunnerSettings {
    pub interval: Duration,
    pub collect_timeout: Duration,
    pub state_dir: PathBuf,
    /// How long the history keeps an event, in seconds.
    pub history_s: i64,
    /// The proc root, for the start-up check of the pid namespace.
    pub proc_root: PathBuf,
}

/// The proc collector and its signal builder.
#[derive(Debug, Clone)]
pub struct ProcSettings {
    pub root: PathBuf,
    pub patterns: PatternSet,
    pub exclude: PatternSet,
    /// Ticks between two reads of a known process's command line.
    pub rescan_ticks: u32,
    pub rules: ProcRules,
}

/// Where the job list comes from.
#[derive(Debug, Clone)]
pub enum JobsSourceSettings {
    Http {
        url: url::Url,
        token: Option<String>,
    },
    Sqlite {
        path: PathBuf,
        query: String,
    },
}

/// The jobs collector and its signal builders.
#[derive(Debug, Clone)]
pub struct JobsSettings {
    pub source: JobsSourceSettings,
    pub root: PathBuf,
    /// The orchestrator's init, or `None` when the job list gives host pids.
    pub pid_ns: Option<PatternSet>,
    pub timeout: Duration,
    pub rules: JobsRules,
}

/// How the endpoint treats its clients (`WATCHDOG_LISTEN_MAX_CONN`, `WATCHDOG_LISTEN_TOKEN`).
#[derive(Clone)]
pub struct EndpointSettings {
    /// Open connections at most (the runner fits it to the open-file limit before serving).
    pub max_conn: usize,
    /// What `/status` and `/metrics` require as a bearer token; `None`: they are open.
    pub token: Option<String>,
}

impl std::fmt::Debug for EndpointSettings {
    /// The token is never shown, not even in a debug print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointSettings")
            .field("max_conn", &self.max_conn)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .finish()
    }
}

/// The pressure collector and its signal builder.
#[derive(Debug, Clone)]
pub struct PressureSettings {
    /// The proc root: its `pressure/`, `loadavg`, `stat` and, while under pressure, its pids.
    pub root: PathBuf,
    pub thresholds: Thresholds,
    /// How many top CPU consumers to name; 0 never samples processes.
    pub top: usize,
    pub rules: PressureRules,
}

/// Delivery: the channels, and how the outboxes behave.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    pub channels: ChannelSettings,
    pub outbox_max: usize,
    pub retry_max: Duration,
    pub alertmanager_hold_s: u64,
}

impl Settings {
    /// The settings of a loaded configuration, with the CA file it has already read.
    ///
    /// # Errors
    /// As [`Settings::from_parts`].
    pub fn from_loaded(loaded: &Loaded) -> Result<Self, ConfigError> {
        Self::from_parts(&loaded.config, loaded.ca_roots.clone())
    }

    /// The settings of `config`, reading its CA file (for tools and tests; `run` and the other
    /// commands use [`Settings::from_loaded`], which reads it once).
    ///
    /// # Errors
    /// As [`Settings::from_parts`], and a CA file that cannot be used.
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        Self::from_parts(config, config.ca_roots()?)
    }

    /// Parses every area of `config` once.
    ///
    /// # Errors
    /// A pattern or URL that does not parse (validation has already refused most).
    pub fn from_parts(
        config: &Config,
        ca_roots: Vec<CertificateDer<'static>>,
    ) -> Result<Self, ConfigError> {
        let proc = if config.proc_enabled {
            let (patterns, exclude) = config.proc_pattern_sets()?;
            Some(ProcSettings {
                root: config.proc_root.clone(),
                patterns,
                exclude,
                rescan_ticks: config.proc_rescan_ticks,
                rules: ProcRules {
                    age_threshold_s: config.proc_age_min.saturating_mul(60),
                    group_by: config.proc_group_by,
                },
            })
        } else {
            None
        };
        let jobs = if config.jobs_enabled {
            let source = if config.jobs_sqlite.is_empty() {
                JobsSourceSettings::Http {
                    url: http_url(&config.jobs_url)
                        .ok_or_else(|| Config::invalid("jobs_url", None))?,
                    token: (!config.jobs_token.is_empty()).then(|| config.jobs_token.clone()),
                }
            } else {
                JobsSourceSettings::Sqlite {
                    path: config.jobs_sqlite.clone().into(),
                    query: config.jobs_query.clone(),
                }
            };
            let on = |value: u64| (value > 0).then_some(value);
            Some(JobsSettings {
                source,
                root: config.proc_root.clone(),
                pid_ns: config.jobs_pid_ns_patterns()?,
                timeout: Duration::from_secs(config.collect_timeout_s),
                rules: JobsRules {
                    running_states: comma_list(&config.jobs_running_states)
                        .into_iter()
                        .map(|s| s.to_lowercase())
                        .collect(),
                    pid_slack_s: config.jobs_pid_slack_s,
                    max_running_s: on(config.jobs_max_running_min.saturating_mul(60)),
                    heartbeat_s: on(config.jobs_heartbeat_s),
                    leftover_grace_s: config.jobs_leftover_grace_s,
                    leftover_keep_s: config.jobs_leftover_keep_h.saturating_mul(3600),
                },
            })
        } else {
            None
        };
        let pressure = config.pressure_enabled.then(|| PressureSettings {
            root: config.proc_root.clone(),
            thresholds: Thresholds {
                cpu_pct: config.pressure_cpu_pct.0,
                memory_pct: config.pressure_memory_pct.0,
                io_pct: config.pressure_io_pct.0,
                load_pct: config.pressure_load_pct.0,
            },
            top: config.pressure_top,
            rules: PressureRules {
                for_s: config.pressure_for_s,
            },
        });
        Ok(Self {
            host: resolve_host(&config.host),
            lang: config.lang,
            runner: RunnerSettings {
                interval: Duration::from_secs(config.interval_s),
                collect_timeout: Duration::from_secs(config.collect_timeout_s),
                state_dir: config.state_dir.clone(),
                history_s: i64::from(config.history_days) * 86_400,
                proc_root: config.proc_root.clone(),
            },
            rules: Rules {
                proc_cooldown_s: config.proc_cooldown_s,
                jobs_cooldown_s: config.jobs_cooldown_s,
                pressure_cooldown_s: config.pressure_cooldown_s,
                collector_fail_ticks: config.collector_fail_ticks,
                collector_fail_cooldown_s: config.collector_fail_cooldown_s,
            },
            proc,
            jobs,
            pressure,
            delivery: DeliverySettings {
                channels: channel_settings(config),
                outbox_max: config.outbox_max,
                retry_max: Duration::from_secs(config.retry_max_s),
                alertmanager_hold_s: config.alertmanager_hold_s,
            },
            listen: config.listen_addr(),
            endpoint: EndpointSettings {
                max_conn: config.listen_max_conn,
                token: (!config.listen_token.is_empty()).then(|| config.listen_token.clone()),
            },
            tls: Arc::new(SharedConfig::new(ca_roots)),
        })
    }

    /// The names of the enabled collectors, in the fixed order.
    pub fn enabled_collectors(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.proc.is_some() {
            names.push("proc");
        }
        if self.jobs.is_some() {
            names.push("jobs");
        }
        if self.pressure.is_some() {
            names.push("pressure");
        }
        names
    }
}

pub(super) fn channel_settings(config: &Config) -> ChannelSettings {
    let alertmanager_auth = if !config.alertmanager_bearer_token.is_empty() {
        Auth::Bearer(config.alertmanager_bearer_token.clone())
    } else if let Some((user, password)) = config.alertmanager_basic_auth.split_once(':') {
        Auth::Basic {
            user: user.into(),
            password: password.into(),
        }
    } else {
        Auth::None
    };
    ChannelSettings {
        webhook: http_url(&config.webhook_url).map(|url| (url, config.webhook_key())),
        slack: http_url(&config.slack_webhook_url),
        telegram: (!config.telegram_bot_token.is_empty()).then(|| TelegramSettings {
            api_url: config.telegram_api_url.clone(),
            token: config.telegram_bot_token.clone(),
            chat_id: config.telegram_chat_id.clone(),
        }),
        alertmanager_urls: config.alertmanager_url_list(),
        alertmanager_auth,
        heartbeat: http_url(&config.heartbeat_url),
    }
}

/// `configured`, or this machine's hostname.
fn resolve_host(configured: &str) -> String {
    if !configured.is_empty() {
        return configured.to_string();
    }
    let uname = rustix::system::uname();
    uname.nodename().to_string_lossy().into_owned()
}
