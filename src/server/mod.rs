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

use crate::config::Config;
use crate::engine::SharedStatus;
use crate::store::Store;

pub mod api;
pub mod auth;
pub mod conn;
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
    /// Tells the engine that ad-hoc maintenance windows changed.
    pub maintenance_changed: mpsc::Sender<()>,
    /// Whether the store takes writes; `/readyz` fails while it does not.
    pub store_health: crate::store::writer::StoreHealth,
    /// Rate limit of `POST /-/reload`.
    pub reload_gate: Arc<std::sync::Mutex<ReloadGate>>,
    /// The daemon's clock: what "now" means for the API.
    pub clock: crate::clock::Clock,
}

impl AppState {
    /// The configuration running now (the API token rotates with it).
    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

pub fn router(state: AppState) -> Router {
    // The read endpoints take `server.read_auth` when it is set; health,
    // readiness and reload have their own rules.
    let guarded = read_routes().route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        auth::read_guard,
    ));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/-/reload", post(reload))
        .merge(guarded)
        // The status page, its feed and badges are public by design.
        .merge(status_page::routes(&state))
        .with_state(state)
}

/// `/metrics` and `/api/*`.
fn read_routes() -> Router<AppState> {
    Router::new()
        .route("/metrics", get(metrics))
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
        // The management reports are internal: behind read_auth too.
        .merge(reports::routes())
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
    if !s.ready.load(Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response();
    }
    match s.store_health.failing() {
        None => (StatusCode::OK, "ready\n").into_response(),
        Some(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("store failing, results are kept in memory and retried: {e}\n"),
        )
            .into_response(),
    }
}

/// Reloads through the endpoint: a burst of [`ReloadGate::BURST`], then
/// one per [`ReloadGate::EVERY`], so that a loop of calls cannot keep the
/// daemon reloading (SIGHUP, which only the host can send, is not limited).
#[derive(Debug)]
pub struct ReloadGate {
    tokens: f64,
    at: std::time::Instant,
}

impl Default for ReloadGate {
    fn default() -> Self {
        ReloadGate {
            tokens: ReloadGate::BURST,
            at: std::time::Instant::now(),
        }
    }
}

impl ReloadGate {
    const BURST: f64 = 3.0;
    const EVERY: std::time::Duration = std::time::Duration::from_secs(10);

    /// Take a reload now, or learn how many seconds to wait for one.
    fn take(&mut self, now: std::time::Instant) -> Result<(), u64> {
        let refilled = now.duration_since(self.at).as_secs_f64() / Self::EVERY.as_secs_f64();
        self.tokens = (self.tokens + refilled).min(Self::BURST);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - self.tokens) * Self::EVERY.as_secs_f64()).ceil() as u64)
        }
    }
}

async fn reload(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let config = s.config();
    if !config.server.limits.enable_reload_endpoint {
        return (
            StatusCode::FORBIDDEN,
            "POST /-/reload is off: set server.enable_reload_endpoint: true to allow it (SIGHUP always reloads)\n",
        )
            .into_response();
    }
    if let Some(token) = &config.server.api_token
        && let Err(e) = auth::bearer(&headers, token)
    {
        return (StatusCode::UNAUTHORIZED, format!("{e}\n")).into_response();
    }
    let gate = s
        .reload_gate
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take(std::time::Instant::now());
    if let Err(wait) = gate {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, wait.to_string())],
            format!("too many reloads through /-/reload; try again in {wait}s\n"),
        )
            .into_response();
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn the_reload_endpoint_takes_a_burst_then_one_per_ten_seconds() {
        let t0 = Instant::now();
        let mut gate = ReloadGate {
            tokens: 3.0,
            at: t0,
        };
        for _ in 0..3 {
            assert_eq!(gate.take(t0), Ok(()));
        }
        assert_eq!(gate.take(t0), Err(10));
        assert_eq!(gate.take(t0 + Duration::from_secs(4)), Err(6));
        assert_eq!(gate.take(t0 + Duration::from_secs(10)), Ok(()));
        assert!(gate.take(t0 + Duration::from_secs(11)).is_err());
    }
}
