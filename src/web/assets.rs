//! Static assets embedded in the binary at build time (snippet, viewer,
//! shared CSS, demo shop), served with their content types.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

/// Routes for every embedded file.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/cobrowse.js",
            get(|| async { asset(JS, include_str!("../../static/cobrowse.js")) }),
        )
        .route(
            "/static/viewer.js",
            get(|| async { asset(JS, include_str!("../../static/viewer.js")) }),
        )
        .route(
            "/static/viewer.css",
            get(|| async { asset(CSS, include_str!("../../static/viewer.css")) }),
        )
        .route(
            "/static/app.css",
            get(|| async { asset(CSS, include_str!("../../static/app.css")) }),
        )
        .route(
            "/demo/",
            get(|| async { asset(HTML, include_str!("../../static/demo/index.html")) }),
        )
        .route(
            "/demo",
            get(|| async { axum::response::Redirect::permanent("/demo/") }),
        )
        .route(
            "/demo/checkout",
            get(|| async { asset(HTML, include_str!("../../static/demo/checkout.html")) }),
        )
        .route(
            "/demo/done",
            get(|| async { asset(HTML, include_str!("../../static/demo/done.html")) }),
        )
        .route(
            "/demo/shop.css",
            get(|| async { asset(CSS, include_str!("../../static/demo/shop.css")) }),
        )
}
