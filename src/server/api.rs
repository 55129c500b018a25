//! The JSON API that reads the store: incidents, SLA figures, and the
//! maintenance windows people add at run time (guarded by a bearer token).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use crate::config::schedule::{MaintenanceScope, MaintenanceTime};
use crate::config::{KnownNames, MaintenanceSpec, Validator};
use crate::store::{MaintenanceRecord, MaintenanceStore};

pub(super) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// An API error: its status and a sentence saying what to do.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error(self.0, self.1)
    }
}

use crate::import::parse_time;

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("store: {e}"),
        )),
        Err(e) => Err(ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("store task: {e}"),
        )),
    }
}

#[derive(Deserialize)]
pub struct IncidentQuery {
    service: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// `GET /api/v1/incidents?service=&from=&to=` (default: the last 7 days).
pub async fn incidents(State(s): State<AppState>, Query(q): Query<IncidentQuery>) -> Response {
    let now = s.clock.now();
    let from = match parse_time(q.from.as_deref().unwrap_or("-7d"), now) {
        Ok(t) => t,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("from: {e}")),
    };
    let to = match parse_time(q.to.as_deref().unwrap_or("now"), now) {
        Ok(t) => t,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("to: {e}")),
    };
    if from >= to {
        return error(StatusCode::BAD_REQUEST, "from must be before to");
    }
    let store = s.store.clone();
    let service = q.service.clone();
    match blocking(move || store.incidents(service.as_deref(), from, to)).await {
        Ok(list) => {
            let items: Vec<_> = list
                .into_iter()
                .map(|i| {
                    let end = i.ended_at.unwrap_or(now);
                    json!({
                        "service": i.service,
                        "start": i.started_at,
                        "end": i.ended_at,
                        "ongoing": i.ended_at.is_none(),
                        "duration_seconds": (end.as_millisecond() - i.started_at.as_millisecond()) as f64 / 1000.0,
                        "cause": i.cause,
                    })
                })
                .collect();
            Json(json!({ "from": from, "to": to, "incidents": items })).into_response()
        }
        Err(r) => r.into_response(),
    }
}

fn authorized(s: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    // Read from the running configuration, so that a rotated token takes
    // effect with the reload that brings it.
    let config = s.config();
    let Some(token) = &config.server.api_token else {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "maintenance API disabled: set server.api_token (or api_token_file) in the configuration".into(),
        ));
    };
    super::auth::bearer(headers, token)
        .map_err(|e| ApiError(StatusCode::UNAUTHORIZED, e.to_string()))
}

/// The request body, read only once the caller is known, no larger than
/// `server.max_request_body_bytes` and within `server.body_read_timeout`.
async fn read_body(s: &AppState, body: axum::body::Body) -> Result<axum::body::Bytes, ApiError> {
    let limits = s.config().server.limits;
    let too_large = || {
        ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the body is larger than server.max_request_body_bytes ({} bytes)",
                limits.max_request_body_bytes
            ),
        )
    };
    // A Content-Length over the limit is refused before a byte is read.
    if axum::body::HttpBody::size_hint(&body).lower() > limits.max_request_body_bytes as u64 {
        return Err(too_large());
    }
    match tokio::time::timeout(
        limits.body_read_timeout,
        axum::body::to_bytes(body, limits.max_request_body_bytes),
    )
    .await
    {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(_)) => Err(too_large()),
        Err(_) => Err(ApiError(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the body did not arrive within server.body_read_timeout ({})",
                crate::config::Dur(limits.body_read_timeout)
            ),
        )),
    }
}

/// Every ad-hoc window not deleted, as specs for the engine.
pub fn load_adhoc(
    store: &dyn MaintenanceStore,
) -> Result<Vec<MaintenanceSpec>, crate::store::StoreError> {
    let all = store.maintenances(Timestamp::MIN, Timestamp::MAX, false)?;
    Ok(all.iter().map(crate::report::sla::adhoc_spec).collect())
}

fn record_json(m: &MaintenanceRecord) -> serde_json::Value {
    json!({
        "id": m.id,
        "reference": m.reference,
        "description": m.description,
        "effect": m.effect,
        "scope": { "kind": m.scope_kind, "value": m.scope_value },
        "start": m.start,
        "end": m.end,
        "created_at": m.created_at,
        "created_by": m.created_by,
    })
}

#[derive(Deserialize)]
pub struct MaintenanceQuery {
    from: Option<String>,
    to: Option<String>,
}

/// `GET /api/v1/maintenances?from=&to=`: windows added through the API
/// (and, for reference, those in the configuration).
pub async fn list_maintenances(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<MaintenanceQuery>,
) -> Response {
    if let Err(r) = authorized(&s, &headers) {
        return r.into_response();
    }
    let now = s.clock.now();
    let (from, to) = match (
        parse_time(q.from.as_deref().unwrap_or("-30d"), now),
        q.to.as_deref().map(|t| parse_time(t, now)).transpose(),
    ) {
        (Ok(f), Ok(t)) => (f, t.unwrap_or(Timestamp::MAX)),
        (Err(e), _) | (_, Err(e)) => return error(StatusCode::BAD_REQUEST, e),
    };
    let store = s.store.clone();
    match blocking(move || store.maintenances(from, to, false)).await {
        Ok(list) => {
            let config = s.config.read().expect("config lock").clone();
            let configured: Vec<_> = config
                .maintenances
                .iter()
                .map(|m| json!({ "reference": m.reference, "effect": m.effect, "scope": m.scope, "description": m.description }))
                .collect();
            Json(json!({
                "maintenances": list.iter().map(record_json).collect::<Vec<_>>(),
                "configured": configured,
            }))
            .into_response()
        }
        Err(r) => r.into_response(),
    }
}

/// `POST /api/v1/maintenances` with a JSON body using the same fields as
/// a one-off window in the configuration.
pub async fn create_maintenance(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    // Who asks comes before what they send: an unknown client's body is
    // never read.
    if let Err(r) = authorized(&s, &headers) {
        return r.into_response();
    }
    let body = match read_body(&s, body).await {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let mut spec: MaintenanceSpec = match serde_json::from_slice(&body) {
        Ok(m) => m,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "body: {e}; send e.g. {{\"reference\":\"CHG-1\",\"service\":\"citizen-portal\",\"start\":\"2026-12-01T22:00:00+01:00\",\"end\":\"2026-12-02T02:00:00+01:00\"}}"
                ),
            );
        }
    };
    if spec.recurring.is_some() {
        return error(
            StatusCode::BAD_REQUEST,
            "recurring windows belong in the configuration; the API takes one-off windows (start, end)",
        );
    }
    let config = s.config.read().expect("config lock").clone();
    let known = KnownNames {
        services: config
            .services
            .iter()
            .map(|x| x.id.as_str())
            .collect::<BTreeSet<_>>(),
        categories: config
            .services
            .iter()
            .map(|x| x.category.as_str())
            .collect(),
        suppliers: config
            .services
            .iter()
            .map(|x| x.supplier.as_str())
            .collect(),
    };
    let mut v = Validator::new(Arc::from("request"));
    spec.validate(&mut v, crate::config::Location::UNKNOWN, &known);
    if !v.is_ok() {
        let msgs: Vec<String> = v
            .issues
            .iter()
            .map(|i| match &i.hint {
                Some(h) => format!("{} ({h})", i.message),
                None => i.message.clone(),
            })
            .collect();
        return error(StatusCode::BAD_REQUEST, msgs.join("; "));
    }
    let (Some(scope), Some(MaintenanceTime::Once { start, end })) = (&spec.scope, &spec.time)
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "a window needs a scope, start and end",
        );
    };
    let (scope_kind, scope_value) = match scope {
        MaintenanceScope::Service(x) => ("service", x.clone()),
        MaintenanceScope::Category(x) => ("category", x.clone()),
        MaintenanceScope::Supplier(x) => ("supplier", x.clone()),
        MaintenanceScope::All => ("all", String::new()),
    };
    let created_by = headers
        .get("x-continuity-user")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("api")
        .to_string();
    let mut record = MaintenanceRecord {
        id: 0,
        reference: spec.reference.clone(),
        description: spec.description.clone(),
        effect: match spec.effect {
            crate::config::schedule::MaintenanceEffect::Exclude => "exclude".into(),
            crate::config::schedule::MaintenanceEffect::Mute => "mute".into(),
        },
        scope_kind: scope_kind.into(),
        scope_value,
        start: *start,
        end: *end,
        created_at: s.clock.now(),
        created_by,
        deleted: false,
    };
    let store = s.store.clone();
    let r2 = record.clone();
    match blocking(move || store.insert_maintenance(&r2)).await {
        Ok(id) => {
            record.id = id;
            let _ = s.maintenance_changed.try_send(());
            tracing::info!(id, reference = %record.reference, "maintenance window added through the API");
            (StatusCode::CREATED, Json(record_json(&record))).into_response()
        }
        Err(r) => r.into_response(),
    }
}

/// `DELETE /api/v1/maintenances/{id}`: the window ends its effect; the
/// record is kept for the audit trail.
pub async fn delete_maintenance(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    if let Err(r) = authorized(&s, &headers) {
        return r.into_response();
    }
    let store = s.store.clone();
    match blocking(move || store.delete_maintenance(id)).await {
        Ok(true) => {
            let _ = s.maintenance_changed.try_send(());
            tracing::info!(id, "maintenance window deleted through the API");
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(false) => error(StatusCode::NOT_FOUND, format!("no maintenance window {id}")),
        Err(r) => r.into_response(),
    }
}

#[derive(Deserialize)]
pub struct SlaQuery {
    period: Option<String>,
    service: Option<String>,
}

/// `GET /api/v1/sla?period=2026-W47&service=`: SLA figures from the store,
/// computed by the same code as `continuity sla` and the weekly report.
pub async fn sla(State(s): State<AppState>, Query(q): Query<SlaQuery>) -> Response {
    use crate::report::sla::{PeriodSelector, ReportError, sla_report};
    let config = s.config.read().expect("config lock").clone();
    let store = s.store.clone();
    let period = match q.period.as_deref() {
        None | Some("") | Some("current") => PeriodSelector::Current,
        Some(label) => PeriodSelector::Label(label.to_string()),
    };
    let now = s.clock.now();
    let rows = tokio::task::spawn_blocking(move || {
        sla_report(&config, store.as_ref(), period, q.service.as_deref(), now)
    })
    .await;
    match rows {
        Ok(Ok(rows)) => Json(json!({ "generated_at": now, "slas": rows })).into_response(),
        Ok(Err(e @ (ReportError::Period(_) | ReportError::UnknownService { .. }))) => {
            error(StatusCode::BAD_REQUEST, e.to_string())
        }
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("report task: {e}"),
        ),
    }
}
