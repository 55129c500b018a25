//! Our own HTTP endpoints: `/metrics` for Prometheus, health and readiness
//! probes, `/-/reload`, and the JSON API that reads the status and store.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{mpsc, oneshot};

use crate::config::{Config, Secret};
use crate::engine::SharedStatus;
use crate::store::Store;

pub mod api;
pub mod migrations;
pub mod reports;
pub mod status_page;
use crate::telemetry::{Format, OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE, Telemetry};

/// A reload request; the answer says whether the new configuration took.
pub type ReloadRequest = oneshot::Sender<Result<(), String>>;

#[derive(Clone)]
pub struct AppState {
    pub telemetry: Arc<Telemetry>,
    pub status: SharedStatus,
    pub reload: mpsc::Sender<ReloadRequest>,
    pub ready: Arc<AtomicBool>,
    pub store: Arc<dyn Store>,
    /// The running configuration (swapped on reload).
    pub config: Arc<std::sync::RwLock<Arc<Config>>>,
    pub api_token: Option<Secret>,
    /// Tells the engine that ad-hoc maintenance windows changed.
    pub maintenance_changed: mpsc::Sender<()>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/-/reload", post(reload))
        .route("/api/v1/status", get(status))
        .route("/api/v1/incidents", get(api::incidents))
        .route("/api/v1/sla", get(api::sla))
        .route(
            "/api/v1/maintenances",
            get(api::list_maintenances).post(api::create_maintenance),
        )
        .route(
            "/api/v1/maintenances/{id}",
            axum::routing::delete(api::delete_maintenance),
        )
        .merge(migrations::routes())
        .merge(reports::routes())
        .merge(status_page::routes(&state))
        .with_state(state)
}

async fn metrics(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    let format = if openmetrics {
        Format::OpenMetrics
    } else {
        Format::Text
    };
    // Streamed in chunks: with 10,000 checks the exposition is tens of
    // megabytes, and holding it whole would double the daemon's memory.
    // Rendering runs off the threads that run probes, so a scrape never
    // shows up as scheduling lag.
    let telemetry = s.telemetry.clone();
    let (tx, rx) = mpsc::channel::<std::io::Result<bytes::Bytes>>(2);
    tokio::task::spawn_blocking(move || {
        let rendered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            telemetry.render_chunks(format, 64 * 1024, &mut |chunk| {
                tx.blocking_send(Ok(chunk.into())).is_ok()
            })
        }));
        if rendered.is_err() {
            // Break the response off, so that the scraper records a failed
            // scrape instead of taking half the series for all of them.
            let _ = tx.blocking_send(Err(std::io::Error::other("rendering metrics failed")));
        }
    });
    let body = axum::body::Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    }));
    let ct = if openmetrics {
        OPENMETRICS_CONTENT_TYPE
    } else {
        TEXT_CONTENT_TYPE
    };
    ([(header::CONTENT_TYPE, ct)], body).into_response()
}

async fn readyz(State(s): State<AppState>) -> Response {
    if s.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response()
    }
}

async fn reload(State(s): State<AppState>) -> Response {
    let (tx, rx) = oneshot::channel();
    if s.reload.send(tx).await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    match rx.await {
        Ok(Ok(())) => (StatusCode::OK, "configuration reloaded\n").into_response(),
        Ok(Err(e)) => (
            StatusCode::BAD_REQUEST,
            format!("configuration rejected, still running the previous one:\n{e}\n"),
        )
            .into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response(),
    }
}

async fn status(State(s): State<AppState>) -> Response {
    // Serialized in place: a copy of the board of 10,000 services would be
    // megabytes for every request.
    let body = {
        let board = s.status.read().expect("status lock");
        serde_json::to_vec(&*board)
    };
    match body {
        Ok(b) => ([(header::CONTENT_TYPE, "application/json")], b).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot render the status: {e}\n"),
        )
            .into_response(),
    }
}
