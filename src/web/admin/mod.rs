//! The admin editor (issue 4): every route under `/admin`, server-rendered
//! with askama templates from `templates/admin/`.
//!
//! This module owns the editor's request plumbing: the [`Admin`] extractor
//! (signed-in, enabled admin or a redirect to the login page / a 403 page for
//! agents), CSRF checks on every form, the one-shot flash message shown after
//! a redirect, the left navigation shared by every page, and the router that
//! mounts the page modules ([`sites`], [`rules`], [`preview`], [`publish`],
//! [`audit`], [`users`]) and the element picker's API ([`picker`]). It does not
//! own login itself (`web::auth`) nor the rule engine (`rules`, `rewrite`).

pub mod audit;
pub mod login_guard;
pub mod picker;
pub mod preview;
pub mod publish;
pub mod rules;
pub mod sites;
pub mod users;

use super::auth::{check_csrf, cookie_user, csrf_token};
use super::{AppState, WebError};
use crate::store::{Role, Site, User};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{FromRequestParts, Multipart};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use tower_sessions::Session;

/// Session key of the one-shot message shown on the next admin page.
const FLASH_KEY: &str = "admin_flash";

/// Largest upload accepted by the preview and import forms (bytes).
pub const UPLOAD_LIMIT: usize = 900 * 1024;

/// Routes of the editor, to be merged into the app router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", get(|| async { Redirect::to("/admin/sites") }))
        .route("/admin/", get(|| async { Redirect::to("/admin/sites") }))
        .merge(sites::routes())
        .merge(rules::routes())
        .merge(preview::routes())
        .merge(publish::routes())
        .merge(audit::routes())
        .merge(users::routes())
        .merge(picker::page_routes())
        .layer(axum::middleware::map_response(html_errors))
        .merge(picker::api_routes())
        .route(
            "/static/admin.css",
            get(|| async { asset(CSS, include_str!("../../../static/admin.css")) }),
        )
        .route(
            "/static/admin.js",
            get(|| async { asset(JS, include_str!("../../../static/admin.js")) }),
        )
        .route(
            "/static/picker.js",
            get(|| async { asset(JS, include_str!("../../../static/picker.js")) }),
        )
}

#[derive(Template)]
#[template(path = "admin/error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

/// Turn the plain-text client errors of the editor's pages (bad form, CSRF,
/// not found, too large) into a styled page with the same status and message.
async fn html_errors(resp: Response) -> Response {
    let status = resp.status();
    let plain = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    if !status.is_client_error() || !plain {
        return resp;
    }
    let Ok(body) = axum::body::to_bytes(resp.into_body(), 64 * 1024).await else {
        return (status, "request failed").into_response();
    };
    let message = String::from_utf8_lossy(&body);
    let title = match status {
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::PAYLOAD_TOO_LARGE => "Upload too large",
        _ => "That did not work",
    };
    let page = ErrorPage {
        title,
        message: &message,
    };
    match page.render() {
        Ok(html) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html,
        )
            .into_response(),
        Err(_) => (status, message.into_owned()).into_response(),
    }
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

/// A one-shot message shown at the top of the next admin page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flash {
    /// Success (green) or failure (red).
    pub ok: bool,
    pub message: String,
    /// A secret shown exactly once (new API key, new password).
    #[serde(default)]
    pub secret: Option<String>,
}

/// What the shared layout (left navigation, header) needs on every page.
#[derive(Debug, Clone)]
pub struct Nav {
    pub user: String,
    pub csrf: String,
    /// Which navigation entry is highlighted.
    pub active: &'static str,
    /// The site the per-site pages (rules, preview, publish) refer to.
    pub site: String,
    pub sites: Vec<Site>,
    pub flash: Option<Flash>,
}

impl Nav {
    /// Whether `entry` is the highlighted navigation entry (for templates).
    pub fn is(&self, entry: &str) -> bool {
        self.active == entry
    }
}

/// A signed-in, enabled administrator (the extractor every admin page uses).
#[derive(Debug, Clone)]
pub struct Admin {
    pub user: User,
    pub session: Session,
    pub store: crate::store::Store,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/forbidden.html")]
struct ForbiddenPage {
    user: String,
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Admin, Response> {
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|(status, msg)| (status, msg).into_response())?;
        let user = cookie_user(state, &session)
            .await
            .map_err(IntoResponse::into_response)?;
        match user {
            None => {
                let next = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .filter(|p| parts.method == axum::http::Method::GET && !p.contains("//"))
                    .unwrap_or("/admin/sites");
                let target = format!("/login?next={}", url_encode(next));
                Err(Redirect::to(&target).into_response())
            }
            Some(u) if u.role != Role::Admin => Err((
                StatusCode::FORBIDDEN,
                ForbiddenPage {
                    user: u.name.clone(),
                },
            )
                .into_response()),
            Some(user) => Ok(Admin {
                user,
                session,
                store: state.store.clone(),
            }),
        }
    }
}

impl Admin {
    /// Check a submitted CSRF token (403 with a message when missing or wrong).
    pub async fn check_csrf(&self, submitted: &str) -> Result<(), WebError> {
        check_csrf(&self.session, submitted).await
    }

    /// The layout data for a page; takes (and clears) the pending flash.
    pub async fn nav(&self, active: &'static str, site: &str) -> Result<Nav, WebError> {
        let flash = self.session.remove::<Flash>(FLASH_KEY).await?;
        Ok(Nav {
            user: self.user.name.clone(),
            csrf: csrf_token(&self.session).await?,
            active,
            site: site.to_owned(),
            sites: self.store.list_sites().await?,
            flash,
        })
    }

    /// Store a message for the next page.
    pub async fn flash(&self, ok: bool, message: impl Into<String>) -> Result<(), WebError> {
        self.flash_secret(ok, message, None).await
    }

    /// Store a message (and a secret shown once) for the next page.
    pub async fn flash_secret(
        &self,
        ok: bool,
        message: impl Into<String>,
        secret: Option<String>,
    ) -> Result<(), WebError> {
        let flash = Flash {
            ok,
            message: message.into(),
            secret,
        };
        self.session.insert(FLASH_KEY, flash).await?;
        Ok(())
    }

    /// A site by key, or 404.
    pub async fn site(&self, key: &str) -> Result<Site, WebError> {
        self.store
            .site_by_key(key)
            .await?
            .ok_or_else(|| WebError::NotFound(format!("no site with key `{key}`")))
    }
}

/// Redirect after a successful POST (303, so the browser GETs the target).
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// Percent-encode a string for use in a query parameter or URL fragment.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The text fields and uploaded files of a multipart form, by field name.
/// A file's content (UTF-8, lossily) is stored under its field name; empty
/// file inputs are skipped. Fails with a clear message past `limit` bytes.
pub async fn read_multipart(
    mut mp: Multipart,
    limit: usize,
) -> Result<HashMap<String, String>, WebError> {
    let mut fields = HashMap::new();
    let mut total = 0usize;
    loop {
        let field = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(multipart_error(e, limit)),
        };
        let name = field.name().unwrap_or_default().to_owned();
        let is_file = field.file_name().is_some_and(|f| !f.is_empty());
        let had_file_name = field.file_name().is_some();
        let bytes = field.bytes().await.map_err(|e| multipart_error(e, limit))?;
        total += bytes.len();
        if total > limit {
            return Err(too_large(limit));
        }
        if had_file_name && !is_file && bytes.is_empty() {
            continue;
        }
        if is_file && bytes.is_empty() {
            continue;
        }
        fields.insert(name, String::from_utf8_lossy(&bytes).into_owned());
    }
    Ok(fields)
}

fn too_large(limit: usize) -> WebError {
    WebError::BadRequest(format!(
        "the upload is larger than the limit of {} KiB",
        limit / 1024
    ))
}

fn multipart_error(e: axum::extract::multipart::MultipartError, limit: usize) -> WebError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large(limit)
    } else {
        WebError::BadRequest(format!("invalid form upload: {}", e.body_text()))
    }
}

/// A form that only carries the CSRF token (buttons such as delete or rotate).
#[derive(Debug, Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    pub csrf: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoding_keeps_paths_readable() {
        assert_eq!(url_encode("/admin/sites?x=1&y"), "/admin/sites%3Fx%3D1%26y");
        assert_eq!(url_encode("a b"), "a%20b");
    }
}
