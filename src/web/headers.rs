//! Security headers on every response: `X-Content-Type-Options: nosniff`
//! and `Referrer-Policy: no-referrer` everywhere, and a
//! `Content-Security-Policy` on every HTML page, chosen by path:
//!
//! - our own pages (login, index, admin editor): nothing but this server,
//!   no inline script or style, no framing (`frame-ancestors 'none'`);
//! - the agent viewer (`/agent`) and the admin preview: the same, except that
//!   inline styles are allowed, because their sandboxed `srcdoc` iframes
//!   (which inherit the page's policy) hold the customer's rewritten page with
//!   its `<style>` and `style` attributes; images only from this server or
//!   `data:`/`blob:` — the replica can make no request to any other host;
//! - the demo shop (`/demo/*`), which stands in for a customer's site: its
//!   own inline script and styles are allowed, still only from this server.
//!
//! The snippet (`/cobrowse.js`) is a script loaded by customer sites from
//! other origins: it gets no CSP of its own (a CSP on a script response has
//! no effect) and no `Cross-Origin-Resource-Policy`, so it keeps loading.
//! A handler that sets its own header wins (nothing is overwritten).

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// Our own pages.
pub const CSP_PAGES: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; \
base-uri 'none'; form-action 'self'; frame-src 'none'; frame-ancestors 'none'";

/// Pages holding a replica of a customer page in a sandboxed `srcdoc` iframe.
pub const CSP_REPLICA: &str = "default-src 'self'; script-src 'self'; \
style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; \
media-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
form-action 'self'; frame-src 'self'; frame-ancestors 'none'";

/// The demo shop (a stand-in customer site with an inline script).
pub const CSP_DEMO: &str = "default-src 'self'; script-src 'self' 'unsafe-inline'; \
style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'";

/// The CSP for an HTML response at `path`.
pub fn csp_for(path: &str) -> &'static str {
    if path == "/agent" || (path.starts_with("/admin/sites/") && path.ends_with("/preview")) {
        CSP_REPLICA
    } else if path == "/demo" || path.starts_with("/demo/") {
        CSP_DEMO
    } else {
        CSP_PAGES
    }
}

/// The middleware adding the headers (see the module docs).
pub async fn security_headers(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let mut resp = next.run(req).await;
    let is_html = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let h = resp.headers_mut();
    h.entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    h.entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("no-referrer"));
    if is_html {
        h.entry(header::CONTENT_SECURITY_POLICY)
            .or_insert(HeaderValue::from_static(csp_for(&path)));
        h.entry(header::X_FRAME_OPTIONS)
            .or_insert(HeaderValue::from_static(if csp_for(&path) == CSP_DEMO {
                "SAMEORIGIN"
            } else {
                "DENY"
            }));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_by_path() {
        assert_eq!(csp_for("/agent"), CSP_REPLICA);
        assert_eq!(csp_for("/admin/sites/demo/preview"), CSP_REPLICA);
        assert_eq!(csp_for("/demo/checkout"), CSP_DEMO);
        assert_eq!(csp_for("/login"), CSP_PAGES);
        assert_eq!(csp_for("/admin/sites/demo/rules"), CSP_PAGES);
        for p in [CSP_PAGES, CSP_REPLICA, CSP_DEMO] {
            assert!(p.contains("default-src 'self'"));
            assert!(p.contains("object-src 'none'"));
            assert!(p.contains("base-uri 'none'"));
        }
        assert!(!CSP_REPLICA.contains("script-src 'self' 'unsafe-inline'"));
    }
}
