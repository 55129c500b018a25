//! Delivery channels. Each channel file holds its block as written in the
//! YAML, the check that compiles it into a [`Channel`] when the
//! configuration loads, and the sender that formats a [`Message`] (one
//! group's notifications) its own way. None decides anything (that is
//! `rules.rs`), none groups (the dispatcher) and none retries (the
//! outbox). [`Channel`] is the list of channels.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::future::BoxFuture;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::config::{InlineSecret, url_ok};
use super::rules::Alert;
use crate::config::{Location, Secret, Spanned, Validator, expand};

pub mod alertmanager;
pub mod email;
pub mod slack;
pub mod teams;
pub mod webhook;

/// Version of the [`Notification`] JSON schema (the generic webhook body).
pub const SCHEMA_VERSION: &str = "1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Firing,
    Resolved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }
}

/// One notification about one alert for one receiver: what the outbox
/// stores, what the generic webhook posts as is, and what the other
/// channels render. Documented in docs/alerting.md; change it only by
/// adding fields, or bump [`SCHEMA_VERSION`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub version: String,
    /// Always `continuity`.
    pub source: String,
    pub status: Status,
    /// The same for every delivery attempt of this notification:
    /// `{incident}:{status}`. Receivers can drop repeats with it.
    pub idempotency_key: String,
    /// One spell of firing of one alert: `{fingerprint}-{startsAt unix}`.
    pub incident: String,
    pub fingerprint: String,
    pub receiver: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    #[serde(rename = "startsAt")]
    pub starts_at: Timestamp,
    /// Set when resolved.
    #[serde(rename = "endsAt")]
    pub ends_at: Option<Timestamp>,
    #[serde(rename = "generatorURL")]
    pub generator_url: Option<String>,
    /// Why it resolved when not by itself (maintenance, restart, ...).
    pub note: Option<String>,
}

impl Notification {
    pub fn new(
        status: Status,
        incident: &str,
        receiver: &str,
        alert: &Alert,
        ends_at: Option<Timestamp>,
        note: Option<String>,
    ) -> Notification {
        Notification {
            version: SCHEMA_VERSION.to_string(),
            source: "continuity".to_string(),
            status,
            idempotency_key: format!("{incident}:{}", status.as_str()),
            incident: incident.to_string(),
            fingerprint: alert.fingerprint(),
            receiver: receiver.to_string(),
            labels: alert.labels.clone(),
            annotations: alert.annotations.clone(),
            starts_at: alert.starts_at,
            ends_at,
            generator_url: alert.generator_url.clone(),
            note,
        }
    }

    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map(String::as_str).unwrap_or("")
    }

    pub fn annotation(&self, name: &str) -> Option<&str> {
        self.annotations.get(name).map(String::as_str)
    }

    pub fn alertname(&self) -> &str {
        self.label("alertname")
    }

    /// One line for a chat message or an e-mail subject:
    /// `[FIRING] ServiceDown (page): Citizen portal is down: check home fails`.
    pub fn title(&self) -> String {
        let summary = self
            .annotation("summary")
            .map(str::to_string)
            .unwrap_or_else(|| self.alertname().to_string());
        format!(
            "[{}] {} ({}): {summary}",
            self.status.as_str().to_uppercase(),
            self.alertname(),
            self.label("severity")
        )
    }

    /// The body text: description, then the note for a resolution.
    pub fn body(&self) -> String {
        let mut s = self.annotation("description").unwrap_or("").to_string();
        if let Some(n) = &self.note {
            if !s.is_empty() {
                s.push_str("\n\n");
            }
            s.push_str(n);
        }
        s
    }

    /// The labels and times worth showing as facts, in a stable order.
    pub fn facts(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (label, title) in [
            ("service", "Service"),
            ("check", "Check"),
            ("sla", "SLA"),
            ("category", "Category"),
            ("supplier", "Supplier"),
            ("severity", "Severity"),
            ("location", "Location"),
        ] {
            if let Some(v) = self.labels.get(label) {
                out.push((title.to_string(), v.clone()));
            }
        }
        out.push(("Started".to_string(), self.starts_at.to_string()));
        if let Some(e) = self.ends_at {
            out.push(("Ended".to_string(), e.to_string()));
        }
        out
    }

    /// Links for buttons: runbook first, then the status page.
    pub fn links(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(r) = self.annotation("runbook_url") {
            out.push(("Runbook", r.to_string()));
        }
        if let Some(s) = self
            .annotation("status_url")
            .map(str::to_string)
            .or_else(|| self.generator_url.clone())
        {
            out.push(("Status", s));
        }
        out
    }
}

/// A failed delivery. The text never contains a secret (webhook URLs are
/// left out of HTTP errors).
#[derive(Debug, Clone, thiserror::Error)]
pub enum DeliveryError {
    #[error("HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("request failed: {0}")]
    Request(String),
    #[error("SMTP: {0}")]
    Smtp(String),
    #[error("cannot build the message: {0}")]
    Build(String),
}

impl DeliveryError {
    pub(crate) fn from_reqwest(e: reqwest::Error) -> DeliveryError {
        // reqwest puts the URL in its messages; the URL is the secret.
        let e = e.without_url();
        let mut msg = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            source = s.source();
        }
        DeliveryError::Request(msg)
    }
}

/// A channel that can send a message: the one interface every provider
/// implements.
pub trait Notifier: Send + Sync {
    fn send<'a>(&'a self, m: &'a Message) -> BoxFuture<'a, Result<(), DeliveryError>>;
}

/// The list of channels: the block's name under a receiver, the variant
/// of [`Channel`], the block as written and its compiled form. Adding a
/// channel is a file in this folder (spec, [`ChannelSpec`], compiled form
/// with [`ChannelSender`], sender) and a line here; [`Channel`] and the
/// receiver's block fields (`ReceiverSpec`) are generated from it.
macro_rules! with_channels {
    ($then:ident) => {
        $then! {
            webhook: Webhook($crate::alert::notify::webhook::WebhookSpec => $crate::alert::notify::webhook::Webhook),
            slack: Slack($crate::alert::notify::slack::SlackSpec => $crate::alert::notify::slack::Slack),
            teams: Teams($crate::alert::notify::teams::TeamsSpec => $crate::alert::notify::teams::Teams),
            email: Email($crate::alert::notify::email::EmailSpec => $crate::alert::notify::email::Email),
        }
    };
}
pub(crate) use with_channels;

macro_rules! channel_enum {
    ($($block:ident: $variant:ident($spec:ty => $compiled:ty),)*) => {
        /// Every channel, compiled from its block.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Channel {
            $($variant($compiled),)*
        }

        impl Channel {
            /// The sender; HTTP channels share `http`.
            pub fn notifier(
                &self,
                http: &reqwest::Client,
            ) -> Result<Arc<dyn Notifier>, DeliveryError> {
                match self {
                    $(Channel::$variant(c) => c.notifier(http),)*
                }
            }
        }

        /// The channel blocks a receiver may have, in the documented order.
        pub const CHANNEL_BLOCKS: &[&str] = &[$(stringify!($block)),*];
    };
}
with_channels!(channel_enum);

/// A compiled channel builds its sender.
pub trait ChannelSender {
    /// The sender for this channel; HTTP channels share `http`.
    fn notifier(&self, http: &reqwest::Client) -> Result<Arc<dyn Notifier>, DeliveryError>;
}

/// Where a channel block is checked: problems go to `v`, at `at` (the
/// receiver) unless the block knows a closer place; files are relative to
/// `base`.
pub struct CompileContext<'a> {
    pub v: &'a mut Validator,
    pub receiver: &'a str,
    pub at: Location,
    pub base: &'a Path,
}

/// A channel block as written under a receiver.
pub trait ChannelSpec {
    /// Check the block and compile it; `None` when a problem was reported.
    fn compile(&self, cx: &mut CompileContext<'_>) -> Option<Channel>;
}

/// A URL given inline (`url: ${SLACK_WEBHOOK}`) or in a file
/// (`url_file: /run/secrets/slack`), since the URL itself is the secret:
/// the block of Slack and Teams, and part of the webhook's.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UrlSpec {
    pub url: Option<InlineSecret>,
    pub url_file: Option<Spanned<String>>,
    /// Follow a 307/308 within the URL's origin (never to another one).
    #[serde(default)]
    pub follow_redirects: bool,
}

impl UrlSpec {
    /// The URL, read from its file if need be and checked to be http(s).
    pub fn resolve(&self, what: &str, cx: &mut CompileContext<'_>) -> Option<Secret> {
        resolve_url(&self.url, &self.url_file, what, cx)
    }
}

pub(crate) fn resolve_url(
    url: &Option<InlineSecret>,
    file: &Option<Spanned<String>>,
    what: &str,
    cx: &mut CompileContext<'_>,
) -> Option<Secret> {
    let name = cx.receiver;
    let inline = url.as_ref().map(|s| s.0.expose().to_string());
    let resolved = expand::secret("url", inline, file.as_ref(), cx.base, cx.v);
    match &resolved {
        None if url.is_none() && file.is_none() => cx.v.error(
            cx.at,
            format!("receiver '{name}': {what} has no url"),
            Some("set url: ${WEBHOOK_URL} or url_file: /run/secrets/webhook-url".into()),
        ),
        Some(u) if !url_ok(u.expose()) => {
            cx.v.error(
                file.as_ref().map(|f| f.referenced).unwrap_or(cx.at),
                // The URL is a secret: say what is wrong without it.
                format!("receiver '{name}': {what} url is not an http(s) URL"),
                Some("the url must start with https:// (or http://)".into()),
            );
            return None;
        }
        _ => {}
    }
    resolved
}

/// What one message to a receiver carries: the notifications of one group
/// that became due together, in queue order (a resolution after its
/// firing). Channels render a lone notification exactly as before
/// grouping, and a group as one message listing its alerts.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub receiver: String,
    /// The group's labels as `{category="portal",supplier="acme"}`.
    pub group_key: String,
    pub group_labels: BTreeMap<String, String>,
    /// The same for every attempt at this message: the notification's own
    /// key when it is alone, else one derived from the group and every
    /// notification's key.
    pub idempotency_key: String,
    pub notifications: Vec<Notification>,
}

/// At most this many alerts are listed in a chat or e-mail message; the
/// rest are counted (a Slack message holds 40,000 characters, a Teams
/// card about 28 KB).
pub const LISTED: usize = 50;

impl Message {
    pub fn new(
        receiver: &str,
        group_key: String,
        group_labels: BTreeMap<String, String>,
        notifications: Vec<Notification>,
    ) -> Message {
        let idempotency_key = match notifications.as_slice() {
            [one] => one.idempotency_key.clone(),
            many => {
                let mut keys: Vec<&str> = many.iter().map(|n| n.idempotency_key.as_str()).collect();
                keys.sort_unstable();
                let mut h = Sha256::new();
                h.update(group_key.as_bytes());
                for k in keys {
                    h.update([0]);
                    h.update(k.as_bytes());
                }
                let digest = h.finalize();
                let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
                format!("group-{hex}:{}", status_of(many).as_str())
            }
        };
        Message {
            receiver: receiver.to_string(),
            group_key,
            group_labels,
            idempotency_key,
            notifications,
        }
    }

    /// The notification when the message carries just one.
    pub fn single(&self) -> Option<&Notification> {
        match self.notifications.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }

    /// Firing while any of its alerts fires, as in Alertmanager.
    pub fn status(&self) -> Status {
        status_of(&self.notifications)
    }

    pub fn count(&self, status: Status) -> usize {
        self.notifications
            .iter()
            .filter(|n| n.status == status)
            .count()
    }

    /// One line for the subject or title:
    /// `[FIRING:12] ServiceDown (page): category=portal, supplier=acme`.
    pub fn title(&self) -> String {
        let first = &self.notifications[0];
        let mut names: Vec<&str> = self.notifications.iter().map(|n| n.alertname()).collect();
        names.sort_unstable();
        names.dedup();
        let labels: Vec<String> = self
            .group_labels
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let scope = if labels.is_empty() {
            String::new()
        } else {
            format!(": {}", labels.join(", "))
        };
        format!(
            "[{}:{}] {} ({}){scope}",
            self.status().as_str().to_uppercase(),
            self.count(self.status()),
            names.join(", "),
            first.label("severity"),
        )
    }

    /// One line per alert, firing ones first, at most [`LISTED`]; the
    /// second value counts the lines left out.
    pub fn lines(&self) -> (Vec<String>, usize) {
        let mut ordered: Vec<&Notification> = self.notifications.iter().collect();
        ordered.sort_by_key(|n| n.status != Status::Firing);
        let lines = ordered
            .iter()
            .take(LISTED)
            .map(|n| {
                let summary = n
                    .annotation("summary")
                    .map(str::to_string)
                    .unwrap_or_else(|| n.alertname().to_string());
                format!("{}: {summary}", n.status.as_str().to_uppercase())
            })
            .collect();
        (lines, ordered.len().saturating_sub(LISTED))
    }

    /// The alert lines as one text: each through `item`, joined by line
    /// breaks, then `more(n)` when `n` were left out.
    pub fn listing(&self, item: impl Fn(&str) -> String, more: impl Fn(usize) -> String) -> String {
        let (lines, left_out) = self.lines();
        let mut text = lines.iter().map(|l| item(l)).collect::<Vec<_>>().join("\n");
        if left_out > 0 {
            text.push_str(&more(left_out));
        }
        text
    }
}

fn status_of(notifications: &[Notification]) -> Status {
    if notifications.iter().any(|n| n.status == Status::Firing) {
        Status::Firing
    } else {
        Status::Resolved
    }
}

/// The HTTP client every HTTP channel shares: rustls on ring with the
/// public web PKI roots, a timeout, and no proxy surprises.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, DeliveryError> {
    static ROOTS: OnceLock<Arc<rustls::RootCertStore>> = OnceLock::new();
    let roots = ROOTS
        .get_or_init(|| {
            Arc::new(rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            })
        })
        .clone();
    let tls = rustls::ClientConfig::builder_with_provider(crate::probe::tls_util::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| DeliveryError::Build(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        // Redirects are followed by `post_json` itself, only when the
        // receiver says so and only within its origin; reqwest's would
        // forward custom secret headers and the payload, and add a Referer
        // holding the secret webhook URL, to wherever a redirect points.
        .redirect(reqwest::redirect::Policy::none())
        .referer(false)
        .user_agent(concat!("continuity/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| DeliveryError::Build(DeliveryError::from_reqwest(e).to_string()))
}

/// A chat message (Slack, Teams): the rendered body POSTed to the secret
/// URL, without extra headers.
pub(crate) fn post_chat<'a>(
    http: &'a reqwest::Client,
    url: &'a crate::config::Secret,
    body: serde_json::Value,
    follow_redirects: bool,
) -> BoxFuture<'a, Result<(), DeliveryError>> {
    Box::pin(async move { post_json(http, url.expose(), &body, &[], follow_redirects).await })
}

/// Most redirects a receiver that follows them goes through.
const MAX_REDIRECTS: usize = 3;

/// POST a JSON body; 2xx is success, anything else an error with the
/// start of the response body (what Slack and Teams explain errors with).
/// With `follow_redirects`, a 307 or 308 within the URL's origin is
/// followed (the same POST again); a redirect is otherwise an error that
/// says so, and nothing is ever sent to another origin.
pub(crate) async fn post_json(
    http: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
    headers: &[(String, String)],
    follow_redirects: bool,
) -> Result<(), DeliveryError> {
    let mut target = reqwest::Url::parse(url).map_err(|e| DeliveryError::Build(e.to_string()))?;
    let origin = target.origin();
    let mut hops = 0;
    let resp = loop {
        let mut req = http.post(target.clone()).json(body);
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let resp = req.send().await.map_err(DeliveryError::from_reqwest)?;
        let status = resp.status();
        if !status.is_redirection() {
            break resp;
        }
        let next = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| target.join(l).ok());
        let refused = match &next {
            _ if !follow_redirects => {
                "not followed: set follow_redirects: true on the receiver, or better, set its url to the new address"
            }
            None => "without a usable Location header",
            Some(n) if n.origin() != origin => {
                "to another origin, not followed: secret headers and the payload stay with the configured host; set the url to the new address"
            }
            Some(_) if !matches!(status.as_u16(), 307 | 308) => {
                "not followed: only 307 and 308 repeat a POST; set the url to the new address"
            }
            Some(_) if hops >= MAX_REDIRECTS => "more than 3 times",
            Some(_) => "",
        };
        match next {
            Some(n) if refused.is_empty() => {
                hops += 1;
                target = n;
            }
            _ => {
                return Err(DeliveryError::Status {
                    status: status.as_u16(),
                    body: format!("redirected {refused}"),
                });
            }
        }
    };
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let text = resp.text().await.unwrap_or_default();
    let body: String = text.chars().take(300).collect();
    Err(DeliveryError::Status {
        status: status.as_u16(),
        body: body.trim().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_names_status_alert_and_severity() {
        let mut labels = BTreeMap::new();
        labels.insert("alertname".to_string(), "ServiceDown".to_string());
        labels.insert("severity".to_string(), "page".to_string());
        let mut annotations = BTreeMap::new();
        annotations.insert("summary".to_string(), "Portal is down".to_string());
        let a = Alert {
            labels,
            annotations,
            starts_at: Timestamp::from_second(1_800_000_000).unwrap(),
            generator_url: None,
        };
        let n = Notification::new(Status::Firing, "x-1", "r", &a, None, None);
        assert_eq!(n.title(), "[FIRING] ServiceDown (page): Portal is down");
        assert_eq!(n.idempotency_key, "x-1:firing");
    }

    fn portal_down(service: &str, status: Status) -> Notification {
        let mut labels = BTreeMap::new();
        labels.insert("alertname".to_string(), "ServiceDown".to_string());
        labels.insert("severity".to_string(), "page".to_string());
        labels.insert("service".to_string(), service.to_string());
        let a = Alert {
            labels,
            annotations: BTreeMap::new(),
            starts_at: Timestamp::from_second(1_800_000_000).unwrap(),
            generator_url: None,
        };
        Notification::new(status, &format!("{service}-1"), "r", &a, None, None)
    }

    #[test]
    fn a_lone_notification_keeps_its_own_idempotency_key() {
        let n = portal_down("a", Status::Firing);
        let m = Message::new("r", "{}".into(), BTreeMap::new(), vec![n.clone()]);
        assert_eq!(m.idempotency_key, n.idempotency_key);
    }

    #[test]
    fn a_group_key_depends_on_every_notification_but_not_their_order() {
        let (a, b) = (
            portal_down("a", Status::Firing),
            portal_down("b", Status::Resolved),
        );
        let key = |ns: Vec<Notification>| {
            Message::new("r", "{}".into(), BTreeMap::new(), ns).idempotency_key
        };
        assert_eq!(
            key(vec![a.clone(), b.clone()]),
            key(vec![b.clone(), a.clone()])
        );
        assert_ne!(key(vec![a.clone(), b.clone()]), key(vec![a.clone()]));
        let m = Message::new("r", "{}".into(), BTreeMap::new(), vec![a, b]);
        assert_eq!(m.status(), Status::Firing);
        assert_eq!(m.title(), "[FIRING:1] ServiceDown (page)");
    }
}
