//! The jobs collector against real sources: a local HTTP server scripting its answers, and
//! SQLite files built in temp dirs (one being written by another connection during the read),
//! over fixture /proc trees.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use watchdog_collectors::jobs::{JobsCollector, JobsConfig, JobsScan, Source};
use watchdog_collectors::pattern::PatternSet;
use watchdog_collectors::{CollectError, CollectRequest};

fn fixture(scenario: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/proc")
        .join(scenario)
}

/// A jobs collector and the request of one tick.
struct Tick(JobsCollector, CollectRequest);

impl Tick {
    fn scan(&self) -> Result<JobsScan, CollectError> {
        self.0.scan(&self.1)
    }
}

fn collector(source: Source, root: PathBuf, pid_ns: Option<&str>, read_all: bool) -> Tick {
    let collector = JobsCollector::new(JobsConfig {
        source,
        root,
        pid_ns: pid_ns.map(|p| PatternSet::parse(p).unwrap()),
        ticks_per_second: 100,
    });
    Tick(
        collector,
        CollectRequest {
            all_processes: read_all,
        },
    )
}

/// TLS with no roots at all: these sources speak plain http.
fn no_tls() -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    Arc::new(config)
}

/// Serves `answers` in turn (status, body, delay before answering); records each request's
/// Authorization header.
fn serve(
    answers: Vec<(u16, &'static str, Duration)>,
) -> (String, std::sync::mpsc::Receiver<Option<String>>) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let url = format!(
        "http://127.0.0.1:{}/api/jobs?k=v",
        server.server_addr().to_ip().unwrap().port()
    );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for (request, (status, body, delay)) in server.incoming_requests().zip(answers) {
            let auth = request
                .headers()
                .iter()
                .find(|h| h.field.equiv("Authorization"))
                .map(|h| h.value.to_string());
            let _ = tx.send(auth);
            std::thread::sleep(delay);
            let _ =
                request.respond(tiny_http::Response::from_string(body).with_status_code(status));
        }
    });
    (url, rx)
}

fn http(url: &str, timeout: Duration) -> Source {
    Source::Http {
        url: url.into(),
        token: Some("t0ken".into()),
        timeout,
        tls: no_tls(),
    }
}

const LIST: &str = r#"{"jobs": [
    {"id": 1, "pid": 7, "state": "running", "started_at": "2026-11-28T08:00:00Z", "name": "fix"},
    {"id": "2", "pid": null, "status": "queued", "started_at": 1795000000},
    {"id": 3, "pid": "seven", "state": "running", "started_at": 1795000000}
]}"#;

#[test]
fn an_http_job_list_is_read_with_its_token_and_the_pids_proc_facts() {
    let (url, auth) = serve(vec![(200, LIST, Duration::ZERO)]);
    let scan = collector(
        http(&url, Duration::from_secs(5)),
        fixture("orphaned_pytest"),
        None,
        false,
    )
    .scan()
    .unwrap();
    assert_eq!(auth.recv().unwrap().as_deref(), Some("Bearer t0ken"));
    let ids: Vec<&str> = scan.jobs.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids, ["1", "2"]);
    assert_eq!(scan.unreadable.len(), 1);
    assert_eq!(scan.unreadable[0].0, "3");
    assert_eq!(scan.host_pids.get(&7), Some(&7));
    let pytest = &scan.processes[&7];
    assert_eq!(
        (pytest.age_s, pytest.pgid, pytest.comm.as_str()),
        (7200, 7, "pytest")
    );
    assert!(!scan.all_processes);
    assert_eq!(scan.processes.len(), 1, "only the job's pid was read");
}

#[test]
fn every_kind_of_bad_answer_fails_the_collection_and_names_the_source() {
    let cases: Vec<(u16, &'static str, Duration, &str)> = vec![
        (500, LIST, Duration::ZERO, "HTTP 500"),
        (404, "", Duration::ZERO, "HTTP 404"),
        (200, "<html>login</html>", Duration::ZERO, "not JSON"),
        (200, r#"{"items": []}"#, Duration::ZERO, "no job list"),
        (
            200,
            r#"[{"pid": 1, "state": "running", "started_at": 1}]"#,
            Duration::ZERO,
            "no usable id",
        ),
        (200, LIST, Duration::from_secs(3), "timed out"),
    ];
    for (status, body, delay, want) in cases {
        let (url, _auth) = serve(vec![(status, body, delay)]);
        let error = collector(
            http(&url, Duration::from_secs(1)),
            fixture("orphaned_pytest"),
            None,
            false,
        )
        .scan()
        .unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, CollectError::Source { .. }), "{message}");
        assert!(message.contains(want), "HTTP {status} {body:?}: {message}");
        assert!(
            message.starts_with("job list http://127.0.0.1:"),
            "{message}"
        );
        assert!(
            !message.contains("/api/jobs") && !message.contains("k=v"),
            "{message}"
        );
    }
    let closed = format!(
        "http://127.0.0.1:{}/jobs",
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    );
    let error = collector(
        http(&closed, Duration::from_secs(1)),
        fixture("orphaned_pytest"),
        None,
        false,
    )
    .scan()
    .unwrap_err();
    assert!(error.to_string().contains("could not connect"), "{error}");
}

#[test]
fn a_blind_proc_root_fails_the_jobs_collection_too() {
    let (url, _auth) = serve(vec![(200, LIST, Duration::ZERO)]);
    let error = collector(
        http(&url, Duration::from_secs(5)),
        fixture("no_pid_one"),
        None,
        false,
    )
    .scan()
    .unwrap_err();
    assert!(matches!(error, CollectError::Blind { .. }), "{error}");
}

fn database(dir: &Path) -> (PathBuf, rusqlite::Connection) {
    let path = dir.join("jobs.db");
    let db = rusqlite::Connection::open(&path).unwrap();
    db.execute_batch(
        "CREATE TABLE jobs (id INTEGER PRIMARY KEY, pid INTEGER, state TEXT, started_at TEXT,
                            ended_at INTEGER, heartbeat_at INTEGER, name TEXT, worker TEXT);
         INSERT INTO jobs VALUES (1, 7, 'running', '2026-11-28T08:00:00Z', NULL, NULL, 'fix', 'w1');
         INSERT INTO jobs VALUES (2, 8, 'done', '2026-11-28T07:00:00Z', 1795850000, NULL, 'old', 'w2');
         INSERT INTO jobs VALUES (3, 9, 'RUNNING', '2026-11-28T07:30:00Z', NULL, NULL, NULL, 'w3');",
    )
    .unwrap();
    (path, db)
}

fn sqlite(path: &Path) -> Source {
    Source::Sqlite {
        path: path.into(),
        query: "SELECT * FROM jobs WHERE lower(state) = 'running'".into(),
    }
}

fn ids(scan: &JobsScan) -> Vec<&str> {
    scan.jobs.iter().map(|j| j.id.as_str()).collect()
}

#[test]
fn a_sqlite_database_is_read_with_the_default_query() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _db) = database(dir.path());
    let scan = collector(sqlite(&path), fixture("orphaned_pytest"), None, false)
        .scan()
        .unwrap();
    assert_eq!(ids(&scan), ["1", "3"]);
    assert_eq!(scan.jobs[0].name.as_deref(), Some("fix"));
    assert_eq!(scan.jobs[0].started_at, 1_795_852_800);
}

#[test]
fn a_database_being_written_still_reads_in_wal_and_rollback_modes() {
    for mode in ["WAL", "DELETE"] {
        let dir = tempfile::tempdir().unwrap();
        let (path, db) = database(dir.path());
        db.pragma_update(None, "journal_mode", mode).unwrap();
        // Another connection is in the middle of writing: its transaction is open.
        let writer = rusqlite::Connection::open(&path).unwrap();
        writer
            .execute_batch("BEGIN IMMEDIATE; UPDATE jobs SET state = 'done' WHERE id = 1;")
            .unwrap();
        let scan = collector(sqlite(&path), fixture("orphaned_pytest"), None, false)
            .scan()
            .unwrap();
        assert_eq!(ids(&scan), ["1", "3"], "{mode}: the committed rows");
        // And the read never blocked the writer: it commits now.
        writer.execute_batch("COMMIT").unwrap();
        let scan = collector(sqlite(&path), fixture("orphaned_pytest"), None, false)
            .scan()
            .unwrap();
        assert_eq!(ids(&scan), ["3"], "{mode}: after the commit");
    }
}

#[test]
fn a_missing_database_or_a_broken_query_fails_the_collection() {
    let dir = tempfile::tempdir().unwrap();
    let missing = collector(
        sqlite(&dir.path().join("nope.db")),
        fixture("orphaned_pytest"),
        None,
        false,
    )
    .scan()
    .unwrap_err();
    assert!(
        missing.to_string().contains("cannot open it read-only"),
        "{missing}"
    );
    assert!(
        !dir.path().join("nope.db").exists(),
        "read-only: nothing was created"
    );
    let (path, _db) = database(dir.path());
    let broken = Source::Sqlite {
        path,
        query: "SELECT * FROM job".into(),
    };
    let error = collector(broken, fixture("orphaned_pytest"), None, false)
        .scan()
        .unwrap_err();
    assert!(error.to_string().contains("the query fails"), "{error}");
}

#[test]
fn job_pids_in_another_namespace_map_through_the_descendants_of_its_init() {
    let (url, _auth) = serve(vec![(
        200,
        r#"[{"id": "j-1", "pid": 42, "state": "running", "started_at": 1},
            {"id": "j-2", "pid": 50, "state": "running", "started_at": 1},
            {"id": "j-3", "pid": 43, "state": "running", "started_at": 1}]"#,
        Duration::ZERO,
    )]);
    let scan = collector(
        http(&url, Duration::from_secs(5)),
        fixture("jobs_pid_namespace"),
        Some("re:tini -- python3 orchestrator"),
        false,
    )
    .scan()
    .unwrap();
    assert_eq!(
        scan.host_pids.get(&42),
        Some(&320),
        "the agent, not the host's sshd 42"
    );
    assert_eq!(scan.host_pids.get(&43), Some(&321));
    assert_eq!(scan.host_pids.get(&1), Some(&310), "the init itself");
    assert_eq!(
        scan.host_pids.get(&50),
        None,
        "docker exec'd: not a descendant of the init"
    );
    assert!(scan.all_processes, "the mapping needs every process");
}

#[test]
fn a_namespace_whose_init_is_not_found_fails_the_collection() {
    let (url, _auth) = serve(vec![(200, "[]", Duration::ZERO)]);
    let error = collector(
        http(&url, Duration::from_secs(5)),
        fixture("jobs_pid_namespace"),
        Some("no-such-init"),
        false,
    )
    .scan()
    .unwrap_err();
    assert!(
        error.to_string().contains("WATCHDOG_JOBS_PID_NS"),
        "{error}"
    );
}

#[test]
fn with_a_watch_open_every_process_is_read() {
    let (url, _auth) = serve(vec![(200, "[]", Duration::ZERO)]);
    let scan = collector(
        http(&url, Duration::from_secs(5)),
        fixture("process_group"),
        None,
        true,
    )
    .scan()
    .unwrap();
    assert!(scan.all_processes);
    assert!(scan.processes.contains_key(&10) && scan.processes.contains_key(&201));
    let mut body = String::new();
    std::fs::File::open(fixture("process_group").join("uptime"))
        .unwrap()
        .read_to_string(&mut body)
        .unwrap();
    assert_eq!(scan.uptime_s, 100_000.0, "{body}");
}

#[test]
fn a_job_whose_pid_cannot_be_read_is_unreadable_not_gone() {
    let (url, _auth) = serve(vec![(
        200,
        r#"[{"id": "j-1", "pid": 88, "state": "running", "started_at": 1},
            {"id": "j-2", "pid": 89, "state": "running", "started_at": 1},
            {"id": "j-3", "pid": 4242, "state": "running", "started_at": 1}]"#,
        Duration::ZERO,
    )]);
    // truncated_stat: pid 88's stat is cut short, 89's is whole, 4242 does not exist.
    let scan = collector(
        http(&url, Duration::from_secs(5)),
        fixture("truncated_stat"),
        None,
        false,
    )
    .scan()
    .unwrap();
    assert_eq!(ids(&scan), ["j-2", "j-3"]);
    assert_eq!(scan.unreadable.len(), 1);
    assert_eq!(scan.unreadable[0].0, "j-1");
    assert!(scan.processes.contains_key(&89) && !scan.processes.contains_key(&4242));
}
