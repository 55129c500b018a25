//! Microsoft Teams through a Workflows ("Post to a channel when a webhook
//! request is received") webhook: a message with one Adaptive Card 1.4,
//! the format those workflows expect (the old O365 connector cards are
//! retired). A group is one card listing its alerts.

use std::sync::Arc;

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    Channel, ChannelSender, ChannelSpec, CompileContext, DeliveryError, Message, Notification,
    Notifier, Status, UrlSpec, post_chat,
};
use crate::config::Secret;

/// The `teams:` block of a receiver: `url` or `url_file`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct TeamsSpec(pub UrlSpec);

impl ChannelSpec for TeamsSpec {
    fn compile(&self, cx: &mut CompileContext<'_>) -> Option<Channel> {
        let url = self.0.resolve("teams", cx)?;
        Some(Channel::Teams(Teams {
            url,
            follow_redirects: self.0.follow_redirects,
        }))
    }
}

impl ChannelSender for Teams {
    fn notifier(&self, http: &reqwest::Client) -> Result<Arc<dyn Notifier>, DeliveryError> {
        Ok(Arc::new(TeamsNotifier::new(self, http.clone())))
    }
}

/// A checked Teams Workflows webhook.
#[derive(Debug, Clone, PartialEq)]
pub struct Teams {
    pub url: Secret,
    pub follow_redirects: bool,
}

pub struct TeamsNotifier {
    url: Secret,
    follow_redirects: bool,
    http: reqwest::Client,
}

impl TeamsNotifier {
    pub fn new(spec: &Teams, http: reqwest::Client) -> TeamsNotifier {
        TeamsNotifier {
            url: spec.url.clone(),
            follow_redirects: spec.follow_redirects,
            http,
        }
    }
}

/// Adaptive Card colour names: `attention` is red, `warning` orange.
fn colour(n: &Notification) -> &'static str {
    colour_of(n.status, n.label("severity"))
}

fn colour_of(status: Status, severity: &str) -> &'static str {
    match (status, severity) {
        (Status::Resolved, _) => "Good",
        (Status::Firing, "page") => "Attention",
        (Status::Firing, "ticket") => "Warning",
        (Status::Firing, _) => "Default",
    }
}

pub fn render(n: &Notification) -> Value {
    let facts: Vec<Value> = n
        .facts()
        .into_iter()
        .map(|(title, value)| json!({"title": title, "value": value}))
        .collect();
    let actions: Vec<Value> = n
        .links()
        .into_iter()
        .map(|(title, url)| json!({"type": "Action.OpenUrl", "title": title, "url": url}))
        .collect();
    let mut body = vec![
        json!({
            "type": "TextBlock",
            "text": n.title(),
            "weight": "Bolder",
            "size": "Medium",
            "color": colour(n),
            "wrap": true,
        }),
        json!({"type": "TextBlock", "text": n.body(), "wrap": true}),
        json!({"type": "FactSet", "facts": facts}),
    ];
    body.push(json!({
        "type": "TextBlock",
        "text": format!("continuity · {} · {}", n.label("location"), n.idempotency_key),
        "isSubtle": true,
        "size": "Small",
        "wrap": true,
    }));
    let mut card = card(body);
    if !actions.is_empty() {
        card["actions"] = Value::Array(actions);
    }
    envelope(card)
}

fn card(body: Vec<Value>) -> Value {
    json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "msteams": {"width": "Full"},
        "body": body,
    })
}

fn envelope(card: Value) -> Value {
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    })
}

/// The body for a message: a lone notification as [`render`] has it, a
/// group as one card listing its alerts.
pub fn render_message(m: &Message) -> Value {
    if let Some(n) = m.single() {
        return render(n);
    }
    let text = m.listing(|l| format!("- {l}"), |n| format!("\n\n… and {n} more"));
    let first = &m.notifications[0];
    envelope(card(vec![
        json!({
            "type": "TextBlock",
            "text": m.title(),
            "weight": "Bolder",
            "size": "Medium",
            "color": colour_of(m.status(), first.label("severity")),
            "wrap": true,
        }),
        json!({"type": "TextBlock", "text": text, "wrap": true}),
        json!({
            "type": "TextBlock",
            "text": format!("continuity · {} · {}", first.label("location"), m.idempotency_key),
            "isSubtle": true,
            "size": "Small",
            "wrap": true,
        }),
    ]))
}

impl Notifier for TeamsNotifier {
    fn send<'a>(&'a self, m: &'a Message) -> BoxFuture<'a, Result<(), DeliveryError>> {
        post_chat(
            &self.http,
            &self.url,
            render_message(m),
            self.follow_redirects,
        )
    }
}
