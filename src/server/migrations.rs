//! `GET /api/v1/migrations`: every service with its phase, supplier, next
//! cutover, hypercare left and cutover verification, the same JSON as
//! `continuity migration status --format json`.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jiff::Timestamp;
use serde_json::json;

use super::AppState;
use super::api::error;
use crate::migration::migration_status;

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new().route("/api/v1/migrations", get(migrations))
}

async fn migrations(State(s): State<AppState>) -> Response {
    let config = s.config.read().expect("config lock").clone();
    let store = s.store.clone();
    let now = Timestamp::now();
    let verifications =
        tokio::task::spawn_blocking(move || store.cutover_verifications(None)).await;
    match verifications {
        Ok(Ok(v)) => Json(json!({
            "generated_at": now,
            "migrations": migration_status(&config, &v, now),
        }))
        .into_response(),
        Ok(Err(e)) => error(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("store: {e}"),
        ),
        Err(e) => error(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("store task: {e}"),
        ),
    }
}
