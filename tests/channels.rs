//! Slack and Telegram notifiers against local HTTP servers that check the exact request and
//! script the answers.

mod common;

use std::time::Duration;

use common::Server;
use watchdog::event::Event;
use watchdog::model::{Alert, EventKind, Facts, Kind, Lang, ProcFacts, Reason, Stop};
use watchdog::notify::slack::SlackNotifier;
use watchdog::notify::telegram::TelegramNotifier;
use watchdog::notify::{http_client, Notifier, NotifyError};

const TOKEN: &str = "123456:SECRET-bot-token";

fn event(cmdline: &str) -> Event {
    let facts = ProcFacts {
        pid: 7,
        ppid: 1,
        pgid: 7,
        session: 7,
        state: 'S',
        comm: "pytest".into(),
        age_s: 7200,
        cmdline: cmdline.into(),
        orphaned: true,
        adopted: true,
        parent: Some("tini".into()),
        group_leader_alive: true,
        cpu_pct: 0.1,
        rss_bytes: 8 << 20,
        members: None,
        group_cpu_pct: None,
        group_rss_bytes: None,
        stop: Stop::Group(7),
        container: None,
    };
    let alert = Alert {
        event: EventKind::Fire,
        kind: Kind::ProcBlocking,
        entity: "proc:7:9280000".into(),
        since: 1_795_000_000,
        at: 1_795_000_000,
        facts: Facts::Proc(facts),
        reason: Reason::First,
    };
    Event::render(&alert, "ci-runner-3", Lang::En)
}

fn slack(server: &Server) -> SlackNotifier {
    let url = format!("{}/services/T000/B000/XXXX", server.base)
        .parse()
        .unwrap();
    SlackNotifier::new(http_client(None).unwrap(), url)
}

fn telegram(base: &str) -> TelegramNotifier {
    TelegramNotifier::new(http_client(None).unwrap(), base, TOKEN, "-1001234").unwrap()
}

/// How a send ended, by class.
type Class = Result<(), &'static str>;

/// status, headers, body, expected class, expected retry-after in seconds.
type SlackCase = (
    u16,
    &'static [(&'static str, &'static str)],
    &'static str,
    Class,
    Option<u64>,
);

/// status, body, expected class, expected retry-after in seconds.
type TelegramCase = (u16, &'static str, Class, Option<u64>);

fn retryable(after: Option<u64>) -> Class {
    Err(match after {
        Some(_) => "retryable with retry-after",
        None => "retryable",
    })
}

/// The outcome class of a send, with the retry-after when one came.
fn class(result: &Result<(), NotifyError>) -> (Class, Option<Duration>) {
    match result {
        Ok(()) => (Ok(()), None),
        Err(NotifyError::Retryable { retry_after, .. }) => {
            (retryable(retry_after.map(|d| d.as_secs())), *retry_after)
        }
        Err(NotifyError::Permanent { .. }) => (Err("permanent"), None),
    }
}

#[tokio::test]
async fn slack_gets_one_escaped_text_message() {
    let server = Server::answering(200);
    let event = event("pytest -k '<!channel> & <@U123>' tests/");
    slack(&server).send(&event).await.unwrap();

    let request = server.next();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/services/T000/B000/XXXX");
    assert_eq!(request.header("content-type"), Some("application/json"));
    let body = request.json();
    assert_eq!(body.as_object().unwrap().len(), 1, "only text: {body}");
    let text = body["text"].as_str().unwrap();
    assert!(
        text.starts_with(":rotating_light: *[ci-runner-3] stuck: pytest (pid 7)"),
        "{text}"
    );
    assert!(
        text.contains("pytest -k '&lt;!channel&gt; &amp; &lt;@U123&gt;' tests/"),
        "{text}"
    );
    assert!(
        !text.contains("<!channel>") && !text.contains("<@U123>"),
        "{text}"
    );
    insta::assert_snapshot!(text);
}

#[tokio::test]
async fn slack_answers_are_judged_as_slack_documents_them() {
    let cases: &[SlackCase] = &[
        (200, &[], "ok", Ok(()), None),
        (
            429,
            &[("Retry-After", "7")],
            "rate_limited",
            Err("retryable with retry-after"),
            Some(7),
        ),
        (500, &[], "", Err("retryable"), None),
        (503, &[], "", Err("retryable"), None),
        (400, &[], "invalid_payload", Err("permanent"), None),
        (403, &[], "invalid_token", Err("permanent"), None),
        (404, &[], "no_service", Err("permanent"), None),
        (410, &[], "channel_is_archived", Err("permanent"), None),
        (
            302,
            &[("Location", "http://127.0.0.1:1/")],
            "",
            Err("permanent"),
            None,
        ),
    ];
    for (status, headers, body, want, after) in cases {
        let headers: Vec<(&'static str, String)> =
            headers.iter().map(|(n, v)| (*n, v.to_string())).collect();
        let (status, body) = (*status, body.to_string());
        let answer = (headers, body.clone());
        let server = Server::start(move |_, _| (status, answer.0.clone(), answer.1.clone()));
        let result = slack(&server).send(&event("pytest")).await;
        let (got, retry_after) = class(&result);
        assert_eq!(got, *want, "HTTP {status}: {result:?}");
        assert_eq!(retry_after, after.map(Duration::from_secs), "HTTP {status}");
        if let Err(NotifyError::Permanent { reason }) = &result {
            assert!(
                reason.contains(&body),
                "HTTP {status}: Slack's reason in {reason}"
            );
        }
        assert_eq!(
            server.pending().len(),
            1,
            "HTTP {status}: one request, no redirect followed"
        );
    }
}

#[tokio::test]
async fn telegram_gets_escaped_html_to_send_message() {
    let server = Server::start(|_, _| (200, vec![], r#"{"ok":true,"result":{}}"#.into()));
    let event = event("pytest -k '<b>x</b> & y' tests/");
    telegram(&server.base).send(&event).await.unwrap();

    let request = server.next();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, format!("/bot{TOKEN}/sendMessage"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    let body = request.json();
    assert_eq!(body["chat_id"], "-1001234");
    assert_eq!(body["parse_mode"], "HTML");
    assert_eq!(body["disable_web_page_preview"], true);
    let text = body["text"].as_str().unwrap();
    assert!(
        text.starts_with(
            "<b>[ci-runner-3] stuck: pytest (pid 7) running for 2h00m, orphaned</b>\n\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("pytest -k '&lt;b&gt;x&lt;/b&gt; &amp; y' tests/"),
        "{text}"
    );
    insta::assert_snapshot!(text);
}

/// The text Telegram shows: tags dropped, entities decoded.
fn visible(html: &str) -> String {
    html.replace("<b>", "")
        .replace("</b>", "")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[tokio::test]
async fn telegram_messages_keep_to_4096_visible_characters() {
    let server = Server::start(|_, _| (200, vec![], r#"{"ok":true}"#.into()));
    // Escaping makes every character of this command line five; the cut counts before that.
    let event = event(&"&".repeat(1000));
    let mut long = event.clone();
    long.text = format!("{}{}", long.text, "<&>".repeat(3000));
    telegram(&server.base).send(&long).await.unwrap();
    let text = server.next().json()["text"].as_str().unwrap().to_string();
    assert_eq!(visible(&text).chars().count(), 4096);
    assert!(
        text.chars().count() > 4096,
        "the escaped form may be longer"
    );
    assert!(text.ends_with('…'));

    telegram(&server.base).send(&event).await.unwrap();
    let text = server.next().json()["text"].as_str().unwrap().to_string();
    assert!(
        visible(&text).chars().count() < 4096,
        "a short message is not cut"
    );
    assert!(!text.ends_with('…'));
}

#[tokio::test]
async fn telegram_answers_are_judged_and_retry_after_honoured() {
    let cases: &[TelegramCase] = &[
        (200, r#"{"ok":true}"#, Ok(()), None),
        (
            429,
            r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 5","parameters":{"retry_after":5}}"#,
            Err("retryable with retry-after"),
            Some(5),
        ),
        (502, "<html>bad gateway</html>", Err("retryable"), None),
        (
            400,
            r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#,
            Err("permanent"),
            None,
        ),
        (
            401,
            r#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#,
            Err("permanent"),
            None,
        ),
        (
            403,
            r#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#,
            Err("permanent"),
            None,
        ),
    ];
    for (status, body, want, after) in cases {
        let (status, body) = (*status, body.to_string());
        let server = Server::start(move |_, _| (status, vec![], body.clone()));
        let result = telegram(&server.base).send(&event("pytest")).await;
        let (got, retry_after) = class(&result);
        assert_eq!(got, *want, "HTTP {status}: {result:?}");
        assert_eq!(retry_after, after.map(Duration::from_secs), "HTTP {status}");
        if let Err(error) = &result {
            let message = error.to_string();
            assert!(!message.contains("SECRET"), "HTTP {status}: {message}");
        }
    }
    let server = Server::start(|_, _| {
        (
            400,
            vec![],
            r#"{"description":"Bad Request: chat not found"}"#.into(),
        )
    });
    let error = telegram(&server.base)
        .send(&event("pytest"))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("chat not found"), "{error}");
}

#[tokio::test]
async fn a_transport_error_never_shows_the_bot_token() {
    // Port 0: nothing ever listens there, so a connection is refused at once.
    let closed = "http://127.0.0.1:0".to_string();
    let error = telegram(&closed).send(&event("pytest")).await.unwrap_err();
    assert!(matches!(error, NotifyError::Retryable { .. }), "{error}");
    let message = format!("{error} {error:?}");
    assert!(
        !message.contains("SECRET") && !message.contains("bot123456"),
        "{message}"
    );
    assert!(message.contains("could not connect"), "{message}");
}

#[tokio::test]
async fn webhook_answers_are_judged_by_status_and_nothing_is_followed() {
    use watchdog::notify::webhook::WebhookNotifier;
    let cases: &[(u16, Class, Option<u64>)] = &[
        (200, Ok(()), None),
        (202, Ok(()), None),
        (204, Ok(()), None),
        (301, Err("permanent"), None),
        (307, Err("permanent"), None),
        (400, Err("permanent"), None),
        (401, Err("permanent"), None),
        (404, Err("permanent"), None),
        (429, Err("retryable with retry-after"), Some(30)),
        (500, Err("retryable"), None),
        (503, Err("retryable"), None),
    ];
    for (status, want, after) in cases {
        let status = *status;
        let server = Server::start(move |_, _| {
            let mut headers = vec![("Location", "http://127.0.0.1:1/elsewhere".to_string())];
            if status == 429 {
                headers.push(("Retry-After", "30".to_string()));
            }
            (status, headers, String::new())
        });
        let url = format!("{}/hook", server.base).parse().unwrap();
        let notifier = WebhookNotifier::new(http_client(None).unwrap(), url, Some(b"key".to_vec()));
        let result = notifier.send(&event("pytest")).await;
        let (got, retry_after) = class(&result);
        assert_eq!(got, *want, "HTTP {status}: {result:?}");
        assert_eq!(retry_after, after.map(Duration::from_secs), "HTTP {status}");
        let requests = server.pending();
        assert_eq!(
            requests.len(),
            1,
            "HTTP {status}: one request, no redirect followed"
        );
        assert!(requests[0]
            .header("webhook-signature")
            .unwrap()
            .starts_with("v1,"));
    }
}
