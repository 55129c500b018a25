//! Slack and Mattermost incoming webhooks: a `text` line for
//! notifications and clients that show only that, and one attachment with
//! colour, description, fields and links (both products render
//! attachments the same way, unlike Slack's blocks).

use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::{DeliveryError, Notification, Notifier, Status, post_json};
use crate::config::Secret;

pub struct SlackNotifier {
    url: Secret,
    http: reqwest::Client,
}

impl SlackNotifier {
    pub fn new(url: Secret, http: reqwest::Client) -> SlackNotifier {
        SlackNotifier { url, http }
    }
}

/// Red for a page, orange for a ticket, grey for the rest, green when
/// resolved.
fn colour(n: &Notification) -> &'static str {
    match (n.status, n.label("severity")) {
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

impl Notifier for SlackNotifier {
    fn send<'a>(&'a self, n: &'a Notification) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move { post_json(&self.http, self.url.expose(), &render(n), &[]).await })
    }
}
