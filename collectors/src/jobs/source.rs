//! Where the job list comes from: one HTTP GET of a JSON document, or one query on SQLite.
//!
//! Owns reading the source, read-only, once per collection, and naming it in errors without
//! its secrets ([`SourceName`]). HTTP goes through the agent of [`crate::https`] over the TLS
//! config the constructor was given, with a bearer token when one is set, a time limit for the
//! whole exchange and a cap on the answer's size. It turns nothing into jobs (that is
//! [`super::parse`]) and never writes to the orchestrator's database.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use serde_json::Value;

use crate::{SourceError, SourceName};

/// The largest job list read, in bytes.
pub const MAX_BODY: u64 = 16 << 20;

/// Where the job list comes from.
#[derive(Clone)]
pub enum Source {
    Http {
        url: String,
        token: Option<String>,
        timeout: Duration,
        /// The TLS every outbound client shares: one crypto provider, the system's roots and
        /// those of `WATCHDOG_CA_FILE`.
        tls: Arc<ClientConfig>,
    },
    Sqlite {
        path: PathBuf,
        query: String,
    },
}

/// Shows what [`Source::describe`] shows: never the URL's path, query or token.
impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Source").field(&self.describe()).finish()
    }
}

impl Source {
    /// How errors name the source: never the URL's path, query or credentials.
    pub fn name(&self) -> SourceName {
        match self {
            Source::Http { url, .. } => SourceName::JobList {
                origin: origin(url),
            },
            Source::Sqlite { path, .. } => SourceName::JobDatabase { path: path.clone() },
        }
    }

    /// [`Source::name`] as text: `job list https://host:port`, `job database /path`.
    pub fn describe(&self) -> String {
        self.name().to_string()
    }

    /// The job documents of the source: one JSON value (HTTP), or one object per row (SQLite).
    ///
    /// # Errors
    /// The source cannot be reached or read, answers non-2xx, or answers something not JSON.
    pub fn read(&self) -> Result<Vec<Value>, SourceError> {
        match self {
            Source::Http {
                url,
                token,
                timeout,
                tls,
            } => read_http(url, token.as_deref(), *timeout, tls).map(|value| vec![value]),
            Source::Sqlite { path, query } => read_sqlite(path, query),
        }
    }
}

/// `scheme://host:port` of a URL, without user info, path, query or fragment.
fn origin(url: &str) -> String {
    url.split_once("://")
        .map(|(scheme, rest)| {
            let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
            let host = host.rsplit('@').next().unwrap_or_default();
            format!("{scheme}://{host}")
        })
        .unwrap_or_else(|| "the jobs URL".into())
}

fn read_http(
    url: &str,
    token: Option<&str>,
    timeout: Duration,
    tls: &Arc<ClientConfig>,
) -> Result<Value, SourceError> {
    let agent = crate::https::agent(tls, timeout);
    let mut request = agent.get(url);
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    let mut response = request.call().map_err(request_error)?;
    let status = response.status().as_u16();
    if !(200..300).contains(&status) {
        return Err(SourceError::HttpStatus { status });
    }
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_BODY)
        .read_to_vec()
        .map_err(|error| match request_error(error) {
            // Connected and answered: a broken connection now is a failed read.
            SourceError::Connect { kind: Some(kind) } => SourceError::Read { kind },
            other => other,
        })?;
    serde_json::from_slice(&body).map_err(|error| SourceError::NotJson { error })
}

/// A transport error as a typed reason, without the URL (which may hold a token in its query).
fn request_error(error: ureq::Error) -> SourceError {
    match error {
        ureq::Error::Timeout(_) => SourceError::Timeout,
        ureq::Error::HostNotFound => SourceError::HostNotFound,
        ureq::Error::ConnectionFailed => SourceError::Connect { kind: None },
        ureq::Error::BodyExceedsLimit(limit) => SourceError::TooLarge { limit },
        ureq::Error::Rustls(error) => SourceError::Tls { error },
        ureq::Error::Io(error) => match tls_inside(&error) {
            Some(error) => SourceError::Tls { error },
            None => SourceError::Connect {
                kind: Some(error.kind()),
            },
        },
        error => SourceError::Request { error },
    }
}

/// The rustls error an I/O error carries, when a TLS alert broke the connection.
fn tls_inside(error: &io::Error) -> Option<rustls::Error> {
    error.get_ref()?.downcast_ref::<rustls::Error>().cloned()
}

/// One short read-only query. In WAL mode a reader never blocks the orchestrator's writers;
/// in rollback-journal mode it holds its shared lock only while the query runs.
fn read_sqlite(path: &Path, query: &str) -> Result<Vec<Value>, SourceError> {
    use rusqlite::types::ValueRef;
    use rusqlite::{Connection, OpenFlags};
    let open = |error| SourceError::SqliteOpen { error };
    let failed = |error| SourceError::SqliteQuery { error };
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(open)?;
    connection
        .busy_timeout(Duration::from_millis(500))
        .map_err(open)?;
    let mut statement = connection.prepare(query).map_err(failed)?;
    let names: Vec<String> = statement
        .column_names()
        .iter()
        .map(|n| n.to_ascii_lowercase())
        .collect();
    let mut rows = statement.query([]).map_err(failed)?;
    let mut documents = Vec::new();
    while let Some(row) = rows.next().map_err(failed)? {
        let mut object = serde_json::Map::new();
        for (i, name) in names.iter().enumerate() {
            let value = match row.get_ref(i).map_err(failed)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(n) => Value::from(n),
                ValueRef::Real(x) => Value::from(x),
                ValueRef::Text(t) => Value::from(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(_) => Value::String("<blob>".into()),
            };
            object.insert(name.clone(), value);
        }
        documents.push(Value::Object(object));
    }
    Ok(vec![Value::Array(documents)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_is_never_named_with_its_path_query_or_credentials() {
        let url = "https://u:pw@jobs.example:8443/api/jobs?token=t0k";
        assert_eq!(origin(url), "https://jobs.example:8443");
        assert_eq!(
            SourceName::JobList {
                origin: origin(url)
            }
            .to_string(),
            "job list https://jobs.example:8443"
        );
        assert_eq!(origin("jobs.example/list"), "the jobs URL");
        let database = Source::Sqlite {
            path: "/var/lib/ci/jobs.db".into(),
            query: "SELECT 1".into(),
        };
        assert_eq!(database.describe(), "job database /var/lib/ci/jobs.db");
    }

    #[test]
    fn transport_errors_keep_their_kind() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert!(matches!(
            request_error(ureq::Error::Io(refused)),
            SourceError::Connect {
                kind: Some(io::ErrorKind::ConnectionRefused)
            }
        ));
        let alert = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        let tls = request_error(ureq::Error::Io(alert));
        assert_eq!(tls.kind(), "tls", "{tls}");
        assert!(tls.to_string().contains("UnknownIssuer"), "{tls}");
        assert!(matches!(
            request_error(ureq::Error::BodyExceedsLimit(MAX_BODY)),
            SourceError::TooLarge { limit: MAX_BODY }
        ));
    }
}
