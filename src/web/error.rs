//! The web layer's error type: every failure of a handler becomes a status
//! code and a plain-text message; server errors are logged once here and the
//! client only sees "internal error".

use crate::session::SessionError;
use crate::store::StoreError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The request is malformed (400).
    #[error("{0}")]
    BadRequest(String),
    /// No or invalid credentials (401).
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated or not, this is not allowed (403).
    #[error("{0}")]
    Forbidden(String),
    /// The named thing does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// Too many attempts; try later (429).
    #[error("{0}")]
    TooManyRequests(String),
    /// Too many attempts; try again after this many seconds (429 with `Retry-After`).
    #[error("{message}")]
    Throttled { message: String, retry_after: u64 },
    /// The server is shutting down (503).
    #[error("{0}")]
    Unavailable(String),
    /// The store failed (500).
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The tower-sessions session store failed (500).
    #[error("login session: {0}")]
    LoginSession(#[from] tower_sessions::session::Error),
    /// A template failed to render (500).
    #[error("template: {0}")]
    Template(#[from] askama::Error),
    /// Any other server-side failure (500).
    #[error("{0}")]
    Internal(String),
}

impl From<SessionError> for WebError {
    fn from(e: SessionError) -> WebError {
        match e {
            SessionError::NotFound | SessionError::Ended(_) => WebError::NotFound(e.to_string()),
            SessionError::BadToken => WebError::Unauthorized(e.to_string()),
            SessionError::OriginNotAllowed(_) => WebError::Forbidden(e.to_string()),
            SessionError::SessionTaken
            | SessionError::AgentBusy(_)
            | SessionError::NotYourSession => WebError::Forbidden(e.to_string()),
            SessionError::ShuttingDown | SessionError::Capacity(_) => {
                WebError::Unavailable(e.to_string())
            }
            SessionError::Rules(_) => WebError::Internal(e.to_string()),
            SessionError::Store(s) => WebError::Store(s),
        }
    }
}

impl WebError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            WebError::Forbidden(_) => StatusCode::FORBIDDEN,
            WebError::NotFound(_) => StatusCode::NOT_FOUND,
            WebError::TooManyRequests(_) | WebError::Throttled { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            WebError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            WebError::Store(_)
            | WebError::LoginSession(_)
            | WebError::Template(_)
            | WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = self.status();
        // 503s (shutting down, at capacity) carry a message meant for the client.
        if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
            tracing::error!(error = %self, "request failed");
            return (status, "internal error").into_response();
        }
        let retry_after = match &self {
            WebError::Throttled { retry_after, .. } => Some(*retry_after),
            _ => None,
        };
        let mut resp = (status, self.to_string()).into_response();
        if let Some(secs) = retry_after {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs),
            );
        }
        resp
    }
}
