//! The archive of scheduled management reports: `GET /reports/` lists
//! every archived file, `GET /reports/2026-W48.html` (also `.pdf`, `.csv`,
//! `.json`, `.md`) serves one as it was made.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use super::AppState;
use crate::config::reports::ReportFormat;
use crate::report::weekly::charts::escape;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/reports",
            get(|| async { Redirect::permanent("/reports/") }),
        )
        .route("/reports/", get(list))
        .route("/reports/{file}", get(one))
}

async fn list(State(s): State<AppState>) -> Response {
    let store = s.store.clone();
    let files = match tokio::task::spawn_blocking(move || store.archived_reports()).await {
        Ok(Ok(files)) => files,
        Ok(Err(e)) => return unavailable(&e.to_string()),
        Err(_) => return unavailable("the archive read panicked"),
    };
    let mut rows = String::new();
    for f in &files {
        let name = format!("{}.{}", f.period, f.format);
        rows.push_str(&format!(
            "<tr><th scope=\"row\">{p}</th><td><a href=\"{n}\">{n}</a></td><td>{l}</td><td>{c}</td><td>{b}</td></tr>\n",
            p = escape(&f.period),
            n = escape(&name),
            l = escape(&f.lang),
            c = f.created_at.strftime("%Y-%m-%d %H:%M UTC"),
            b = f.bytes,
        ));
    }
    let body = format!(
        "<!DOCTYPE html>\n<html lang=\"nl\"><head><meta charset=\"utf-8\"><title>Rapporten / Reports</title>\
         <style>body{{font-family:sans-serif;margin:2rem}}table{{border-collapse:collapse}}\
         th,td{{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:left}}</style></head><body>\
         <h1>Rapporten / Reports</h1>{}\n</body></html>\n",
        if files.is_empty() {
            "<p>Nog geen rapporten gearchiveerd. / No reports archived yet.</p>".to_string()
        } else {
            format!(
                "<table><thead><tr><th scope=\"col\">Periode / Period</th><th scope=\"col\">Bestand / File</th>\
                 <th scope=\"col\">Taal / Language</th><th scope=\"col\">Gemaakt / Made</th><th scope=\"col\">Bytes</th></tr></thead>\
                 <tbody>\n{rows}</tbody></table>"
            )
        }
    );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

async fn one(State(s): State<AppState>, Path(file): Path<String>) -> Response {
    let Some((period, ext)) = file.rsplit_once('.') else {
        return not_found(&file);
    };
    let Ok(format) = ext.parse::<ReportFormat>() else {
        return not_found(&file);
    };
    let (store, period_owned) = (s.store.clone(), period.to_string());
    let found = tokio::task::spawn_blocking(move || {
        store.archived_report(&period_owned, format.extension())
    })
    .await;
    match found {
        Ok(Ok(Some(r))) => (
            [
                (header::CONTENT_TYPE, format.content_type().to_string()),
                (header::CONTENT_LANGUAGE, r.lang.clone()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("inline; filename=\"report-{}.{}\"", r.period, r.format),
                ),
            ],
            r.content,
        )
            .into_response(),
        Ok(Ok(None)) => not_found(&file),
        Ok(Err(e)) => unavailable(&e.to_string()),
        Err(_) => unavailable("the archive read panicked"),
    }
}

fn not_found(file: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        format!(
            "no archived report '{file}': see /reports/ for what there is (names look like 2026-W48.html, 2026-11.pdf)\n"
        ),
    )
        .into_response()
}

fn unavailable(why: &str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        format!("cannot read the report archive: {why}\n"),
    )
        .into_response()
}
