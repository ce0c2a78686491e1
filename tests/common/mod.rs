//! What the tests share: a scripted HTTP server on 127.0.0.1:0 that records every request
//! exactly and answers what the test's script says; child processes with deadlines
//! ([`child`]); `watchdog run` as a child ([`daemon`]); a webhook receiver whose checks run in
//! the test thread ([`webhook`]); the state database read as `sqlite3` would ([`db`]).

#![allow(dead_code, unused_imports)]

mod child;
mod daemon;
pub mod db;
mod webhook;

pub use child::*;
pub use daemon::{port_in, Daemon};
pub use webhook::{what, Received, Webhooks, SECRET};

use std::io::Read;
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// An answer: status, extra headers, body.
pub type Answer = (u16, Vec<(&'static str, String)>, String);

pub struct Server {
    pub base: String,
    requests: mpsc::Receiver<Request>,
    server: Arc<tiny_http::Server>,
}

impl Server {
    /// Starts a server; `script(n, &request)` answers the n-th request (from 0).
    pub fn start(script: impl Fn(usize, &Request) -> Answer + Send + 'static) -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let port = server.server_addr().to_ip().unwrap().port();
        let (tx, requests) = mpsc::channel();
        let serving = Arc::clone(&server);
        std::thread::spawn(move || {
            for (n, mut raw) in serving.incoming_requests().enumerate() {
                let mut body = Vec::new();
                raw.as_reader().read_to_end(&mut body).unwrap();
                let request = Request {
                    method: raw.method().to_string(),
                    path: raw.url().to_string(),
                    headers: raw
                        .headers()
                        .iter()
                        .map(|h| (h.field.as_str().to_string(), h.value.to_string()))
                        .collect(),
                    body,
                };
                let (status, headers, body) = script(n, &request);
                // Recorded before the answer, so a client that has its answer finds it here.
                if tx.send(request).is_err() {
                    return;
                }
                let mut response = tiny_http::Response::from_string(body).with_status_code(status);
                for (name, value) in headers {
                    response.add_header(tiny_http::Header::from_bytes(name, value).unwrap());
                }
                let _ = raw.respond(response);
            }
        });
        Self {
            base: format!("http://127.0.0.1:{port}"),
            requests,
            server,
        }
    }

    /// Always answers `status` with an empty body.
    pub fn answering(status: u16) -> Self {
        Self::start(move |_, _| (status, vec![], String::new()))
    }

    pub fn next(&self) -> Request {
        self.requests
            .recv_timeout(Duration::from_secs(30))
            .expect("a request arrives")
    }

    pub fn pending(&self) -> Vec<Request> {
        self.requests.try_iter().collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

/// A plain HTTP/1.0 GET to 127.0.0.1:`port`: (status, body), or `None` when nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    http_get_with(port, path, &[])
}

/// As [`http_get`], with extra request headers. Each read and write waits 10 s at most.
pub fn http_get_with(port: u16, path: &str, headers: &[(&str, &str)]) -> Option<(u16, String)> {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut head = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).ok()?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).ok()?;
    let status = raw.split_whitespace().nth(1)?.parse().ok()?;
    let body = raw
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_string());
    Some((status, body))
}

/// Copies a directory tree (a fixture) into `to`.
pub fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
