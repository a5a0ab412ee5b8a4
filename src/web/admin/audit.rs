//! Read-only record pages: the audit log of every administrative change
//! (who, when, what, before/after JSON), filterable by actor, action and
//! target (site or user), and the session history (ID, site, agent, start,
//! end, reason, mode changes, masked/blocked counts, denied actions).

use super::{Admin, Nav};
use crate::store::editor::{AuditFilter, SessionRow};
use crate::store::AuditEntry;
use crate::web::{AppState, WebError};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::Query;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

/// Most rows on one page.
const PAGE_ROWS: i64 = 500;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/audit", get(audit))
        .route("/admin/sessions", get(sessions))
}

/// The audit log's filter form (`GET`, so filtered views can be linked).
#[derive(Debug, Default, Deserialize)]
struct AuditQuery {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    site: String,
}

/// One audit entry as displayed (JSON pretty-printed).
struct AuditView {
    entry: AuditEntry,
    before: String,
    after: String,
}

fn pretty(json: &Option<String>) -> String {
    json.as_deref()
        .map(|j| {
            serde_json::from_str::<serde_json::Value>(j)
                .and_then(|v| serde_json::to_string_pretty(&v))
                .unwrap_or_else(|_| j.to_owned())
        })
        .unwrap_or_default()
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    nav: Nav,
    actor: String,
    action: String,
    site: String,
    actors: Vec<String>,
    actions: Vec<String>,
    entries: Vec<AuditView>,
}

async fn audit(admin: Admin, Query(q): Query<AuditQuery>) -> Result<Response, WebError> {
    let filter = AuditFilter {
        actor: q.actor.trim().to_owned(),
        action: q.action.trim().to_owned(),
        target: q.site.trim().to_owned(),
    };
    let entries = admin
        .store
        .audit_filtered(&filter, PAGE_ROWS)
        .await?
        .into_iter()
        .map(|entry| AuditView {
            before: pretty(&entry.before_json),
            after: pretty(&entry.after_json),
            entry,
        })
        .collect();
    let (actors, actions) = admin.store.audit_facets().await?;
    let nav = admin.nav("audit", "").await?;
    Ok(AuditPage {
        nav,
        actor: filter.actor,
        action: filter.action,
        site: filter.target,
        actors,
        actions,
        entries,
    }
    .into_response())
}

/// The session history filter.
#[derive(Debug, Default, Deserialize)]
struct SessionsQuery {
    #[serde(default)]
    site: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/sessions.html")]
struct SessionsPage {
    nav: Nav,
    site: String,
    rows: Vec<SessionRow>,
}

async fn sessions(admin: Admin, Query(q): Query<SessionsQuery>) -> Result<Response, WebError> {
    let site = q.site.trim().to_owned();
    let rows = admin.store.session_rows(&site, PAGE_ROWS).await?;
    let nav = admin.nav("sessions", "").await?;
    Ok(SessionsPage { nav, site, rows }.into_response())
}
