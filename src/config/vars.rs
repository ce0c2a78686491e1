//! Every `WATCHDOG_*` variable, declared once: its name, type, default, allowed values and one
//! line of documentation.
//!
//! The [`Config`] struct, its defaults and the [`VARS`] table all come from the one declaration
//! below, so parsing, range checks, `check-config`'s display, the typo hints, and the
//! `.env.watchdog.example` and README table (kept identical by tests) cannot drift apart.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::model::Lang;
use crate::signals::proc::GroupBy;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// What a variable accepts, checked on its text before anything else reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Check {
    /// A whole number in `min..=max`, in `unit`; `note` says what a special value means.
    Whole {
        min: u64,
        max: u64,
        unit: &'static str,
        note: &'static str,
    },
    /// A plain decimal (`50`, `0.1`: digits and at most one dot) in `min..=max`, in `unit`.
    Decimal {
        min: f64,
        max: f64,
        unit: &'static str,
    },
    /// `true` or `false`.
    Bool,
    /// One of these words.
    OneOf(&'static [&'static str]),
    /// An http(s) URL with a host; only its origin is ever shown.
    Url,
    /// A comma-separated list of http(s) URLs; only their origins are ever shown.
    UrlList,
    /// Free text, checked later where it is used; `expects` says what it should be.
    Text { expects: &'static str },
    /// A secret: never shown, in errors or displays.
    Secret { expects: &'static str },
}

impl Check {
    /// What a value should be, for error messages.
    pub fn expects(&self) -> String {
        match *self {
            Check::Whole {
                min,
                max,
                unit,
                note,
            } => {
                let note = if note.is_empty() {
                    String::new()
                } else {
                    format!(" ({note})")
                };
                if min == 0 {
                    format!("a whole number of {unit} from 0 to {max}{note}")
                } else {
                    format!("a whole number of {unit}, at least {min} and at most {max}{note}")
                }
            }
            Check::Decimal { min, max, unit } => {
                format!("a decimal number of {unit}, at least {min} and at most {max}")
            }
            Check::Bool => "true or false".into(),
            Check::OneOf(words) => words.join(" or "),
            Check::Url => "an http:// or https:// URL".into(),
            Check::UrlList => "a comma-separated list of http:// or https:// base URLs".into(),
            Check::Text { expects } | Check::Secret { expects } => expects.into(),
        }
    }

    /// The allowed range, as the README's table shows it.
    pub fn range(&self) -> String {
        match *self {
            Check::Whole { min, max, .. } => format!("{min}-{max}"),
            Check::Decimal { min, max, .. } => format!("{min}-{max}"),
            Check::Bool => "`true`, `false`".into(),
            Check::OneOf(words) => words
                .iter()
                .map(|w| format!("`{w}`"))
                .collect::<Vec<_>>()
                .join(", "),
            Check::Url => "URL".into(),
            Check::UrlList => "URLs".into(),
            Check::Text { .. } => "text".into(),
            Check::Secret { .. } => "secret".into(),
        }
    }

    /// Whether the value may be printed as it is.
    pub fn shown(&self) -> Shown {
        match self {
            Check::Secret { .. } => Shown::Never,
            Check::Url | Check::UrlList => Shown::Origin,
            _ => Shown::AsIs,
        }
    }
}

/// How a value may be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    AsIs,
    /// URLs: their origin only (Slack and Telegram keep tokens in the path).
    Origin,
    /// Secrets: `***` when set.
    Never,
}

/// A decimal setting, written back as people type it: `50`, not `50.0`; `0.1`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Deserialize)]
#[serde(transparent)]
pub struct Decimal(pub f64);

impl Serialize for Decimal {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Whole values within i64's exact range print without a fraction; the range check
        // keeps every declared decimal far inside it.
        if self.0.fract() == 0.0 && self.0.abs() < 1e15 {
            serializer.serialize_i64(self.0 as i64)
        } else {
            serializer.serialize_f64(self.0)
        }
    }
}

/// One variable's declaration.
#[derive(Debug, Clone, Copy)]
pub struct Var {
    /// The section it belongs to in the example file.
    pub area: &'static str,
    /// The name without the prefix, lower-cased: the field of [`Config`].
    pub key: &'static str,
    pub check: Check,
    /// One line for the example file and the README.
    pub doc: &'static str,
}

impl Var {
    /// The full variable name.
    pub fn name(&self) -> String {
        format!("{}{}", super::PREFIX, self.key.to_ascii_uppercase())
    }
}

/// Declares the settings: the struct, its defaults and the table, from one list.
macro_rules! declare {
    ($( $area:literal { $( $key:ident : $ty:ty = $default:expr, $check:expr, $doc:literal; )* } )*) => {
        /// Every setting, named as its variable without the prefix, lower-cased.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct Config {
            $($( #[doc = $doc] pub $key: $ty, )*)*
        }

        impl Default for Config {
            fn default() -> Self {
                Self { $($( $key: $default, )*)* }
            }
        }

        /// Every variable, in the order of the example file.
        pub const VARS: &[Var] = &[
            $($( Var { area: $area, key: stringify!($key), check: $check, doc: $doc }, )*)*
        ];
    };
}

fn s(text: &str) -> String {
    text.to_string()
}

const fn whole(min: u64, max: u64, unit: &'static str) -> Check {
    Check::Whole {
        min,
        max,
        unit,
        note: "",
    }
}

const fn whole_off(max: u64, unit: &'static str) -> Check {
    Check::Whole {
        min: 0,
        max,
        unit,
        note: "0 turns it off",
    }
}

/// A PSI threshold: the percent of time some task stalled, 0.1 to 100.
const PSI_PCT: Check = Check::Decimal {
    min: 0.1,
    max: 100.0,
    unit: "percent",
};

const DAY_S: u64 = 86_400;
const COOLDOWN_MAX_S: u64 = 30 * DAY_S;
const PATTERNS: Check = Check::Text {
    expects: "a comma-separated list of substrings or re:<regex> items",
};

/// The default `WATCHDOG_JOBS_QUERY`: every running job of a `jobs` table. Columns are read by
/// name (`id`, `pid`, `state` or `status`, `started_at`, `ended_at`, `heartbeat_at`, `name`);
/// others are ignored.
pub const DEFAULT_JOBS_QUERY: &str = "SELECT * FROM jobs WHERE lower(state) = 'running'";

/// The endpoint's default address: loopback only, on a port outside the 9100-9999 range
/// that Prometheus exporters have allocated among themselves.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:19847";

declare! {
    "general" {
        interval_s: u64 = 30, whole(1, DAY_S, "seconds"),
            "Seconds between ticks of `watchdog run`.";
        collect_timeout_s: u64 = 10, whole(1, 3600, "seconds"),
            "Seconds a collector may take; one that overruns counts as failed for that tick and is not started again while its thread is busy.";
        collector_fail_ticks: u32 = 3, whole(1, 10_000, "ticks"),
            "After this many failed ticks in a row, a `collector_failing` alert (entity `collector:<name>`) says watchdog cannot see.";
        collector_fail_cooldown_s: u64 = 1800, whole(0, COOLDOWN_MAX_S, "seconds"),
            "Seconds between reminders while a collector keeps failing.";
        host: String = String::new(), Check::Text { expects: "a host name" },
            "The host named in every alert; empty means the machine's hostname. Set it in containers, where the hostname is the container's.";
        lang: Lang = Lang::En, Check::OneOf(&["en", "ru"]),
            "Language of alert texts.";
        log: String = s("info"), Check::Text { expects: "a tracing filter such as info or watchdog=debug" },
            "Log filter in tracing syntax (`debug`, `watchdog=debug,info`). Logs go to stderr.";
        log_format: LogFormat = LogFormat::Text, Check::OneOf(&["text", "json"]),
            "Log line format (`json`: one object a line).";
        state_dir: PathBuf = PathBuf::from("/var/lib/watchdog"), Check::Text { expects: "a directory" },
            "Holds `watchdog.db` (alert state, outboxes, history) and the dead-letter files. Created 0700; `run` stops with status 2 when it cannot write here, or when it belongs to another uid or others can write to it.";
        history_days: u32 = 14, whole(1, 365, "days"),
            "Days of events `watchdog history` keeps; older ones are pruned once delivered.";
    }
    "delivery" {
        outbox_max: usize = 10_000, whole(1, 1_000_000, "events"),
            "Undelivered events kept per channel; when full, reminders are dropped first, then the oldest events, each drop logged as an error.";
        retry_max_s: u64 = 300, whole(1, DAY_S, "seconds"),
            "The longest wait between delivery retries; the backoff doubles from 1 s up to it, with jitter.";
        webhook_url: String = String::new(), Check::Url,
            "POST each event here as JSON. Empty: no webhook. Only its origin is ever printed.";
        webhook_secret: String = String::new(), Check::Secret { expects: "whsec_ followed by a base64 key" },
            "`whsec_<base64 key>`: sign webhooks by the Standard Webhooks spec. Never printed.";
        slack_webhook_url: String = String::new(), Check::Url,
            "A Slack incoming-webhook URL. Only its origin is ever printed.";
        telegram_bot_token: String = String::new(), Check::Secret { expects: "a bot token, set together with WATCHDOG_TELEGRAM_CHAT_ID" },
            "A Telegram bot token; with `WATCHDOG_TELEGRAM_CHAT_ID`. Never printed or logged.";
        telegram_chat_id: String = String::new(), Check::Text { expects: "a chat id, set together with WATCHDOG_TELEGRAM_BOT_TOKEN" },
            "The chat the bot posts to.";
        telegram_api_url: String = s("https://api.telegram.org"), Check::Url,
            "The Bot API server; set it for a self-hosted one.";
        alertmanager_urls: String = String::new(), Check::UrlList,
            "Comma-separated Alertmanager base URLs; every alert goes to every one.";
        alertmanager_bearer_token: String = String::new(), Check::Secret { expects: "a token, not together with WATCHDOG_ALERTMANAGER_BASIC_AUTH" },
            "A bearer token for Alertmanager. Never printed.";
        alertmanager_basic_auth: String = String::new(), Check::Secret { expects: "user:password" },
            "`user:password` for Alertmanager; not with a bearer token. Never printed.";
        alertmanager_hold_s: u64 = 600, whole(1, 7 * DAY_S, "seconds"),
            "Alerts are re-sent every tick with `endsAt` = now + this; at least 4 intervals. Also how long a stopped watchdog's alerts stay firing.";
        heartbeat_url: String = String::new(), Check::Url,
            "Fetched (GET) once per successful tick, for healthchecks-style services.";
        ca_file: String = String::new(), Check::Text { expects: "a regular file of PEM certificates, at most 1 MiB" },
            "Extra PEM certificates trusted by every HTTP client, on top of the system's roots.";
    }
    "endpoint" {
        listen: String = s(DEFAULT_LISTEN), Check::Text { expects: "host:port (such as 127.0.0.1:19847 or 0.0.0.0:19847), or off" },
            "Where `/metrics`, `/healthz`, `/readyz` and `/status` are served; `off` for nowhere. A port that is taken stops `run` with status 2.";
        listen_max_conn: usize = 64, whole(4, 4096, "connections"),
            "Open connections at most; at the cap a new one closes the oldest that has not sent a whole request head. Lowered at start to fit the open-file limit.";
        listen_token: String = String::new(), Check::Secret { expects: "a token of printable ASCII without spaces" },
            "When set, `/status` and `/metrics` need `Authorization: Bearer <token>`; `/healthz` and `/readyz` stay open. Never printed.";
    }
    "jobs" {
        jobs_enabled: bool = false, Check::Bool,
            "The jobs collector. Off, it reads nothing.";
        jobs_url: String = String::new(), Check::Url,
            "The job list as JSON over HTTP. One source only. Only its origin is ever printed.";
        jobs_token: String = String::new(), Check::Secret { expects: "a bearer token" },
            "A bearer token for `WATCHDOG_JOBS_URL`. Never printed.";
        jobs_sqlite: String = String::new(), Check::Text { expects: "the path of a SQLite file, or nothing when WATCHDOG_JOBS_URL is set" },
            "A SQLite file with the jobs, opened read-only. One source only.";
        jobs_query: String = s(DEFAULT_JOBS_QUERY), Check::Text { expects: "an SQL query" },
            "The query on `WATCHDOG_JOBS_SQLITE`; columns are read by name.";
        jobs_running_states: String = s("running"), Check::Text { expects: "a comma-separated list of states" },
            "Comma-separated states that mean running, compared without case.";
        jobs_pid_ns: String = s("host"), Check::Text { expects: "host, or patterns for the orchestrator's init" },
            "Whose pids the job list gives: `host`, or patterns (as in `WATCHDOG_PROC_PATTERNS`) for the orchestrator container's init.";
        jobs_pid_slack_s: u64 = 120, whole(0, DAY_S, "seconds"),
            "A job's pid owned by a process that started this much after the job was reused.";
        jobs_max_running_min: u64 = 120, whole_off(365 * 24 * 60, "minutes"),
            "A running job older than this is hung.";
        jobs_heartbeat_s: u64 = 0, whole_off(7 * DAY_S, "seconds"),
            "A running job whose `heartbeat_at` is older than this is hung.";
        jobs_leftover_grace_s: u64 = 300, whole(0, 7 * DAY_S, "seconds"),
            "An ended job whose processes live on this long after it ended is a leftover.";
        jobs_leftover_keep_h: u64 = 24, whole(0, 365 * 24, "hours"),
            "How many hours an ended job's group or session is watched at most.";
        jobs_cooldown_s: u64 = 1800, whole(0, COOLDOWN_MAX_S, "seconds"),
            "Seconds between reminders of `agent_hung` and `job_leftover` alerts.";
    }
    "pressure" {
        pressure_enabled: bool = false, Check::Bool,
            "The pressure collector. Off, it opens nothing. On, it reads three small PSI files per tick while calm.";
        pressure_cpu_pct: Decimal = Decimal(50.0), PSI_PCT,
            "CPU is under pressure while PSI `some avg60` is at or above this percent.";
        pressure_memory_pct: Decimal = Decimal(10.0), PSI_PCT,
            "Memory is under pressure while PSI `some avg60` is at or above this percent.";
        pressure_io_pct: Decimal = Decimal(30.0), PSI_PCT,
            "IO is under pressure while PSI `some avg60` is at or above this percent.";
        pressure_load_pct: Decimal = Decimal(150.0), Check::Decimal { min: 1.0, max: 10_000.0, unit: "percent" },
            "Without PSI: CPU is under pressure while the 1-minute load per online CPU, in percent, is at or above this.";
        pressure_for_s: u64 = 300, whole(0, DAY_S, "seconds"),
            "How long pressure must stay at or above its threshold to alert, and below it to recover; 0 means at once.";
        pressure_top: usize = 5, whole(0, 50, "processes"),
            "How many top CPU consumers an alert names, sampled only while a resource is under pressure; 0 samples none.";
        pressure_cooldown_s: u64 = 1800, whole(0, COOLDOWN_MAX_S, "seconds"),
            "Seconds between reminders while the host stays under pressure.";
    }
    "proc" {
        proc_enabled: bool = false, Check::Bool,
            "The proc collector. Off, it opens nothing under the proc root.";
        proc_root: PathBuf = PathBuf::from("/proc"), Check::Text { expects: "a directory" },
            "The /proc tree to scan.";
        proc_patterns: String = s("pytest"), PATTERNS,
            "Patterns of the command lines to watch (see Patterns).";
        proc_exclude: String = String::new(), PATTERNS,
            "Patterns that are never reported, even when they match.";
        proc_age_min: u64 = 60, whole(0, 365 * 24 * 60, "minutes"),
            "A match older than this many minutes is stuck. 60 is above the longest legitimate run (15 min), so a healthy run never crosses it.";
        proc_cooldown_s: u64 = 1800, whole(0, COOLDOWN_MAX_S, "seconds"),
            "Seconds between reminders while a process stays stuck.";
        proc_group_by: GroupBy = GroupBy::Pgid, Check::OneOf(&["pgid", "pid"]),
            "`pgid`: one entity per process group; `pid`: one per process.";
        proc_rescan_ticks: u32 = 10, whole(1, 1000, "ticks"),
            "A process already seen has its command line read again once per this many ticks, spread over them: a process that execs into a match is caught within this many ticks × `WATCHDOG_INTERVAL_S`. The process list is also taken again at least this often, even while no process is created. 1 reads every command line every tick.";
    }
}
