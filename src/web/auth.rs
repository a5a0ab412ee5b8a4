//! Authentication: the login form (argon2 via the store, lock-out after
//! repeated failures), logout, CSRF tokens kept in the tower-sessions login
//! session, bearer tokens, and the pages that need a signed-in user (agent
//! viewer) plus the public index page.

use super::{AppState, WebError};
use crate::session::constant_time_eq;
use crate::store::{LoginOutcome, Site, User};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

const USER_KEY: &str = "user_id";
const CSRF_KEY: &str = "csrf";

/// How a request was authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    /// `Authorization: Bearer` API token.
    Bearer,
    /// The login session cookie.
    Cookie,
}

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// The signed-in user from the session cookie.
pub async fn cookie_user(state: &AppState, session: &Session) -> Result<Option<User>, WebError> {
    let Some(id) = session.get::<i64>(USER_KEY).await? else {
        return Ok(None);
    };
    Ok(state.store.user_by_id(id).await?.filter(|u| !u.disabled))
}

/// The user behind a bearer token or, failing that, the session cookie.
/// A bearer token that is present but invalid is an error (no fallback).
pub async fn current_user(
    state: &AppState,
    headers: &HeaderMap,
    session: &Session,
) -> Result<Option<(User, AuthKind)>, WebError> {
    if let Some(token) = bearer(headers) {
        return match state.store.user_by_token(token).await? {
            Some(u) => Ok(Some((u, AuthKind::Bearer))),
            None => Err(WebError::Unauthorized(
                "invalid or revoked API token".into(),
            )),
        };
    }
    Ok(cookie_user(state, session)
        .await?
        .map(|u| (u, AuthKind::Cookie)))
}

/// Who may call the contact-centre API: a user token or a site's integration key.
#[derive(Debug, Clone)]
pub enum ApiCaller {
    User(User),
    Site(Site),
}

/// Authenticate a contact-centre API call (`Authorization: Bearer`).
pub async fn api_caller(state: &AppState, headers: &HeaderMap) -> Result<ApiCaller, WebError> {
    let token = bearer(headers).ok_or_else(|| {
        WebError::Unauthorized(
            "missing `Authorization: Bearer` (user API token or site integration key)".into(),
        )
    })?;
    if let Some(u) = state.store.user_by_token(token).await? {
        return Ok(ApiCaller::User(u));
    }
    if let Some(s) = state.store.site_by_api_key(token).await? {
        return Ok(ApiCaller::Site(s));
    }
    Err(WebError::Unauthorized(
        "invalid or revoked API token".into(),
    ))
}

/// The session's CSRF token, created on first use.
pub async fn csrf_token(session: &Session) -> Result<String, WebError> {
    if let Some(t) = session.get::<String>(CSRF_KEY).await? {
        return Ok(t);
    }
    let t = crate::store::random_hex(32);
    session.insert(CSRF_KEY, &t).await?;
    Ok(t)
}

/// Check a submitted CSRF token against the session's.
pub async fn check_csrf(session: &Session, submitted: &str) -> Result<(), WebError> {
    match session.get::<String>(CSRF_KEY).await? {
        Some(t) if constant_time_eq(t.as_bytes(), submitted.as_bytes()) => Ok(()),
        _ => Err(WebError::Forbidden(
            "the form has expired or did not come from this site; reload the page and try again"
                .into(),
        )),
    }
}

/// Only same-site relative paths are followed after login.
fn safe_next(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next
    } else {
        "/agent"
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
struct LoginPage {
    next: String,
    csrf: String,
    name: String,
    error: Option<String>,
}

/// `GET /login?next=`.
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    next: Option<String>,
}

pub async fn login_page(
    session: Session,
    Query(q): Query<LoginQuery>,
) -> Result<Response, WebError> {
    let csrf = csrf_token(&session).await?;
    let next = safe_next(q.next.as_deref().unwrap_or("/agent")).to_owned();
    Ok(LoginPage {
        next,
        csrf,
        name: String::new(),
        error: None,
    }
    .into_response())
}

/// The login form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    name: String,
    password: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
}

pub async fn login_submit(
    State(state): State<AppState>,
    session: Session,
    extensions: axum::http::Extensions,
    Form(form): Form<LoginForm>,
) -> Result<Response, WebError> {
    let next = safe_next(&form.next).to_owned();
    // Admin editor hook: per-address / per-name rate limit (see web::admin::login_guard).
    let address = super::admin::login_guard::client_address(&extensions);
    let again = |status: StatusCode, csrf: String, error: String| {
        let page = LoginPage {
            next: next.clone(),
            csrf,
            name: form.name.clone(),
            error: Some(error),
        };
        (status, page).into_response()
    };
    if check_csrf(&session, &form.csrf).await.is_err() {
        let csrf = csrf_token(&session).await?;
        return Ok(again(
            StatusCode::FORBIDDEN,
            csrf,
            "The form expired. Please sign in again.".into(),
        ));
    }
    if let Err(wait) = state.login_guard.check(&address, form.name.trim()) {
        let csrf = csrf_token(&session).await?;
        let minutes = wait.as_secs().div_ceil(60).max(1);
        return Ok(again(
            StatusCode::TOO_MANY_REQUESTS,
            csrf,
            format!("Too many failed sign-in attempts from your address. Try again in {minutes} minute(s)."),
        ));
    }
    let outcome = state
        .store
        .verify_login(form.name.trim(), &form.password)
        .await?;
    let csrf = csrf_token(&session).await?;
    if matches!(outcome, LoginOutcome::Invalid | LoginOutcome::Locked { .. }) {
        state.login_guard.failed(&address, form.name.trim());
    }
    match outcome {
        LoginOutcome::Ok(user) => {
            state.login_guard.succeeded(&address, form.name.trim());
            session.cycle_id().await?;
            session.insert(USER_KEY, user.id).await?;
            session
                .insert(CSRF_KEY, crate::store::random_hex(32))
                .await?;
            tracing::info!(user = %user.name, "signed in");
            Ok(Redirect::to(&next).into_response())
        }
        LoginOutcome::Invalid => Ok(again(
            StatusCode::UNAUTHORIZED,
            csrf,
            "Wrong user name or password.".into(),
        )),
        LoginOutcome::Locked { .. } => Ok(again(
            StatusCode::TOO_MANY_REQUESTS,
            csrf,
            format!(
                "Too many failed attempts: this account is locked for {} minutes.",
                crate::store::users::LOCKOUT_SECS / 60
            ),
        )),
        LoginOutcome::Disabled => Ok(again(
            StatusCode::FORBIDDEN,
            csrf,
            "This account is disabled.".into(),
        )),
    }
}

/// The logout form.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub async fn logout(session: Session, Form(form): Form<CsrfForm>) -> Result<Response, WebError> {
    check_csrf(&session, &form.csrf).await?;
    session.flush().await?;
    Ok(Redirect::to("/login").into_response())
}

/// The agent viewer page (the front end fills in `templates/agent.html`).
#[derive(Template, WebTemplate)]
#[template(path = "agent.html")]
pub struct AgentPage {
    pub user_name: String,
    pub csrf: String,
}

pub async fn agent_page(
    State(state): State<AppState>,
    session: Session,
) -> Result<Response, WebError> {
    match cookie_user(&state, &session).await? {
        Some(user) => {
            let csrf = csrf_token(&session).await?;
            Ok(AgentPage {
                user_name: user.name,
                csrf,
            }
            .into_response())
        }
        None => Ok(Redirect::to("/login?next=/agent").into_response()),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "index.html")]
struct IndexPage {
    public_url: String,
}

pub async fn index(State(state): State<AppState>) -> Response {
    IndexPage {
        public_url: state.config.public_url.clone(),
    }
    .into_response()
}
