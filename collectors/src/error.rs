//! Why a collector could not look, as types the engine and `/status` can carry.
//!
//! Owns [`CollectError`] and, for the job list, [`SourceName`] and [`SourceError`]. Every variant
//! names what it concerns (a path under the proc root, or a job source without its secrets) and
//! keeps the underlying error typed; each has a stable [`CollectError::kind`] token, and the
//! error serialises as `{"kind", "path", "message"}`. Nothing here reads or decides anything.

use std::fmt;
use std::io;
use std::path::PathBuf;

use serde::ser::SerializeStruct;

/// Why a collector could not look. Each variant names the path or source it concerns.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("{path}: not found")]
    RootMissing { path: PathBuf },
    #[error(
        "{path}: permission denied (hidepid=1, or not allowed to read other users' processes)"
    )]
    PermissionDenied { path: PathBuf },
    #[error(
        "{root}: pid 1 is not listed, so most processes are hidden from this watchdog \
         (mounted with hidepid=2 without gid=, or not the host's pid namespace)"
    )]
    Blind { root: PathBuf },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    /// A file that is there but is not what /proc writes (a parser's reason).
    #[error("{path}: malformed: {reason}")]
    Malformed { path: PathBuf, reason: String },
    /// The job list could not be had from its source.
    #[error("{source_name}: {error}")]
    Source {
        source_name: SourceName,
        #[source]
        error: SourceError,
    },
    /// `WATCHDOG_JOBS_PID_NS` names an init that no process under the root matches.
    #[error(
        "pid namespace under {root}: no process matches WATCHDOG_JOBS_PID_NS: \
         the orchestrator's init is not found"
    )]
    NamespaceInitMissing { root: PathBuf },
    /// Neither a source nor its fallback exists (`pressure/cpu` and `loadavg`).
    #[error("neither {path} nor {fallback} exists")]
    NoSource { path: PathBuf, fallback: PathBuf },
}

impl CollectError {
    /// Classifies an I/O error on `path`: permission errors are their own variant because they
    /// have their own fix (the hidepid mount options).
    pub fn from_io(path: PathBuf, source: io::Error) -> Self {
        match source.kind() {
            io::ErrorKind::NotFound => CollectError::RootMissing { path },
            io::ErrorKind::PermissionDenied => CollectError::PermissionDenied { path },
            _ => CollectError::Io { path, source },
        }
    }

    /// A stable token for the variant: what a script or a metric label may match on.
    pub fn kind(&self) -> &'static str {
        match self {
            CollectError::RootMissing { .. } => "root_missing",
            CollectError::PermissionDenied { .. } => "permission_denied",
            CollectError::Blind { .. } => "blind",
            CollectError::Io { .. } => "io",
            CollectError::Malformed { .. } => "malformed",
            CollectError::Source { error, .. } => error.kind(),
            CollectError::NamespaceInitMissing { .. } => "namespace_init_missing",
            CollectError::NoSource { .. } => "no_source",
        }
    }

    /// What the error concerns: a path under the proc root, a database file, or a job list's
    /// origin (scheme, host and port: never its path, query or credentials).
    pub fn concerns(&self) -> String {
        match self {
            CollectError::RootMissing { path }
            | CollectError::PermissionDenied { path }
            | CollectError::Io { path, .. }
            | CollectError::Malformed { path, .. }
            | CollectError::NoSource { path, .. } => path.display().to_string(),
            CollectError::Blind { root } | CollectError::NamespaceInitMissing { root } => {
                root.display().to_string()
            }
            CollectError::Source { source_name, .. } => source_name.location(),
        }
    }
}

/// `{"kind": "...", "path": "...", "message": "..."}`: the message is the one-line `Display`.
impl serde::Serialize for CollectError {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("CollectError", 3)?;
        out.serialize_field("kind", self.kind())?;
        out.serialize_field("path", &self.concerns())?;
        out.serialize_field("message", &self.to_string())?;
        out.end()
    }
}

/// A job source as errors name it: never a URL's path, query or credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceName {
    /// An HTTP job list, by its origin (`https://host:port`).
    JobList { origin: String },
    /// A SQLite job database, by its path.
    JobDatabase { path: PathBuf },
}

impl SourceName {
    /// The origin or the path, without the words around it.
    pub fn location(&self) -> String {
        match self {
            SourceName::JobList { origin } => origin.clone(),
            SourceName::JobDatabase { path } => path.display().to_string(),
        }
    }
}

impl fmt::Display for SourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceName::JobList { origin } => write!(f, "job list {origin}"),
            SourceName::JobDatabase { path } => write!(f, "job database {}", path.display()),
        }
    }
}

/// Why the job list could not be had. No message holds the URL, which may carry a token.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A non-2xx answer.
    #[error("answered HTTP {status}")]
    HttpStatus { status: u16 },
    /// The whole request took longer than its time limit.
    #[error("timed out")]
    Timeout,
    #[error("host not found")]
    HostNotFound,
    /// No connection: refused, unreachable, reset before an answer.
    #[error("could not connect{}", in_parens(.kind))]
    Connect { kind: Option<io::ErrorKind> },
    /// The TLS handshake failed: most often a certificate no trusted root signed.
    #[error("TLS failed: {error}")]
    Tls { error: rustls::Error },
    #[error("the answer is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    /// The connection broke while the answer was read.
    #[error("cannot read the answer ({kind})")]
    Read { kind: io::ErrorKind },
    /// Any other failure of the HTTP exchange (a protocol error, a malformed URL).
    #[error("request failed ({})", request_failure(.error))]
    Request { error: ureq::Error },
    #[error("answered something that is not JSON ({error})")]
    NotJson { error: serde_json::Error },
    #[error("the answer holds no job list (an array, or an object with a \"jobs\" array)")]
    NoJobList,
    /// Without an id nothing tells which job is which, so the whole list is refused.
    #[error("job #{index} has no usable id")]
    NoUsableId { index: usize },
    #[error("cannot open it read-only: {error}")]
    SqliteOpen { error: rusqlite::Error },
    #[error("the query fails: {error}")]
    SqliteQuery { error: rusqlite::Error },
}

impl SourceError {
    /// A stable token for the variant.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceError::HttpStatus { .. } => "http_status",
            SourceError::Timeout => "timeout",
            SourceError::HostNotFound => "host_not_found",
            SourceError::Connect { .. } => "connect",
            SourceError::Tls { .. } => "tls",
            SourceError::TooLarge { .. } => "too_large",
            SourceError::Read { .. } => "read",
            SourceError::Request { .. } => "request",
            SourceError::NotJson { .. } => "not_json",
            SourceError::NoJobList => "no_job_list",
            SourceError::NoUsableId { .. } => "no_usable_id",
            SourceError::SqliteOpen { .. } => "sqlite_open",
            SourceError::SqliteQuery { .. } => "sqlite_query",
        }
    }
}

fn in_parens(kind: &Option<io::ErrorKind>) -> String {
    kind.map(|kind| format!(" ({kind})")).unwrap_or_default()
}

/// ureq's message without anything that may quote the URL.
fn request_failure(error: &ureq::Error) -> String {
    match error {
        ureq::Error::BadUri(_) => "the URL is not usable".into(),
        other => other
            .to_string()
            .split(" for url")
            .next()
            .unwrap_or_default()
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_serialises_as_kind_path_and_message() {
        let error = CollectError::Source {
            source_name: SourceName::JobList {
                origin: "https://jobs.example:8443".into(),
            },
            error: SourceError::HttpStatus { status: 503 },
        };
        assert_eq!(
            serde_json::to_value(&error).unwrap(),
            serde_json::json!({
                "kind": "http_status",
                "path": "https://jobs.example:8443",
                "message": "job list https://jobs.example:8443: answered HTTP 503",
            })
        );
        let blind = CollectError::Blind {
            root: "/proc".into(),
        };
        let value = serde_json::to_value(&blind).unwrap();
        assert_eq!(
            (value["kind"].as_str(), value["path"].as_str()),
            (Some("blind"), Some("/proc"))
        );
    }

    #[test]
    fn a_url_is_never_quoted_by_a_request_failure() {
        let error = SourceError::Request {
            error: ureq::Error::BadUri("https://u:pw@h/?token=t0k".into()),
        };
        assert!(!error.to_string().contains("t0k"), "{error}");
        let refused = SourceError::Connect {
            kind: Some(io::ErrorKind::ConnectionRefused),
        };
        assert_eq!(
            refused.to_string(),
            "could not connect (connection refused)"
        );
        assert_eq!(
            SourceError::Connect { kind: None }.to_string(),
            "could not connect"
        );
    }
}
