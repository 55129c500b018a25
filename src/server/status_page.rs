//! The public status page's routes: `/` and `/status` (HTML), `/feed.atom`
//! and `/badge/<service>.svg`, each in Dutch or, with `?lang=en`, English.
//! Rendering runs on a blocking thread ([`crate::status_page`]), so a page
//! of 1,000 services never shows up as scheduling lag. With
//! `status_page.enabled: false` every one of them answers 404.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::AppState;
use crate::report::locale::Lang;
use crate::status_page::{StatusPage, StatusPageError};

/// Scripts can never run on the page, even if a text slipped through
/// escaping; the logo may come from anywhere the configuration says.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: http: data:; base-uri 'none'; form-action 'none'";

/// The routes, with the page's own state; merged into the daemon's router.
pub fn routes(state: &AppState) -> Router<AppState> {
    let page = Arc::new(StatusPage::new(
        state.config.clone(),
        state.status.clone(),
        state.store.clone(),
        state.clock.clone(),
    ));
    Router::new()
        .route("/", get(html))
        .route("/status", get(html))
        .route("/feed.atom", get(atom))
        .route("/badge/{file}", get(badge))
        .with_state(page)
}

#[derive(Deserialize)]
struct LangQuery {
    lang: Option<String>,
}

/// Why a request gets no page.
enum Refusal {
    /// `status_page.enabled: false`.
    Disabled,
    /// `?lang=` names a language we do not write.
    Language(String),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Disabled => (
                StatusCode::NOT_FOUND,
                "the status page is turned off (status_page.enabled: false)\n",
            )
                .into_response(),
            Refusal::Language(e) => (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
        }
    }
}

/// Whether the page is on, and in which language to answer: the one asked
/// for, or the configured one. Also gives how long the answer may be
/// cached.
fn serving(page: &StatusPage, q: &LangQuery) -> Result<(Lang, u64), Refusal> {
    let config = page.config();
    if !config.status_page.enabled {
        return Err(Refusal::Disabled);
    }
    let max_age = config.status_page.refresh.as_secs();
    match q.lang.as_deref() {
        None | Some("") => Ok((config.status_page.language, max_age)),
        Some(l) => l
            .parse::<Lang>()
            .map(|lang| (lang, max_age))
            .map_err(|e| Refusal::Language(e.to_string())),
    }
}

/// Runs `render` on a blocking thread with the time of the request.
async fn rendered<T: Send + 'static>(
    page: &Arc<StatusPage>,
    render: impl FnOnce(&StatusPage, jiff::Timestamp) -> Result<T, StatusPageError> + Send + 'static,
) -> Result<T, Response> {
    let page = page.clone();
    let now = page.now();
    match tokio::task::spawn_blocking(move || render(&page, now)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "status page not rendered");
            Err((
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the status page could not be made: {e}\n"),
            )
                .into_response())
        }
        Err(e) => Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the status page could not be made: {e}\n"),
        )
            .into_response()),
    }
}

fn respond(body: String, content_type: &'static str, lang: Lang, max_age: u64) -> Response {
    let mut r = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_LANGUAGE,
        HeaderValue::from_static(lang.tag()),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        h.insert(header::CACHE_CONTROL, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

async fn html(State(page): State<Arc<StatusPage>>, Query(q): Query<LangQuery>) -> Response {
    let (lang, _) = match serving(&page, &q) {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    match rendered(&page, move |p, now| p.page(lang, now)).await {
        Ok(body) => {
            // The page reloads itself; a cache would only show it older.
            let mut r = respond(body, "text/html; charset=utf-8", lang, 0);
            r.headers_mut().insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            );
            r
        }
        Err(r) => r,
    }
}

async fn atom(State(page): State<Arc<StatusPage>>, Query(q): Query<LangQuery>) -> Response {
    let (lang, max_age) = match serving(&page, &q) {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    match rendered(&page, move |p, now| p.feed(lang, now)).await {
        Ok(body) => respond(body, "application/atom+xml; charset=utf-8", lang, max_age),
        Err(r) => r,
    }
}

async fn badge(
    State(page): State<Arc<StatusPage>>,
    Path(file): Path<String>,
    Query(q): Query<LangQuery>,
) -> Response {
    let (lang, max_age) = match serving(&page, &q) {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let svg = "image/svg+xml; charset=utf-8";
    let unknown = || {
        let mut r = respond(crate::status_page::badge::unknown(lang), svg, lang, 0);
        *r.status_mut() = StatusCode::NOT_FOUND;
        r
    };
    let Some(service) = file.strip_suffix(".svg").map(str::to_string) else {
        return unknown();
    };
    match rendered(&page, move |p, _| p.badge(&service, lang)).await {
        Ok(Some(body)) => respond(body, svg, lang, max_age),
        Ok(None) => unknown(),
        Err(r) => r,
    }
}
