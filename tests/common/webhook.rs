//! A webhook receiver on 127.0.0.1:0 that `watchdog run` posts to. Its server thread only
//! records each request and answers the status the test scripted; every check (method, path,
//! JSON, the Standard Webhooks signature) runs in the test thread, where a failure fails the
//! test instead of dying unseen with the server thread.

use std::sync::{mpsc, Arc};

use super::WAIT;

/// The key every test daemon signs with.
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// One request as it arrived, and the status it was answered.
struct Raw {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    status: u16,
}

/// One verified event.
#[derive(Debug)]
pub struct Received {
    pub event: serde_json::Value,
    /// The status it was answered.
    pub status: u16,
    /// The body as it arrived, byte for byte.
    pub body: Vec<u8>,
}

impl Received {
    pub fn id(&self) -> &str {
        self.event["id"].as_str().unwrap_or_default()
    }

    /// (event, kind, entity).
    pub fn what(&self) -> (String, String, String) {
        let field = |k: &str| self.event[k].as_str().unwrap_or_default().to_string();
        (field("event"), field("kind"), field("entity"))
    }
}

/// (event, kind, entity) as [`Received::what`] gives it.
pub fn what(event: &str, kind: &str, entity: &str) -> (String, String, String) {
    (event.into(), kind.into(), entity.into())
}

pub struct Webhooks {
    pub url: String,
    host: String,
    requests: mpsc::Receiver<Raw>,
    server: Arc<tiny_http::Server>,
}

impl Webhooks {
    /// Starts a receiver for events of `host`; `answer(n)` is the status of the n-th request.
    pub fn start(host: &str, answer: impl Fn(usize) -> u16 + Send + 'static) -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1:0"));
        let port = server.server_addr().to_ip().expect("an IP listener").port();
        let (tx, requests) = mpsc::channel();
        let serving = Arc::clone(&server);
        std::thread::spawn(move || {
            for (n, mut request) in serving.incoming_requests().enumerate() {
                let mut body = Vec::new();
                // A body that cannot be read is recorded short; the signature check catches it.
                let _ = request.as_reader().read_to_end(&mut body);
                let status = answer(n);
                let raw = Raw {
                    method: request.method().to_string(),
                    url: request.url().to_string(),
                    headers: request
                        .headers()
                        .iter()
                        .map(|h| (h.field.as_str().to_string(), h.value.to_string()))
                        .collect(),
                    body,
                    status,
                };
                // Recorded before the answer, so a delivered event is always here.
                if tx.send(raw).is_err() {
                    return;
                }
                let _ = request.respond(tiny_http::Response::empty(status));
            }
        });
        Self {
            url: format!("http://127.0.0.1:{port}/hook"),
            host: host.to_string(),
            requests,
            server,
        }
    }

    /// The next event, verified; fails the test when none arrives within [`WAIT`].
    pub fn next(&self) -> Received {
        let raw = self.requests.recv_timeout(WAIT).expect("an event arrives");
        self.verify(raw)
    }

    /// The events received so far, verified, without waiting.
    pub fn pending(&self) -> Vec<Received> {
        let raws: Vec<Raw> = self.requests.try_iter().collect();
        raws.into_iter().map(|raw| self.verify(raw)).collect()
    }

    fn verify(&self, raw: Raw) -> Received {
        assert_eq!(raw.method, "POST");
        assert_eq!(raw.url, "/hook");
        let mut headers = http::HeaderMap::new();
        for (name, value) in &raw.headers {
            headers.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                http::HeaderValue::from_str(value).unwrap(),
            );
        }
        standardwebhooks::Webhook::new(SECRET)
            .unwrap()
            .verify(&raw.body, &headers)
            .unwrap_or_else(|e| panic!("signature does not verify: {e:?}"));
        assert_eq!(headers["content-type"], "application/json");
        let event: serde_json::Value = serde_json::from_slice(&raw.body).unwrap();
        assert_eq!(headers["webhook-id"], event["id"].as_str().unwrap());
        assert_eq!(event["schema"], "watchdog.alert.v1");
        assert_eq!(event["host"], self.host.as_str());
        Received {
            event,
            status: raw.status,
            body: raw.body,
        }
    }
}

impl Drop for Webhooks {
    fn drop(&mut self) {
        self.server.unblock();
    }
}
