//! The JSON API (`/api/v1`): customers start sessions (origin-checked, with
//! CORS for the site's allowed origins), agents read a session's state, and
//! the contact-centre integration ends sessions or whole interactions.

use super::auth::{api_caller, current_user, ApiCaller};
use super::{own_origins, throttle, AppState, WebError, DEMO_SITE};
use crate::session::EndReason;
use crate::store::normalize_origin;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use tower_sessions::Session;

/// Longest accepted page URL when starting a session.
const MAX_URL: usize = 4096;
/// Longest accepted interaction id.
const MAX_INTERACTION: usize = 256;

/// `POST /api/v1/sessions` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSession {
    site: String,
    url: String,
    #[serde(default)]
    interaction: Option<String>,
}

fn origin_of(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
}

fn with_cors(mut resp: Response, origin: Option<&str>) -> Response {
    if let Some(o) = origin.and_then(|o| HeaderValue::from_str(o).ok()) {
        let h = resp.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    resp
}

pub async fn create_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Result<Json<CreateSession>, JsonRejection>,
) -> Response {
    let origin = origin_of(&headers).map(str::to_owned);
    // Session creation rate per client address (`[limits] sessions_per_minute`).
    let address = throttle::client_key(&state.config, &headers, &extensions);
    if let Err(wait) = state.throttles.creations.hit(&address) {
        let secs = throttle::wait_secs(wait);
        tracing::warn!(address, "session creation rate exceeded");
        return WebError::Throttled {
            message: format!(
                "too many sessions started from your address (at most {} per minute); try again in {secs} second(s)",
                state.config.server.sessions_per_minute
            ),
            retry_after: secs,
        }
        .into_response();
    }
    match create_inner(&state, origin.as_deref(), &headers, body).await {
        // CORS headers only for an allowed origin (checked inside).
        Ok((resp, allowed)) => with_cors(resp, if allowed { origin.as_deref() } else { None }),
        Err(e) => e.into_response(),
    }
}

async fn create_inner(
    state: &AppState,
    origin: Option<&str>,
    headers: &HeaderMap,
    body: Result<Json<CreateSession>, JsonRejection>,
) -> Result<(Response, bool), WebError> {
    let Json(req) = body.map_err(|e| WebError::BadRequest(e.body_text()))?;
    if req.url.len() > MAX_URL {
        return Err(WebError::BadRequest(format!(
            "url is longer than {MAX_URL} bytes"
        )));
    }
    let interaction = match req.interaction.map(|s| s.trim().to_owned()) {
        Some(s) if s.is_empty() => None,
        Some(s) if s.len() > MAX_INTERACTION => {
            return Err(WebError::BadRequest(format!(
                "interaction is longer than {MAX_INTERACTION} bytes"
            )))
        }
        other => other,
    };
    let site = state
        .store
        .site_by_key(&req.site)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("unknown site `{}`", req.site)))?;
    let allowed = match origin {
        Some(o) => {
            // The demo pages are served by this server at whatever host name
            // it is reached by: same-origin is allowed for the demo site.
            let ok = normalize_origin(o).is_ok_and(|n| {
                site.origins.contains(&n)
                    || (site.key == DEMO_SITE && own_origins(&state.config, headers).contains(&n))
            });
            if !ok {
                return Err(WebError::Forbidden(format!(
                    "origin {o} is not allowed for site `{}`",
                    site.key
                )));
            }
            true
        }
        // Not a browser (server-to-server or a test client): no CORS to grant.
        None => false,
    };
    let created = state.registry.create(&site, &req.url, interaction).await?;
    Ok((
        (StatusCode::CREATED, Json(created)).into_response(),
        allowed,
    ))
}

/// CORS preflight for `POST /api/v1/sessions`: granted to origins some site allows.
pub async fn preflight(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let origin = origin_of(&headers)
        .ok_or_else(|| WebError::BadRequest("preflight without an Origin header".into()))?
        .to_owned();
    let normal = normalize_origin(&origin).map_err(|e| WebError::Forbidden(e.to_string()))?;
    let known = state
        .store
        .list_sites()
        .await?
        .iter()
        .any(|s| s.origins.contains(&normal));
    if !known {
        return Err(WebError::Forbidden(format!(
            "origin {origin} is not allowed for any site"
        )));
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    Ok(with_cors(resp, Some(&origin)))
}

/// `GET /api/v1/sessions/{id}` (agent or admin). Misses are throttled per
/// agent and per address like failed joins (no ID guessing).
pub async fn get_session(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    session: Session,
) -> Result<Response, WebError> {
    let (user, _, _) = current_user(&state, &headers, &session)
        .await?
        .ok_or_else(|| {
            WebError::Unauthorized("sign in or send `Authorization: Bearer TOKEN`".into())
        })?;
    let address = throttle::client_key(&state.config, &headers, &extensions);
    if let Err(wait) = throttle::check_id_guessing(&state.throttles, user.id, &address) {
        let secs = throttle::wait_secs(wait);
        return Err(WebError::Throttled {
            message: format!("too many lookups of unknown sessions; try again in {secs} second(s)"),
            retry_after: secs,
        });
    }
    match state.registry.info(&id) {
        Some(info) => Ok(Json(info).into_response()),
        None => {
            throttle::id_miss(&state, &user, &address).await;
            Err(WebError::NotFound(format!("no live session {id}")))
        }
    }
}

/// `POST /api/v1/sessions/{id}/end`.
pub async fn end_session(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let caller = api_caller(&state, &headers).await?;
    let not_found = || WebError::NotFound(format!("no live session {id}"));
    if let ApiCaller::Site(site) = &caller {
        if state.registry.site_of(&id) != Some(site.id) {
            return Err(not_found());
        }
    }
    if state.registry.end_session(&id, EndReason::ApiEnded).await {
        Ok(Json(serde_json::json!({ "ended": 1 })).into_response())
    } else {
        Err(not_found())
    }
}

/// `POST /api/v1/interactions/{interaction}/end`.
pub async fn end_interaction(
    State(state): State<AppState>,
    Path(interaction): Path<String>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let caller = api_caller(&state, &headers).await?;
    let site = match &caller {
        ApiCaller::Site(s) => Some(s.id),
        ApiCaller::User(_) => None,
    };
    let n = state
        .registry
        .end_interaction(&interaction, site, EndReason::InteractionEnded)
        .await;
    if n == 0 {
        return Err(WebError::NotFound(format!(
            "no live session for interaction `{interaction}`"
        )));
    }
    Ok(Json(serde_json::json!({ "ended": n })).into_response())
}
