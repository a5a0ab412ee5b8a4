//! The resource proxy: `GET /proxy/{site}/{sig}?u=<absolute URL>`.
//!
//! The agent's replica fetches nothing from other hosts: the render rewrites
//! every resource URL to this endpoint (see `rewrite::urls`). A request is
//! served only when the signature matches (HMAC over site and URL), the
//! caller is signed in (the viewer's cookie), and the URL's origin is one of
//! the site's allowed origins *now*. The server then fetches the resource
//! itself: no cookies, no `Authorization`, no `Referer`; redirects followed by
//! hand only while they stay on allowed origins (at most `proxy.max_redirects`);
//! a time limit for the whole fetch, a size limit, and a content-type
//! allow-list (images, fonts, CSS). Stylesheets are rewritten too (their
//! `url()` and `@import` resolved against the stylesheet's URL and signed the
//! same way). Responses carry `nosniff`, a strict CSP, `Content-Disposition:
//! attachment` and `Cross-Origin-Resource-Policy: same-origin`.
//!
//! An in-memory LRU cache (bounded by bytes) keeps responses that allow it
//! (`no-store`/`private` are never kept; `max-age`/`s-maxage` give the
//! freshness) and revalidates stale entries with `If-None-Match` /
//! `If-Modified-Since` (a `304` keeps the entry).
//!
//! Errors: `401` not signed in, `403` bad signature / origin not allowed /
//! redirect off the allowed origins, `413` too big, `415` type not allowed,
//! `502` upstream failed, `504` upstream too slow.

use super::AppState;
use crate::config::ProxyLimits;
use crate::rewrite::urls::{self, ProxyLinks};
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tower_sessions::Session;
use url::Url;

/// The CSP of every proxied response (a resource opened directly as a
/// document can run nothing).
pub const CSP_RESOURCE: &str =
    "default-src 'none'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
font-src 'self'; sandbox";

/// The routes of the proxy (with its client and cache).
pub fn routes(limits: ProxyLimits) -> Router<AppState> {
    Router::new()
        .route("/proxy/{site}/{sig}", get(resource))
        .layer(Extension(Arc::new(Proxy::new(limits))))
}

/// A proxy error: a status and a plain-text reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyError(pub StatusCode, pub String);

impl IntoResponse for ProxyError {
    fn into_response(self) -> Response {
        (
            self.0,
            [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
            self.1,
        )
            .into_response()
    }
}

fn err(status: StatusCode, msg: impl Into<String>) -> ProxyError {
    ProxyError(status, msg.into())
}

/// The content types served (by the media type, lower-cased), and the type
/// they are served as.
fn allowed_type(ct: &str) -> Option<&'static str> {
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    Some(match mime.as_str() {
        "image/png" => "image/png",
        "image/jpeg" | "image/jpg" | "image/pjpeg" => "image/jpeg",
        "image/gif" => "image/gif",
        "image/webp" => "image/webp",
        "image/avif" => "image/avif",
        "image/bmp" => "image/bmp",
        "image/svg+xml" => "image/svg+xml",
        "image/x-icon" | "image/vnd.microsoft.icon" => "image/x-icon",
        "font/woff" | "application/font-woff" => "font/woff",
        "font/woff2" => "font/woff2",
        "font/ttf" | "application/x-font-ttf" | "font/sfnt" => "font/ttf",
        "font/otf" | "application/x-font-otf" => "font/otf",
        "application/vnd.ms-fontobject" => "application/vnd.ms-fontobject",
        "text/css" => "text/css",
        _ => return None,
    })
}

/// One cached response.
#[derive(Clone)]
struct Entry {
    body: Bytes,
    content_type: &'static str,
    /// The final URL (after redirects): a stylesheet's base.
    final_url: Url,
    /// Origins the fetch went through (all must still be allowed).
    origins: Vec<String>,
    etag: Option<HeaderValue>,
    last_modified: Option<HeaderValue>,
    fresh_until: Instant,
    used: u64,
}

impl Entry {
    fn size(&self) -> usize {
        self.body.len() + self.final_url.as_str().len() + 256
    }
}

/// A byte-bounded LRU of responses by requested URL.
#[derive(Default)]
struct Cache {
    map: HashMap<String, Entry>,
    bytes: usize,
    clock: u64,
}

impl Cache {
    fn get(&mut self, key: &str) -> Option<Entry> {
        self.clock += 1;
        let clock = self.clock;
        self.map.get_mut(key).map(|e| {
            e.used = clock;
            e.clone()
        })
    }

    fn put(&mut self, key: String, mut e: Entry, cap: usize) {
        self.remove(&key);
        if e.size() > cap {
            return;
        }
        while self.bytes + e.size() > cap {
            let Some(oldest) = self
                .map
                .iter()
                .min_by_key(|(_, v)| v.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            self.remove(&oldest);
        }
        self.clock += 1;
        e.used = self.clock;
        self.bytes += e.size();
        self.map.insert(key, e);
    }

    fn remove(&mut self, key: &str) {
        if let Some(old) = self.map.remove(key) {
            self.bytes = self.bytes.saturating_sub(old.size());
        }
    }
}

/// The proxy's HTTP client, cache and limits.
pub struct Proxy {
    client: reqwest::Client,
    cache: Mutex<Cache>,
    limits: ProxyLimits,
}

/// What `Cache-Control` allows: `None` = do not store; else how long the
/// response stays fresh from now (`no-cache` = revalidate every time,
/// whatever `max-age` says; an upstream `Age` is subtracted).
fn freshness(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let cc = headers
        .get_all(reqwest::header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",")
        .to_ascii_lowercase();
    let mut max_age = None;
    let mut s_maxage = None;
    let mut no_cache = false;
    for d in cc.split(',').map(str::trim) {
        if d == "no-store" || d == "private" || d.starts_with("private=") {
            return None;
        }
        if d == "no-cache" || d.starts_with("no-cache=") {
            no_cache = true;
        }
        if let Some(v) = d.strip_prefix("max-age=") {
            max_age = Some(v.trim_matches('"').parse::<u64>().unwrap_or(0));
        }
        if let Some(v) = d.strip_prefix("s-maxage=") {
            s_maxage = Some(v.trim_matches('"').parse::<u64>().unwrap_or(0));
        }
    }
    if no_cache {
        return Some(Duration::ZERO);
    }
    let age = headers
        .get(reqwest::header::AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    Some(Duration::from_secs(
        s_maxage
            .or(max_age)
            .unwrap_or(0)
            .saturating_sub(age)
            .min(365 * 24 * 3600),
    ))
}

/// The outcome of one upstream round.
enum Fetched {
    /// A fresh `200` body.
    Body(Box<Entry>, Option<Duration>),
    /// `304`: the cached entry is still good, fresh for this long.
    NotModified(Option<Duration>),
}

impl Proxy {
    /// A proxy with its own client (no cookie store, no system proxy, no
    /// automatic redirects or `Referer`).
    pub fn new(limits: ProxyLimits) -> Proxy {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .referer(false)
            .no_proxy()
            .timeout(limits.timeout)
            .connect_timeout(limits.timeout)
            .user_agent(concat!("cobrowse-proxy/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Proxy {
            client,
            cache: Mutex::new(Cache::default()),
            limits,
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The resource at `url` for a site allowing `origins`: from the cache
    /// when fresh, revalidated when stale, fetched otherwise.
    async fn get(&self, url: &Url, origins: &[String]) -> Result<Entry, ProxyError> {
        let key = url.as_str().to_string();
        let cached = self.cache().get(&key);
        if let Some(e) = &cached {
            if !e.origins.iter().all(|o| origins.contains(o)) {
                return Err(err(
                    StatusCode::FORBIDDEN,
                    "the resource redirects off the site's allowed origins",
                ));
            }
            if Instant::now() < e.fresh_until {
                return Ok(e.clone());
            }
        }
        let deadline = self.limits.timeout;
        let fetched = tokio::time::timeout(deadline, self.fetch(url, origins, cached.as_ref()))
            .await
            .map_err(|_| {
                err(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!("the origin did not answer within {deadline:?}"),
                )
            })??;
        match (fetched, cached) {
            (Fetched::NotModified(fresh), Some(mut e)) => {
                match fresh {
                    Some(d) => {
                        e.fresh_until = Instant::now() + d;
                        self.cache().put(key, e.clone(), self.limits.cache_bytes);
                    }
                    None => self.cache().remove(&key),
                }
                Ok(e)
            }
            (Fetched::NotModified(_), None) => Err(err(
                StatusCode::BAD_GATEWAY,
                "the origin answered 304 to an unconditional request",
            )),
            (Fetched::Body(e, fresh), _) => {
                let mut e = *e;
                match fresh {
                    Some(d)
                        if d > Duration::ZERO || e.etag.is_some() || e.last_modified.is_some() =>
                    {
                        e.fresh_until = Instant::now() + d;
                        self.cache().put(key, e.clone(), self.limits.cache_bytes);
                    }
                    _ => self.cache().remove(&key),
                }
                Ok(e)
            }
        }
    }

    /// Fetch `url`, following redirects by hand while they stay on
    /// `origins`; conditional when `cached` has validators.
    async fn fetch(
        &self,
        url: &Url,
        origins: &[String],
        cached: Option<&Entry>,
    ) -> Result<Fetched, ProxyError> {
        let mut cur = url.clone();
        let mut seen = vec![urls::origin_of(url).unwrap_or_default()];
        for _ in 0..=self.limits.max_redirects {
            let mut req = self.client.get(cur.clone());
            if let Some(e) = cached {
                if let Some(v) = &e.etag {
                    req = req.header(reqwest::header::IF_NONE_MATCH, v.clone());
                }
                if let Some(v) = &e.last_modified {
                    req = req.header(reqwest::header::IF_MODIFIED_SINCE, v.clone());
                }
            }
            let resp = req.send().await.map_err(|e| {
                if e.is_timeout() {
                    err(
                        StatusCode::GATEWAY_TIMEOUT,
                        "the origin did not answer in time",
                    )
                } else {
                    err(
                        StatusCode::BAD_GATEWAY,
                        format!("cannot reach the origin: {}", e.without_url()),
                    )
                }
            })?;
            let status = resp.status();
            if status.is_redirection() && status != reqwest::StatusCode::NOT_MODIFIED {
                let loc = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| err(StatusCode::BAD_GATEWAY, "redirect without a Location"))?;
                let next = cur
                    .join(loc)
                    .map_err(|_| err(StatusCode::BAD_GATEWAY, "redirect to an invalid URL"))?;
                if !urls::origin_allowed(&next, origins) {
                    return Err(err(
                        StatusCode::FORBIDDEN,
                        "the origin redirects to an origin this site does not allow",
                    ));
                }
                seen.push(urls::origin_of(&next).unwrap_or_default());
                cur = next;
                continue;
            }
            if status == reqwest::StatusCode::NOT_MODIFIED {
                return Ok(Fetched::NotModified(freshness(resp.headers())));
            }
            if !status.is_success() {
                return Err(err(
                    StatusCode::BAD_GATEWAY,
                    format!("the origin answered {status}"),
                ));
            }
            let ct = resp
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let Some(content_type) = allowed_type(ct) else {
                return Err(err(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!("content type `{ct}` is not served (images, fonts and CSS only)"),
                ));
            };
            let max = self.limits.max_bytes;
            let too_big = || {
                err(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the resource is larger than {max} bytes"),
                )
            };
            if resp.content_length().is_some_and(|n| n > max as u64) {
                return Err(too_big());
            }
            let fresh = freshness(resp.headers());
            let etag = resp.headers().get(reqwest::header::ETAG).cloned();
            let last_modified = resp.headers().get(reqwest::header::LAST_MODIFIED).cloned();
            let mut resp = resp;
            let mut body: Vec<u8> = Vec::new();
            loop {
                match resp.chunk().await {
                    Ok(Some(c)) => {
                        if body.len() + c.len() > max {
                            return Err(too_big());
                        }
                        body.extend_from_slice(&c);
                    }
                    Ok(None) => break,
                    Err(e) if e.is_timeout() => {
                        return Err(err(
                            StatusCode::GATEWAY_TIMEOUT,
                            "the origin did not send the resource in time",
                        ))
                    }
                    Err(_) => {
                        return Err(err(
                            StatusCode::BAD_GATEWAY,
                            "the origin's response broke off",
                        ))
                    }
                }
            }
            seen.sort();
            seen.dedup();
            return Ok(Fetched::Body(
                Box::new(Entry {
                    body: Bytes::from(body),
                    content_type,
                    final_url: cur,
                    origins: seen,
                    etag,
                    last_modified,
                    fresh_until: Instant::now(),
                    used: 0,
                }),
                fresh,
            ));
        }
        Err(err(
            StatusCode::BAD_GATEWAY,
            format!("more than {} redirects", self.limits.max_redirects),
        ))
    }
}

/// The query of a proxy URL.
#[derive(Debug, Deserialize)]
pub struct ProxyQuery {
    u: String,
}

/// `GET /proxy/{site}/{sig}?u=`.
async fn resource(
    State(state): State<AppState>,
    Extension(proxy): Extension<Arc<Proxy>>,
    session: Session,
    Path((site_key, sig)): Path<(String, String)>,
    Query(q): Query<ProxyQuery>,
) -> Result<Response, ProxyError> {
    let internal = |e: &dyn std::fmt::Display| {
        tracing::warn!(error = %e, "resource proxy");
        err(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    };
    let user = super::auth::cookie_user(&state, &session)
        .await
        .map_err(|e| internal(&e))?;
    if user.is_none() {
        return Err(err(StatusCode::UNAUTHORIZED, "sign in to load resources"));
    }
    let key = state
        .store
        .picker_secret()
        .await
        .map_err(|e| internal(&e))?;
    if !urls::verify(&key, &site_key, &q.u, &sig) {
        return Err(err(StatusCode::FORBIDDEN, "bad signature"));
    }
    let site = state
        .store
        .site_by_key(&site_key)
        .await
        .map_err(|e| internal(&e))?
        .ok_or_else(|| err(StatusCode::FORBIDDEN, "the site no longer exists"))?;
    let url = Url::parse(&q.u).map_err(|_| err(StatusCode::BAD_REQUEST, "invalid URL"))?;
    if !urls::origin_allowed(&url, &site.origins) || url.fragment().is_some() {
        return Err(err(
            StatusCode::FORBIDDEN,
            "the URL's origin is not one of the site's allowed origins",
        ));
    }
    let entry = proxy.get(&url, &site.origins).await?;
    let body = if entry.content_type == "text/css" {
        // a stylesheet may be megabytes: rewritten off the async workers
        let links = ProxyLinks::new(&site.key, site.origins.clone(), key);
        let (css, base) = (entry.body.clone(), entry.final_url.clone());
        let out = tokio::task::spawn_blocking(move || {
            links.css_at(&String::from_utf8_lossy(&css), Some(&base))
        })
        .await
        .map_err(|e| internal(&e))?;
        Bytes::from(out)
    } else {
        entry.body.clone()
    };
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(if entry.content_type == "text/css" {
            "text/css; charset=utf-8"
        } else {
            entry.content_type
        }),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP_RESOURCE),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment"),
    );
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=60"),
    );
    Ok((StatusCode::OK, h, body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_images_fonts_and_css_are_served() {
        assert_eq!(allowed_type("image/PNG; x=y"), Some("image/png"));
        assert_eq!(allowed_type("text/css;charset=utf-8"), Some("text/css"));
        assert_eq!(allowed_type("font/woff2"), Some("font/woff2"));
        assert_eq!(allowed_type("text/html"), None);
        assert_eq!(allowed_type("application/javascript"), None);
        assert_eq!(allowed_type(""), None);
    }

    #[test]
    fn cache_control_decides_storing_and_freshness() {
        let h = |v: &str| {
            let mut m = reqwest::header::HeaderMap::new();
            m.insert(reqwest::header::CACHE_CONTROL, v.parse().unwrap());
            m
        };
        assert_eq!(freshness(&h("no-store")), None);
        assert_eq!(freshness(&h("private, max-age=60")), None);
        assert_eq!(freshness(&h("max-age=60")), Some(Duration::from_secs(60)));
        assert_eq!(
            freshness(&h("max-age=60, s-maxage=5")),
            Some(Duration::from_secs(5))
        );
        assert_eq!(freshness(&h("no-cache")), Some(Duration::ZERO));
        assert_eq!(
            freshness(&h("no-cache, max-age=60")),
            Some(Duration::ZERO),
            "no-cache wins over max-age in any order"
        );
        assert_eq!(freshness(&h("max-age=60, no-cache")), Some(Duration::ZERO));
        let mut aged = h("max-age=60");
        aged.insert(reqwest::header::AGE, "50".parse().unwrap());
        assert_eq!(freshness(&aged), Some(Duration::from_secs(10)));
        aged.insert(reqwest::header::AGE, "500".parse().unwrap());
        assert_eq!(freshness(&aged), Some(Duration::ZERO));
    }

    #[test]
    fn the_cache_evicts_least_recently_used_within_its_bytes() {
        let e = |n: usize| Entry {
            body: Bytes::from(vec![0u8; n]),
            content_type: "image/png",
            final_url: Url::parse("https://a.example/").unwrap(),
            origins: vec![],
            etag: None,
            last_modified: None,
            fresh_until: Instant::now(),
            used: 0,
        };
        let mut c = Cache::default();
        let cap = 3 * e(1000).size();
        c.put("a".into(), e(1000), cap);
        c.put("b".into(), e(1000), cap);
        c.put("c".into(), e(1000), cap);
        assert!(c.get("a").is_some());
        c.put("d".into(), e(1000), cap);
        assert!(c.get("b").is_none(), "least recently used goes first");
        assert!(c.get("a").is_some() && c.get("d").is_some());
        assert!(c.bytes <= cap);
        c.put("huge".into(), e(10_000), cap);
        assert!(c.get("huge").is_none());
    }
}
