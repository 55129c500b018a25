//! `GET /api/v1/migrations`: every service with its phase, supplier, next
//! cutover, hypercare left and cutover verification, the same JSON as
//! `continuity migration status --format json`; and
//! `GET /api/v1/migrations/{service}/compare`, the before/after verdict.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::AppState;
use super::api::error;
use crate::migration::migration_status;

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/api/v1/migrations", get(migrations))
        .route("/api/v1/migrations/{service}/compare", get(compare))
}

/// `GET /api/v1/migrations/{service}/compare`: the before/after
/// comparison, as `continuity migration compare --format json`.
async fn compare(State(s): State<AppState>, Path(service): Path<String>) -> Response {
    use crate::migration::compare::{CompareError, compare};
    let config = s.config.read().expect("config lock").clone();
    let store = s.store.clone();
    let now = s.clock.now();
    let result =
        tokio::task::spawn_blocking(move || compare(&config, store.as_ref(), &service, now)).await;
    match result {
        Ok(Ok(c)) => Json(c).into_response(),
        Ok(Err(e @ CompareError::UnknownService { .. })) => {
            error(StatusCode::NOT_FOUND, e.to_string())
        }
        Ok(Err(e @ CompareError::NotCutOver(_))) => error(StatusCode::CONFLICT, e.to_string()),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("compare task: {e}"),
        ),
    }
}

async fn migrations(State(s): State<AppState>) -> Response {
    let config = s.config.read().expect("config lock").clone();
    let store = s.store.clone();
    let now = s.clock.now();
    let verifications =
        tokio::task::spawn_blocking(move || store.cutover_verifications(None)).await;
    match verifications {
        Ok(Ok(v)) => Json(json!({
            "generated_at": now,
            "migrations": migration_status(&config, &v, now),
        }))
        .into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("store: {e}")),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("store task: {e}"),
        ),
    }
}
