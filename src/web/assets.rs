//! Static assets embedded in the binary at build time (snippet, viewer,
//! shared CSS, demo shop, favicon), served with their content types, an
//! `ETag` validator honoured with `304`, and gzip or brotli bodies
//! (compressed once, on first use) chosen by `Accept-Encoding`.
//!
//! Caching: the snippet is served under two URLs. The versioned one,
//! `/cobrowse.js?v=HASH` (see [`snippet_path`]), is cached for a year as
//! `immutable`: a new build has a new hash. The plain `/cobrowse.js`, which
//! existing embeds use, is cached for five minutes and then revalidated with
//! its `ETag` (a `304` when unchanged). Everything else is `no-cache` with a
//! validator (always revalidated, rarely downloaded again).

use axum::body::{Body, Bytes};
use axum::extract::RawQuery;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::sync::LazyLock;

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// `Cache-Control` of the snippet under its versioned URL.
pub const CACHE_IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of the plain `/cobrowse.js` (existing embeds).
pub const CACHE_SNIPPET: &str = "public, max-age=300";
/// `Cache-Control` of every other asset: revalidate each time.
pub const CACHE_REVALIDATE: &str = "no-cache";
const CACHE_FAVICON: &str = "public, max-age=86400";

const SNIPPET_SRC: &str = include_str!("../../static/cobrowse.js");

/// One embedded file, with its precomputed compressed bodies and validator.
struct Asset {
    content_type: &'static str,
    identity: &'static [u8],
    /// Only kept when smaller than the identity body.
    gzip: Option<Bytes>,
    br: Option<Bytes>,
    /// Hex of the first 8 bytes of the SHA-256 of the identity body.
    hash: String,
}

impl Asset {
    fn new(content_type: &'static str, body: &'static [u8]) -> Asset {
        let hash = hex::encode(&Sha256::digest(body)[..8]);
        let smaller = |c: Option<Vec<u8>>| c.filter(|c| c.len() < body.len()).map(Bytes::from);
        Asset {
            content_type,
            identity: body,
            gzip: smaller(gzip(body)),
            br: smaller(brotli(body)),
            hash,
        }
    }

    fn etag(&self, enc: Encoding) -> String {
        match enc {
            Encoding::Identity => format!("\"{}\"", self.hash),
            Encoding::Gzip => format!("\"{}-gz\"", self.hash),
            Encoding::Br => format!("\"{}-br\"", self.hash),
        }
    }

    /// The response for a GET (or HEAD) with these request headers.
    fn respond(&self, req: &HeaderMap, cache: &'static str) -> Response {
        let enc = negotiate(req, self.gzip.is_some(), self.br.is_some());
        let mut headers = HeaderMap::new();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        if let Ok(v) = HeaderValue::from_str(&self.etag(enc)) {
            headers.insert(header::ETAG, v);
        }
        if self.not_modified(req) {
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        let body: Body = match enc {
            Encoding::Identity => Body::from(self.identity),
            Encoding::Gzip => Body::from(self.gzip.clone().unwrap_or_default()),
            Encoding::Br => Body::from(self.br.clone().unwrap_or_default()),
        };
        if let Some(name) = enc.token() {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(name));
        }
        (headers, body).into_response()
    }

    /// `If-None-Match` names this version (in any encoding), or is `*`.
    fn not_modified(&self, req: &HeaderMap) -> bool {
        req.get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|t| t.trim())
            .any(|t| {
                if t == "*" {
                    return true;
                }
                let t = t.strip_prefix("W/").unwrap_or(t);
                let t = t.trim_matches('"');
                let base = t
                    .strip_suffix("-gz")
                    .or_else(|| t.strip_suffix("-br"))
                    .unwrap_or(t);
                base == self.hash
            })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    Identity,
    Gzip,
    Br,
}

impl Encoding {
    fn token(self) -> Option<&'static str> {
        match self {
            Encoding::Identity => None,
            Encoding::Gzip => Some("gzip"),
            Encoding::Br => Some("br"),
        }
    }
}

/// The best encoding the client accepts (`q` > 0): brotli, then gzip, else none.
fn negotiate(req: &HeaderMap, have_gzip: bool, have_br: bool) -> Encoding {
    let mut br = None;
    let mut gz = None;
    let mut any = None;
    for value in req.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    (k.trim().eq_ignore_ascii_case("q")).then(|| v.trim().parse::<f32>().ok())?
                })
                .next()
                .unwrap_or(1.0);
            match name.as_str() {
                "br" => br = Some(q),
                "gzip" | "x-gzip" => gz = Some(q),
                "*" => any = Some(q),
                _ => {}
            }
        }
    }
    let ok = |q: Option<f32>| q.or(any).is_some_and(|q| q > 0.0);
    if have_br && ok(br) {
        Encoding::Br
    } else if have_gzip && ok(gz) {
        Encoding::Gzip
    } else {
        Encoding::Identity
    }
}

fn gzip(body: &[u8]) -> Option<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(body).ok()?;
    enc.finish().ok()
}

fn brotli(body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    {
        let mut w = brotli::CompressorWriter::new(&mut out, 4096, 11, 22);
        w.write_all(body).ok()?;
        w.flush().ok()?;
    }
    Some(out)
}

static SNIPPET: LazyLock<Asset> = LazyLock::new(|| Asset::new(JS, SNIPPET_SRC.as_bytes()));

/// The snippet's content hash (changes with every change of `static/cobrowse.js`).
pub fn snippet_version() -> &'static str {
    &SNIPPET.hash
}

/// The snippet's versioned path, `/cobrowse.js?v=HASH`, cacheable for a year.
pub fn snippet_path() -> String {
    format!("/cobrowse.js?v={}", snippet_version())
}

/// The demo pages load the snippet from its versioned URL, as a site that
/// wants long-lived caching would.
fn demo_page(src: &'static str) -> &'static [u8] {
    let tag = format!("src=\"{}\"", snippet_path());
    Box::leak(
        src.replace("src=\"/cobrowse.js\"", &tag)
            .into_boxed_str()
            .into_boxed_bytes(),
    )
}

/// A route serving one embedded file: `embedded!(CONTENT_TYPE, BODY_BYTES)`
/// evaluates to a `&'static Asset`, built on first use.
macro_rules! embedded {
    ($ct:expr, $body:expr) => {{
        static A: LazyLock<Asset> = LazyLock::new(|| Asset::new($ct, $body));
        &*A
    }};
}

fn plain(asset: &'static Asset) -> axum::routing::MethodRouter<()> {
    get(move |h: HeaderMap| async move { asset.respond(&h, CACHE_REVALIDATE) })
}

async fn snippet(RawQuery(query): RawQuery, h: HeaderMap) -> Response {
    let versioned = query.as_deref().is_some_and(|q| {
        q.split('&')
            .any(|kv| kv.strip_prefix("v=") == Some(snippet_version()))
    });
    let cache = if versioned {
        CACHE_IMMUTABLE
    } else {
        CACHE_SNIPPET
    };
    SNIPPET.respond(&h, cache)
}

async fn favicon(h: HeaderMap) -> Response {
    embedded!(SVG, include_bytes!("../../static/favicon.svg")).respond(&h, CACHE_FAVICON)
}

/// Routes for every embedded file.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let r: Router<()> = Router::new()
        .route("/cobrowse.js", get(snippet))
        .route("/favicon.svg", get(favicon))
        .route("/favicon.ico", get(favicon))
        .route(
            "/static/viewer.js",
            plain(embedded!(JS, include_bytes!("../../static/viewer.js"))),
        )
        .route(
            "/static/viewer.css",
            plain(embedded!(CSS, include_bytes!("../../static/viewer.css"))),
        )
        .route(
            "/static/app.css",
            plain(embedded!(CSS, include_bytes!("../../static/app.css"))),
        )
        .route(
            "/demo/",
            plain(embedded!(
                HTML,
                demo_page(include_str!("../../static/demo/index.html"))
            )),
        )
        .route(
            "/demo",
            get(|| async { axum::response::Redirect::permanent("/demo/") }),
        )
        .route(
            "/demo/checkout",
            plain(embedded!(
                HTML,
                demo_page(include_str!("../../static/demo/checkout.html"))
            )),
        )
        .route(
            "/demo/done",
            plain(embedded!(
                HTML,
                demo_page(include_str!("../../static/demo/done.html"))
            )),
        )
        .route(
            "/demo/shop.css",
            plain(embedded!(CSS, include_bytes!("../../static/demo/shop.css"))),
        );
    r.with_state(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn negotiation_prefers_brotli_and_honours_q_zero() {
        assert_eq!(negotiate(&accept("gzip, br"), true, true), Encoding::Br);
        assert_eq!(
            negotiate(&accept("gzip, br;q=0"), true, true),
            Encoding::Gzip
        );
        assert_eq!(
            negotiate(&accept("identity"), true, true),
            Encoding::Identity
        );
        assert_eq!(negotiate(&accept("*"), true, true), Encoding::Br);
        assert_eq!(
            negotiate(&accept("*;q=0, gzip"), true, true),
            Encoding::Gzip
        );
        assert_eq!(negotiate(&HeaderMap::new(), true, true), Encoding::Identity);
        assert_eq!(negotiate(&accept("br"), true, false), Encoding::Identity);
    }
}
