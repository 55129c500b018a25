//! Slack and Mattermost incoming webhooks: a `text` line for
//! notifications and clients that show only that, and one attachment with
//! colour, description, fields and links (both products render
//! attachments the same way, unlike Slack's blocks). A group is one
//! message whose attachment lists its alerts.

use std::sync::Arc;

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    Channel, ChannelSender, ChannelSpec, CompileContext, DeliveryError, Message, Notification,
    Notifier, Status, UrlSpec, post_chat,
};
use crate::config::Secret;

/// The `slack:` block of a receiver: `url` or `url_file`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct SlackSpec(pub UrlSpec);

/// A checked Slack (or Mattermost) incoming webhook.
#[derive(Debug, Clone, PartialEq)]
pub struct Slack {
    pub url: Secret,
    pub follow_redirects: bool,
}

impl ChannelSpec for SlackSpec {
    fn compile(&self, cx: &mut CompileContext<'_>) -> Option<Channel> {
        let url = self.0.resolve("slack", cx)?;
        Some(Channel::Slack(Slack {
            url,
            follow_redirects: self.0.follow_redirects,
        }))
    }
}

impl ChannelSender for Slack {
    fn notifier(&self, http: &reqwest::Client) -> Result<Arc<dyn Notifier>, DeliveryError> {
        Ok(Arc::new(SlackNotifier::new(self, http.clone())))
    }
}

pub struct SlackNotifier {
    url: Secret,
    follow_redirects: bool,
    http: reqwest::Client,
}

impl SlackNotifier {
    pub fn new(spec: &Slack, http: reqwest::Client) -> SlackNotifier {
        SlackNotifier {
            url: spec.url.clone(),
            follow_redirects: spec.follow_redirects,
            http,
        }
    }
}

/// Red for a page, orange for a ticket, grey for the rest, green when
/// resolved.
fn colour(n: &Notification) -> &'static str {
    colour_of(n.status, n.label("severity"))
}

fn colour_of(status: Status, severity: &str) -> &'static str {
    match (status, severity) {
        (Status::Resolved, _) => "#2eb886",
        (Status::Firing, "page") => "#d00000",
        (Status::Firing, "ticket") => "#f2a900",
        (Status::Firing, _) => "#808080",
    }
}

/// Slack's mrkdwn treats these three characters as markup.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn render(n: &Notification) -> Value {
    let fields: Vec<Value> = n
        .facts()
        .into_iter()
        .map(|(title, value)| json!({"title": title, "value": escape(&value), "short": true}))
        .collect();
    let links: Vec<String> = n
        .links()
        .into_iter()
        .map(|(name, url)| format!("<{url}|{name}>"))
        .collect();
    let mut text = escape(&n.body());
    if !links.is_empty() {
        text.push('\n');
        text.push_str(&links.join(" · "));
    }
    let mut attachment = json!({
        "fallback": escape(&n.title()),
        "color": colour(n),
        "title": escape(&n.title()),
        "text": text,
        "fields": fields,
        "footer": format!("continuity · {}", n.label("location")),
        "ts": n.ends_at.unwrap_or(n.starts_at).as_second(),
    });
    if let Some((_, url)) = n.links().into_iter().find(|(name, _)| *name == "Status") {
        attachment["title_link"] = json!(url);
    }
    json!({
        "text": escape(&n.title()),
        "attachments": [attachment],
    })
}

/// The body for a message: a lone notification as [`render`] has it, a
/// group as one attachment listing its alerts.
pub fn render_message(m: &Message) -> Value {
    if let Some(n) = m.single() {
        return render(n);
    }
    let text = m.listing(
        |l| format!("• {}", escape(l)),
        |n| format!("\n… and {n} more"),
    );
    let first = &m.notifications[0];
    json!({
        "text": escape(&m.title()),
        "attachments": [{
            "fallback": escape(&m.title()),
            "color": colour_of(m.status(), first.label("severity")),
            "title": escape(&m.title()),
            "text": text,
            "footer": format!("continuity · {} · {}", first.label("location"), m.idempotency_key),
        }],
    })
}

impl Notifier for SlackNotifier {
    fn send<'a>(&'a self, m: &'a Message) -> BoxFuture<'a, Result<(), DeliveryError>> {
        post_chat(
            &self.http,
            &self.url,
            render_message(m),
            self.follow_redirects,
        )
    }
}
