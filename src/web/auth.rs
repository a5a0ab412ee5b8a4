//! Authentication: the login form (argon2 via the store, back-off after
//! repeated failures, one answer for unknown names and wrong passwords),
//! logout, CSRF tokens kept in the tower-sessions login session, bearer
//! tokens, credential generations (a login session made before the user's
//! password changed or the account was disabled is dropped on its next
//! request), and the pages that need a signed-in user (agent viewer) plus
//! the public index page.

use super::{AppState, WebError};
use crate::session::constant_time_eq;
use crate::store::{Credential, LoginOutcome, Site, User};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

const USER_KEY: &str = "user_id";
/// The user's credential generation when they signed in.
const GEN_KEY: &str = "credential_gen";
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

/// The signed-in user from the session cookie and the credential
/// generation they signed in under. A session of a disabled account, or one
/// made before the password changed, is deleted.
pub async fn cookie_login(
    state: &AppState,
    session: &Session,
) -> Result<Option<(User, i64)>, WebError> {
    let Some(id) = session.get::<i64>(USER_KEY).await? else {
        return Ok(None);
    };
    let signed_in_gen = session.get::<i64>(GEN_KEY).await?.unwrap_or(0);
    let user = state.store.user_by_id(id).await?;
    let current = state.store.credential_gen(id).await?;
    match (user, current) {
        (Some(u), Some((generation, false))) if generation == signed_in_gen && !u.disabled => {
            Ok(Some((u, generation)))
        }
        _ => {
            session.flush().await?;
            Ok(None)
        }
    }
}

/// The signed-in user from the session cookie.
pub async fn cookie_user(state: &AppState, session: &Session) -> Result<Option<User>, WebError> {
    Ok(cookie_login(state, session).await?.map(|(u, _)| u))
}

/// The user behind a bearer token or, failing that, the session cookie, and
/// the credential used. A bearer token that is present but invalid is an
/// error (no fallback).
pub async fn current_user(
    state: &AppState,
    headers: &HeaderMap,
    session: &Session,
) -> Result<Option<(User, AuthKind, Credential)>, WebError> {
    if let Some(token) = bearer(headers) {
        return match state.store.token_user(token).await? {
            Some((u, id)) => Ok(Some((u, AuthKind::Bearer, Credential::Token { id }))),
            None => Err(WebError::Unauthorized(
                "invalid or revoked API token".into(),
            )),
        };
    }
    Ok(cookie_login(state, session)
        .await?
        .map(|(u, generation)| (u, AuthKind::Cookie, Credential::Login { generation })))
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

/// Only same-origin absolute paths are followed after login: a single
/// leading `/`, then printable ASCII only — no second `/` or `\` right
/// after it, no `\` anywhere, no spaces, tabs, newlines or other controls
/// (browsers drop tabs and newlines from URLs, so `/\t/evil.example/` would
/// become `//evil.example/`), and no percent-encoded controls, slashes or
/// backslashes. Anything else goes to `/agent`.
pub fn safe_next(next: &str) -> &str {
    const FALLBACK: &str = "/agent";
    let b = next.as_bytes();
    if b.first() != Some(&b'/') || matches!(b.get(1), Some(b'/' | b'\\')) {
        return FALLBACK;
    }
    if !b.iter().all(|c| c.is_ascii_graphic() && *c != b'\\') {
        return FALLBACK;
    }
    // Percent-encoded bytes that could turn into a scheme-relative URL or a
    // control character once some client decodes them.
    let lower = next.to_ascii_lowercase();
    let mut rest = lower.as_str();
    while let Some(i) = rest.find('%') {
        let hex = rest.get(i + 1..i + 3).unwrap_or("");
        match u8::from_str_radix(hex, 16) {
            Ok(v) if v < 0x20 || v == 0x7f || v == b'/' || v == b'\\' || v >= 0x80 => {
                return FALLBACK
            }
            Ok(_) => {}
            Err(_) => return FALLBACK,
        }
        rest = &rest[i + 1..];
    }
    if next.len() > 2048 {
        return FALLBACK;
    }
    next
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
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    Form(form): Form<LoginForm>,
) -> Result<Response, WebError> {
    let next = safe_next(&form.next).to_owned();
    // Back-off per (address, name) and per address (web::admin::login_guard).
    let address = super::throttle::client_key(&state.config, &headers, &extensions);
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
        let secs = super::throttle::wait_secs(wait);
        let mut resp = again(
            StatusCode::TOO_MANY_REQUESTS,
            csrf,
            format!("Too many failed sign-in attempts. Wait {secs} second(s) and try again."),
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        return Ok(resp);
    }
    let outcome = state
        .store
        .verify_login(form.name.trim(), &form.password)
        .await?;
    let csrf = csrf_token(&session).await?;
    if matches!(outcome, LoginOutcome::Invalid) {
        state.login_guard.failed(&address, form.name.trim());
    }
    match outcome {
        LoginOutcome::Ok(user) => {
            state.login_guard.succeeded(&address, form.name.trim());
            let generation = match state.store.credential_gen(user.id).await? {
                Some((g, false)) => g,
                _ => {
                    return Ok(again(
                        StatusCode::UNAUTHORIZED,
                        csrf,
                        "Wrong user name or password.".into(),
                    ))
                }
            };
            session.cycle_id().await?;
            session.insert(USER_KEY, user.id).await?;
            session.insert(GEN_KEY, generation).await?;
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
    /// The live session this agent has joined (connected elsewhere or
    /// away), empty if none: the viewer offers to resume or end it.
    pub current_session: String,
}

pub async fn agent_page(
    State(state): State<AppState>,
    session: Session,
) -> Result<Response, WebError> {
    match cookie_user(&state, &session).await? {
        Some(user) => {
            let csrf = csrf_token(&session).await?;
            let current_session = state.registry.agent_session(user.id).unwrap_or_default();
            Ok(AgentPage {
                user_name: user.name,
                csrf,
                current_session,
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

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_accepts_only_same_origin_paths() {
        for ok in [
            "/agent",
            "/admin/sites?site=demo&x=1",
            "/a%20b",
            "/admin/sites/demo/rules#r1",
        ] {
            assert_eq!(safe_next(ok), ok);
        }
        for bad in [
            "//evil.example/",
            "/\\evil.example/",
            "/\t/evil.example/",
            "/\n/evil.example/",
            "/%09/evil.example/",
            "/%2F/evil.example",
            "/%5c/evil.example",
            "/%0a",
            "/%zz",
            "https://evil.example/",
            "javascript:alert(1)",
            " /agent",
            "/ok\u{0}",
            "/caf\u{e9}",
            "",
        ] {
            assert_eq!(safe_next(bad), "/agent", "{bad:?}");
        }
    }
}
