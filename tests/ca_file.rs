//! `WATCHDOG_CA_FILE`: a private CA made here with openssl signs the certificate of an HTTPS
//! receiver (Python's http.server with ssl); watchdog trusts it only with the CA file.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

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
        common::reap(&mut self.0);
    }
}

fn test_alert(url: &str, ca_file: Option<&Path>) -> (Option<i32>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_watchdog"));
    command
        .arg("test-alert")
        .env_clear()
        .env("WATCHDOG_WEBHOOK_URL", url);
    if let Some(ca) = ca_file {
        command.env("WATCHDOG_CA_FILE", ca);
    }
    let (output, _) = common::run_within(&mut command, Duration::from_secs(60))
        .unwrap_or_else(|waited| panic!("test-alert still ran after {waited:?}"));
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn a_private_ca_is_trusted_only_through_the_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    let mut child = Command::new("python3")
        .args(["-c", SERVER])
        .arg(dir.path().join("server.pem"))
        .arg(dir.path().join("server.key"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let stdout = child.stdout.take().unwrap();
    let _server = Https(child);
    // Its first line, the port, within the tests' deadline.
    let port = common::Logs::follow(stdout).next_line();
    let url = format!("https://127.0.0.1:{port}/hook");

    let (code, stdout) = test_alert(&url, None);
    assert_eq!(code, Some(1), "an unknown CA is refused: {stdout}");
    assert!(stdout.contains("FAILED"), "{stdout}");

    let (code, stdout) = test_alert(&url, Some(&dir.path().join("ca.pem")));
    assert_eq!(code, Some(0), "trusted through WATCHDOG_CA_FILE: {stdout}");
    assert!(stdout.trim_end().ends_with(" ok"), "{stdout}");
}
