//! WebSocket upgrade endpoints: authentication and origin checks happen here,
//! before the upgrade; the socket loops live in `relay`.

use super::auth::{current_user, AuthKind};
use super::{own_origins, AppState, WebError, DEMO_SITE};
use crate::relay::{self, RelayConfig};
use crate::session::AgentIdentity;
use crate::store::normalize_origin;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::Response;
use serde::Deserialize;
use tower_sessions::Session;

fn relay_config(state: &AppState) -> RelayConfig {
    RelayConfig {
        limits: state.config.limits,
        queues: state.config.queues,
    }
}

/// Frames up to twice the protocol limit reach our own check (which answers
/// with an `error` frame); anything larger is cut by the WebSocket layer.
fn ws_cap(state: &AppState) -> usize {
    state
        .config
        .limits
        .max_message_bytes
        .saturating_mul(2)
        .max(1 << 16)
}

/// `GET /ws/customer/{id}?token=…`.
#[derive(Debug, Deserialize)]
pub struct CustomerQuery {
    #[serde(default)]
    token: String,
}

pub async fn customer(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<CustomerQuery>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // The demo pages are served by this server itself, at whatever host name
    // it was reached by: same-origin is allowed for the demo site.
    let same_origin = origin
        .as_deref()
        .and_then(|o| normalize_origin(o).ok())
        .is_some_and(|o| own_origins(&state.config, &headers).contains(&o));
    let origin = if same_origin && state.registry.site_key_of(&id).as_deref() == Some(DEMO_SITE) {
        None
    } else {
        origin
    };
    let registry = state.registry.clone();
    let cfg = relay_config(&state);
    let cap = ws_cap(&state);
    ws.max_message_size(cap)
        .max_frame_size(cap)
        .on_upgrade(move |socket| relay::run_customer(registry, cfg, socket, id, q.token, origin))
}

/// A cookie-authenticated socket must come from our own pages (no
/// cross-site WebSocket hijacking).
fn check_own_origin(state: &AppState, headers: &HeaderMap) -> Result<(), WebError> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let origin = normalize_origin(origin).map_err(|e| WebError::Forbidden(e.to_string()))?;
    if own_origins(&state.config, headers).contains(&origin) {
        Ok(())
    } else {
        Err(WebError::Forbidden(format!(
            "origin {origin} may not open agent sockets"
        )))
    }
}

/// `GET /ws/agent/{id}` (signed-in agent or admin, or `Authorization: Bearer`).
pub async fn agent(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    session: Session,
    ws: WebSocketUpgrade,
) -> Result<Response, WebError> {
    let (user, kind) = current_user(&state, &headers, &session)
        .await?
        .ok_or_else(|| {
            WebError::Unauthorized("sign in or send `Authorization: Bearer TOKEN`".into())
        })?;
    if kind == AuthKind::Cookie {
        check_own_origin(&state, &headers)?;
    }
    let registry = state.registry.clone();
    let cfg = relay_config(&state);
    let cap = ws_cap(&state);
    let identity = AgentIdentity {
        user_id: user.id,
        name: user.name,
    };
    Ok(ws
        .max_message_size(cap)
        .max_frame_size(cap)
        .on_upgrade(move |socket| relay::run_agent(registry, cfg, socket, id, identity)))
}
