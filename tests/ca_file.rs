//! `WATCHDOG_CA_FILE` and the one TLS stack: a private CA made here with openssl signs the
//! certificate of an HTTPS server on 127.0.0.1 (Python's http.server with ssl), which takes
//! webhook POSTs and answers the job list to a GET. watchdog trusts that CA through the CA file
//! or through the system's trust path (`SSL_CERT_FILE`), for a channel and for the jobs source
//! alike, and refuses it otherwise. A CA file that is not a regular file of PEM certificates of
//! at most 1 MiB exits 2 naming the variable. Every child runs under a deadline.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long any one watchdog run may take here; a run that blocks (on a FIFO) fails the test.
const DEADLINE: Duration = Duration::from_secs(60);

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl is installed (.ci/run installs it)");
    assert!(status.success(), "openssl {args:?}");
}

/// A CA, and a certificate for 127.0.0.1 that it signed.
fn make_certs(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=watchdog test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.pem",
        ],
    );
}

const SERVER: &str = r#"
import http.server, ssl, sys
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.end_headers()
    def do_GET(self):
        body = b'[{"id": "j-1", "state": "done", "started_at": 1, "ended_at": 2}]'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[1], sys.argv[2])
server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

struct Https(Child);

impl Drop for Https {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the HTTPS server with the certificates in `dir`; ready once it prints its port.
fn start_https(dir: &Path) -> (Https, u16) {
    let mut child = Command::new("python3")
        .args(["-c", SERVER])
        .arg(dir.join("server.pem"))
        .arg(dir.join("server.key"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        // A refused handshake is logged there; the tests read the client's side.
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 runs");
    let stdout = child.stdout.take().unwrap();
    let server = Https(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let line = BufReader::new(stdout).lines().next();
        let _ = tx.send(line);
    });
    let port = rx
        .recv_timeout(DEADLINE)
        .expect("the server prints its port in time")
        .expect("a line")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (server, port)
}

/// Runs watchdog with only `vars` set and waits for it, at most [`DEADLINE`]:
/// (exit status, stdout, stderr).
fn watchdog(args: &[&str], vars: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_watchdog"))
        .args(args)
        .env_clear()
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("watchdog {args:?} with {vars:?} still runs after {DEADLINE:?}");
        }
        // Polling for the exit, not waiting for anything to happen by itself.
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        status.code(),
        stdout.join().unwrap(),
        stderr.join().unwrap(),
    )
}

fn test_alert(url: &str, ca_file: Option<&Path>) -> (Option<i32>, String) {
    let ca = ca_file.map(|p| p.display().to_string());
    let mut vars = vec![("WATCHDOG_WEBHOOK_URL", url)];
    if let Some(ca) = &ca {
        vars.push(("WATCHDOG_CA_FILE", ca));
    }
    let (code, stdout, _) = watchdog(&["test-alert"], &vars);
    (code, stdout)
}

#[test]
fn a_private_ca_is_trusted_only_through_the_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    let (_server, port) = start_https(dir.path());
    let url = format!("https://127.0.0.1:{port}/hook");

    let (code, stdout) = test_alert(&url, None);
    assert_eq!(code, Some(1), "an unknown CA is refused: {stdout}");
    assert!(stdout.contains("FAILED"), "{stdout}");

    let (code, stdout) = test_alert(&url, Some(&dir.path().join("ca.pem")));
    assert_eq!(code, Some(0), "trusted through WATCHDOG_CA_FILE: {stdout}");
    assert!(stdout.trim_end().ends_with(" ok"), "{stdout}");
}

fn fixture(scenario: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/proc")
        .join(scenario)
        .display()
        .to_string()
}

/// `once --json --check` with the jobs collector on the HTTPS job list and `extra` set.
fn once_jobs(url: &str, extra: &[(&str, &str)]) -> (Option<i32>, serde_json::Value) {
    let root = fixture("orphaned_pytest");
    let mut vars = vec![
        ("WATCHDOG_JOBS_ENABLED", "true"),
        ("WATCHDOG_JOBS_URL", url),
        ("WATCHDOG_PROC_ROOT", root.as_str()),
    ];
    vars.extend_from_slice(extra);
    let (code, stdout, stderr) = watchdog(&["once", "--json", "--check"], &vars);
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("once --json prints JSON ({e}): {stdout} {stderr}"));
    (code, report)
}

#[test]
fn the_jobs_source_trusts_a_private_ca_through_the_ca_file_or_the_system_path() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    let (_server, port) = start_https(dir.path());
    let url = format!("https://127.0.0.1:{port}/api/jobs?token=t0k");
    let ca = dir.path().join("ca.pem").display().to_string();

    for (how, extra) in [
        ("WATCHDOG_CA_FILE", [("WATCHDOG_CA_FILE", ca.as_str())]),
        ("SSL_CERT_FILE", [("SSL_CERT_FILE", ca.as_str())]),
    ] {
        let (code, report) = once_jobs(&url, &extra);
        let jobs = &report["collectors"][1];
        assert_eq!(jobs["name"], "jobs", "{how}: {report}");
        assert_eq!(jobs["ok"], true, "trusted through {how}: {report}");
        assert_eq!(
            jobs["observed"], 1,
            "{how}: the job list was read: {report}"
        );
        assert_eq!(code, Some(0), "{how}: {report}");
    }

    // The channels trust the system path the same way.
    let (code, stdout, _) = watchdog(
        &["test-alert"],
        &[
            (
                "WATCHDOG_WEBHOOK_URL",
                &format!("https://127.0.0.1:{port}/hook"),
            ),
            ("SSL_CERT_FILE", &ca),
        ],
    );
    assert_eq!(
        code,
        Some(0),
        "a webhook trusted through SSL_CERT_FILE: {stdout}"
    );
}

#[test]
fn without_the_private_ca_the_jobs_source_fails_with_a_tls_error() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    let (_server, port) = start_https(dir.path());
    let url = format!("https://127.0.0.1:{port}/api/jobs?token=t0k");
    let (code, report) = once_jobs(&url, &[]);
    assert_eq!(code, Some(3), "a collector failed: {report}");
    let jobs = &report["collectors"][1];
    assert_eq!(jobs["ok"], false, "{report}");
    let error = jobs["error"].as_str().unwrap();
    assert!(
        error.starts_with(&format!("job list https://127.0.0.1:{port}: TLS failed")),
        "{error}"
    );
    assert!(error.contains("UnknownIssuer"), "{error}");
    assert!(
        !error.contains("t0k") && !error.contains("/api/jobs"),
        "{error}"
    );
}

/// `check-config` with only `WATCHDOG_CA_FILE` set: (exit status, stderr).
fn check_ca_file(path: &Path) -> (Option<i32>, String) {
    let value = path.display().to_string();
    let (code, _, stderr) = watchdog(&["check-config"], &[("WATCHDOG_CA_FILE", &value)]);
    (code, stderr)
}

#[test]
fn a_ca_file_that_is_not_a_regular_file_of_pem_certificates_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    let fifo = dir.path().join("fifo.pem");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success(), "mkfifo");
    let huge = dir.path().join("huge.pem");
    // A real certificate first, then padding: refused for its size, not its content.
    let mut padded = std::fs::read(dir.path().join("ca.pem")).unwrap();
    padded.resize(2 << 20, b'\n');
    std::fs::write(&huge, padded).unwrap();
    let no_cert = dir.path().join("key.pem");
    std::fs::copy(dir.path().join("ca.key"), &no_cert).unwrap();
    let cases: [(&str, PathBuf, &str); 5] = [
        (
            "a FIFO, which must not block",
            fifo,
            "a FIFO, not a regular file",
        ),
        (
            "/dev/zero, which must not be read",
            "/dev/zero".into(),
            "a character device, not a regular file",
        ),
        (
            "a directory",
            dir.path().to_path_buf(),
            "a directory, not a regular file",
        ),
        ("a 2 MiB file", huge, "larger than 1048576 bytes"),
        (
            "a key without a certificate",
            no_cert,
            "no PEM certificate in it",
        ),
    ];
    for (what, path, why) in cases {
        let (code, stderr) = check_ca_file(&path);
        assert_eq!(code, Some(2), "{what}: {stderr}");
        assert!(stderr.contains("WATCHDOG_CA_FILE"), "{what}: {stderr}");
        assert!(stderr.contains(why), "{what}: {stderr}");
    }
}

#[test]
fn a_ca_file_that_links_to_a_regular_file_is_read_as_it() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    // As Kubernetes mounts a secret: a link, through a link, to the file.
    let data = dir.path().join("..data");
    std::fs::create_dir(&data).unwrap();
    std::fs::rename(dir.path().join("ca.pem"), data.join("ca.pem")).unwrap();
    let link = dir.path().join("ca.pem");
    std::os::unix::fs::symlink(data.join("ca.pem"), &link).unwrap();
    let (code, stderr) = check_ca_file(&link);
    assert_eq!(code, Some(0), "{stderr}");
}
