//! Credentials do not follow redirects to other origins (issue 16, finding
//! 6): an HTTP check's configured headers (Authorization, Cookie, X-Api-Key,
//! any other) and its body go to the configured origin only, and webhook
//! receivers do not follow redirects at all unless configured to. Real
//! local servers on two ports (two origins) record what reached them.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use continuity::config::CheckKind;
use continuity::probe;
use http_body_util::BodyExt;
use support::*;

/// One request as a server saw it.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    method: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A server that records every request; `/hop/STATUS?URL` answers with a
/// redirect of that status to URL, anything else 200.
async fn recorder() -> (HttpServer, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let handler: Handler = Arc::new(move |req| {
        let log = log.clone();
        Box::pin(async move {
            let path = req.uri().path().to_string();
            let query = req.uri().query().unwrap_or("").to_string();
            let method = req.method().to_string();
            let headers = req
                .headers()
                .iter()
                .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
                .collect();
            let body = req.into_body().collect().await.map(|b| b.to_bytes());
            let body = String::from_utf8_lossy(&body.unwrap_or_default()).to_string();
            log.lock().unwrap().push(Seen {
                path: path.clone(),
                method,
                headers,
                body,
            });
            if let Some(status) = path.strip_prefix("/hop/") {
                return hyper::Response::builder()
                    .status(status.parse::<u16>().unwrap())
                    .header("location", query)
                    .body(full(""))
                    .unwrap();
            }
            respond(200, "ok")
        })
    });
    (http_server(handler).await, seen)
}

async fn probe_http(yaml: &str) {
    let kind = CheckKind::Http(spec(yaml));
    let o = probe::run_with_details(&kind, Duration::from_secs(3))
        .await
        .expect("the probe runs");
    assert!(o.success(), "{:?} {:?}", o.failure, o.details);
}

const SECRETS: &str = "headers:\n  Authorization: Bearer t0k3n\n  Cookie: session=c00k1e\n  X-Api-Key: k3y\n  Referer: https://intranet.example/secret\n";

#[tokio::test]
async fn configured_headers_are_not_sent_to_another_origin() {
    let (origin, at_origin) = recorder().await;
    let (other, at_other) = recorder().await;
    probe_http(&format!(
        "url: {}?{}\n{SECRETS}",
        origin.url("/hop/302"),
        other.url("/landing")
    ))
    .await;
    let first = at_origin.lock().unwrap()[0].clone();
    assert_eq!(first.header("authorization"), Some("Bearer t0k3n"));
    assert_eq!(first.header("x-api-key"), Some("k3y"));
    let landed = at_other.lock().unwrap()[0].clone();
    assert_eq!(landed.path, "/landing");
    for name in [
        "authorization",
        "cookie",
        "x-api-key",
        "referer",
        "proxy-authorization",
    ] {
        assert_eq!(landed.header(name), None, "{name} reached the other origin");
    }
}

#[tokio::test]
async fn configured_headers_still_follow_a_redirect_within_the_origin() {
    let (origin, seen) = recorder().await;
    probe_http(&format!(
        "url: {}?/landing\n{SECRETS}",
        origin.url("/hop/302")
    ))
    .await;
    let landed = seen.lock().unwrap()[1].clone();
    assert_eq!(landed.path, "/landing");
    assert_eq!(landed.header("authorization"), Some("Bearer t0k3n"));
    assert_eq!(landed.header("cookie"), Some("session=c00k1e"));
}

#[tokio::test]
async fn a_307_to_another_origin_keeps_the_method_but_not_the_body() {
    let (origin, _) = recorder().await;
    let (other, at_other) = recorder().await;
    probe_http(&format!(
        "url: {}?{}\nmethod: POST\nbody: 'password=hunter2'\n{SECRETS}",
        origin.url("/hop/307"),
        other.url("/landing")
    ))
    .await;
    let landed = at_other.lock().unwrap()[0].clone();
    assert_eq!(landed.method, "POST");
    assert_eq!(landed.body, "");
    assert_eq!(landed.header("authorization"), None);
}

#[tokio::test]
async fn a_303_after_post_drops_the_body_even_within_the_origin() {
    let (origin, seen) = recorder().await;
    probe_http(&format!(
        "url: {}?/landing\nmethod: POST\nbody: 'a=1'\n",
        origin.url("/hop/303")
    ))
    .await;
    let landed = seen.lock().unwrap()[1].clone();
    assert_eq!((landed.method.as_str(), landed.body.as_str()), ("GET", ""));
}

mod receivers {
    use std::collections::BTreeMap;

    use continuity::alert::notify::webhook::{Webhook, WebhookNotifier};
    use continuity::alert::notify::{Message, Notification, Notifier, Status, http_client};
    use continuity::alert::rules::Alert;
    use continuity::config::Secret;

    use super::*;

    fn message() -> Message {
        let mut labels = BTreeMap::new();
        labels.insert("alertname".to_string(), "ServiceDown".to_string());
        let alert = Alert {
            labels,
            annotations: BTreeMap::new(),
            starts_at: jiff::Timestamp::from_second(1_800_000_000).unwrap(),
            generator_url: None,
        };
        let n = Notification::new(Status::Firing, "portal-1", "ops", &alert, None, None);
        Message::new("ops", "{}".into(), BTreeMap::new(), vec![n])
    }

    fn webhook(url: String, follow_redirects: bool) -> WebhookNotifier {
        let spec = Webhook {
            url: Secret::new(url),
            headers: vec![("X-Webhook-Secret".into(), Secret::new("w3bh00k"))],
            follow_redirects,
        };
        WebhookNotifier::new(&spec, http_client(Duration::from_secs(3)).unwrap())
    }

    #[tokio::test]
    async fn a_webhook_does_not_follow_a_redirect_unless_configured() {
        let (origin, at_origin) = recorder().await;
        let (other, at_other) = recorder().await;
        let to = other.url("/stolen");
        let err = webhook(format!("{}?{to}", origin.url("/hop/307")), false)
            .send(&message())
            .await
            .expect_err("a redirect is not a delivery");
        assert!(err.to_string().contains("follow_redirects"), "{err}");
        assert!(
            at_other.lock().unwrap().is_empty(),
            "the other origin was reached"
        );
        assert_eq!(at_origin.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_following_webhook_never_goes_to_another_origin_nor_sends_a_referer() {
        let (origin, at_origin) = recorder().await;
        let (other, at_other) = recorder().await;
        let to = other.url("/stolen");
        let err = webhook(format!("{}?{to}", origin.url("/hop/307")), true)
            .send(&message())
            .await
            .expect_err("another origin is refused");
        assert!(err.to_string().contains("another origin"), "{err}");
        assert!(
            at_other.lock().unwrap().is_empty(),
            "the other origin was reached"
        );

        webhook(format!("{}?/landing", origin.url("/hop/308")), true)
            .send(&message())
            .await
            .expect("a 308 within the origin is followed");
        let seen = at_origin.lock().unwrap().clone();
        let landed = seen.last().unwrap();
        assert_eq!(landed.path, "/landing");
        assert_eq!(landed.method, "POST");
        assert!(landed.body.contains("ServiceDown"), "{}", landed.body);
        assert_eq!(landed.header("x-webhook-secret"), Some("w3bh00k"));
        assert_eq!(landed.header("referer"), None);
    }
}
