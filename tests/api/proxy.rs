//! The resource proxy over real sockets (issue 8 item 1): the agent's copy of
//! a page names its images, stylesheets, fonts and SVG references only as
//! signed `/proxy/{site}/{sig}?u=…` links on the co-browse server, and the
//! server fetches them from the site's allowed origin only.
//!
//! Each test runs the real server on port 0, a small axum "origin" server on
//! a loopback port (the site's allowed origin; it records every request it
//! gets) and a second listener on another loopback port that the site does
//! not allow (it counts every connection, and must see none).

use crate::common::{spawn_app_with, TestApp, TestOptions, WsClient, AGENT_PASSWORD};
use axum::body::{Body, Bytes};
use axum::extract::{OriginalUri, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use cobrowse::config::ProxyLimits;
use cobrowse::rewrite::urls::proxy_path;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

/// The site whose allowed origin is the origin server.
const SITE: &str = "shop";
/// The proxy's size limit in these tests.
const MAX_BYTES: usize = 64 * 1024;

/// A valid `w`×`h` opaque PNG.
pub fn png(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut wr = enc.write_header().unwrap();
        let data: Vec<u8> = (0..w * h).flat_map(|_| [200u8, 40, 40]).collect();
        wr.write_image_data(&data).unwrap();
    }
    out
}

/// A loopback listener that counts every connection made to it; returns
/// its base URL (`http://127.0.0.1:PORT`) and the count.
pub async fn tripwire() -> (String, Arc<AtomicUsize>, JoinHandle<()>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let task = tokio::spawn(async move {
        while let Ok((sock, _)) = l.accept().await {
            h.fetch_add(1, Ordering::SeqCst);
            drop(sock);
        }
    });
    (base, hits, task)
}

/// Requests the origin got: path (with query) and headers.
type Log = Arc<Mutex<Vec<(String, HeaderMap)>>>;

#[derive(Clone)]
struct OriginState {
    log: Log,
    /// The host the site does not allow (redirect target, named in CSS).
    other: String,
}

/// The stylesheet the origin serves at `/style.css`.
fn stylesheet(other: &str) -> String {
    format!(
        "@import \"more.css\";\n.a {{ background: url(img/bg.png) }}\n\
         .b {{ background: url('{other}/x.png') }}\n\
         @import url({other}/evil.css);\n\
         @font-face {{ font-family: F; src: url(/font.woff2) format('woff2') }}\n"
    )
}

fn typed(ct: &'static str, cache: &'static str, body: impl Into<Body>) -> Response {
    (
        [(header::CONTENT_TYPE, ct), (header::CACHE_CONTROL, cache)],
        body.into(),
    )
        .into_response()
}

async fn origin(
    State(st): State<OriginState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    // the page lives under `/shop/`: its relative URLs name the same files
    let path = uri.path();
    let path = path.strip_prefix("/shop").unwrap_or(path).to_string();
    st.log
        .lock()
        .unwrap()
        .push((uri.to_string(), headers.clone()));
    match path.as_str() {
        "/img.png" | "/img/bg.png" | "/cached.png" | "/headers.png" => {
            typed("image/png", "max-age=600", png(3, 2))
        }
        "/nostore.png" => typed("image/png", "no-store", png(3, 2)),
        "/etag.png" => {
            let tag = "\"v1\"";
            if headers
                .get(header::IF_NONE_MATCH)
                .is_some_and(|v| v.as_bytes() == tag.as_bytes())
            {
                (
                    StatusCode::NOT_MODIFIED,
                    [(header::ETAG, tag), (header::CACHE_CONTROL, "max-age=0")],
                )
                    .into_response()
            } else {
                (
                    [
                        (header::CONTENT_TYPE, "image/png"),
                        (header::ETAG, tag),
                        (header::CACHE_CONTROL, "max-age=0"),
                    ],
                    png(5, 5),
                )
                    .into_response()
            }
        }
        "/style.css" => typed("text/css; charset=utf-8", "no-store", stylesheet(&st.other)),
        "/more.css" => typed(
            "text/css",
            "no-store",
            ".m { background: url(img.png) }".to_string(),
        ),
        "/font.woff2" => typed("font/woff2", "no-store", b"wOF2fake".to_vec()),
        "/page.html" => typed("text/html", "no-store", "<p>hi</p>".to_string()),
        "/app.js" => typed("application/javascript", "no-store", "alert(1)".to_string()),
        "/big.png" => typed("image/png", "no-store", vec![0u8; MAX_BYTES + 1]),
        "/big-stream.png" => {
            // no Content-Length: the limit must hold while reading
            let chunks = (0..8).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![0u8; 16 * 1024])));
            typed(
                "image/png",
                "no-store",
                Body::from_stream(futures_util::stream::iter(chunks)),
            )
        }
        "/slow.png" => {
            // never answers: the proxy's time limit must end the wait
            std::future::pending::<()>().await;
            StatusCode::OK.into_response()
        }
        "/to-other.png" => (
            StatusCode::FOUND,
            [(header::LOCATION, format!("{}/x.png", st.other))],
        )
            .into_response(),
        "/to-self.png" => (StatusCode::FOUND, [(header::LOCATION, "/img.png")]).into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The origin server; stops when dropped.
struct Origin {
    base: String,
    log: Log,
    task: JoinHandle<()>,
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Origin {
    async fn start(other: &str) -> Origin {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", l.local_addr().unwrap());
        let log: Log = Arc::default();
        let app = Router::new().fallback(origin).with_state(OriginState {
            log: log.clone(),
            other: other.to_string(),
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        });
        Origin { base, log, task }
    }

    /// How many requests for `path` (path and query) the origin got.
    fn hits(&self, path: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .count()
    }

    /// Headers of every request for `path`.
    fn requests(&self, path: &str) -> Vec<HeaderMap> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, h)| h.clone())
            .collect()
    }
}

/// Server, origin, the other host and an agent signed in with a cookie.
struct Scene {
    app: TestApp,
    origin: Origin,
    /// `http://127.0.0.1:PORT` of the host the site does not allow.
    other: String,
    other_hits: Arc<AtomicUsize>,
    _tripwire: JoinHandle<()>,
    /// A client holding a signed-in agent's cookie.
    agent: reqwest::Client,
    /// Its cookies.
    jar: Arc<reqwest::cookie::Jar>,
    key: Vec<u8>,
}

impl Drop for Scene {
    fn drop(&mut self) {
        self._tripwire.abort();
    }
}

/// The CSRF token embedded in a form.
fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("csrf field") + marker.len();
    html[start..start + 64].to_owned()
}

/// A new cookie-holding client signed in as `agent1`, and its cookies.
async fn signed_in(app: &TestApp) -> (reqwest::Client, Arc<reqwest::cookie::Jar>) {
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let http = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = http.get(app.url("/login")).send().await.unwrap();
    let csrf = csrf_of(&page.text().await.unwrap());
    let r = http
        .post(app.url("/login"))
        .form(&[
            ("name", "agent1"),
            ("password", AGENT_PASSWORD),
            ("csrf", &csrf),
            ("next", "/agent"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "sign-in failed");
    (http, jar)
}

impl Scene {
    async fn new() -> Scene {
        Scene::with(ProxyLimits {
            max_bytes: MAX_BYTES,
            ..ProxyLimits::default()
        })
        .await
    }

    async fn with(proxy: ProxyLimits) -> Scene {
        let (other, other_hits, tripwire) = tripwire().await;
        let origin = Origin::start(&other).await;
        let app = spawn_app_with(TestOptions {
            proxy,
            ..TestOptions::default()
        })
        .await;
        app.state
            .store
            .create_site(SITE, "Shop", std::slice::from_ref(&origin.base), "test")
            .await
            .unwrap();
        let (agent, jar) = signed_in(&app).await;
        let key = app.state.store.picker_secret().await.unwrap();
        Scene {
            app,
            origin,
            other,
            other_hits,
            _tripwire: tripwire,
            agent,
            jar,
            key,
        }
    }

    /// The signed proxy link (absolute) for `url`, as the render makes it.
    fn link_for(&self, url: &str) -> String {
        self.app.url(&proxy_path(&self.key, SITE, url))
    }

    /// The signed proxy link for `path` on the origin.
    fn link(&self, path: &str) -> String {
        self.link_for(&format!("{}{path}", self.origin.base))
    }

    /// Fetch `path` of the origin through the proxy as the signed-in agent.
    async fn get(&self, path: &str) -> reqwest::Response {
        self.agent.get(self.link(path)).send().await.unwrap()
    }

    fn other_hits(&self) -> usize {
        self.other_hits.load(Ordering::SeqCst)
    }
}

/// Every `url(…)` in CSS as the render writes it (`url("…")`).
fn css_urls(css: &str) -> Vec<String> {
    css.split("url(")
        .skip(1)
        .map(|rest| {
            let rest = rest.trim_start_matches(['"', '\'']);
            let end = rest.find(['"', '\'', ')']).unwrap_or(rest.len());
            rest[..end].to_string()
        })
        .collect()
}

/// Every resource URL of an agent node tree (or op list): URL attributes,
/// `srcset` candidates and `url()` in `style` attributes, `<style>` text
/// and sheets.
fn resource_urls(v: &Value, out: &mut Vec<String>) {
    let attr = |name: &str, val: &str, out: &mut Vec<String>| match name {
        "src" | "href" | "poster" | "xlink:href" => out.push(val.to_string()),
        "srcset" => out.extend(
            val.split(',')
                .filter_map(|c| c.split_whitespace().next())
                .map(str::to_string),
        ),
        "style" => out.extend(css_urls(val)),
        _ => {}
    };
    match v {
        Value::Object(m) => {
            if let Some(Value::Object(attrs)) = m.get("attrs") {
                for (name, val) in attrs {
                    attr(name, val.as_str().unwrap_or_default(), out);
                }
            }
            if m.get("op").is_some_and(|o| o == "attr") {
                let name = m["name"].as_str().unwrap_or_default();
                attr(name, m["value"].as_str().unwrap_or_default(), out);
            }
            for k in ["text", "css"] {
                if let Some(Value::String(s)) = m.get(k) {
                    out.extend(css_urls(s));
                }
            }
            for (k, c) in m {
                if k != "attrs" {
                    resource_urls(c, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|c| resource_urls(c, out)),
        _ => {}
    }
}

/// The `u` parameter of a proxy link.
fn target_of(link: &str) -> String {
    let u = url::Url::parse(&format!("http://x{link}")).unwrap();
    u.query_pairs()
        .find(|(k, _)| k == "u")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// A customer page on the origin naming resources every way a page can.
fn snapshot(origin: &str, other: &str) -> Value {
    let css = format!(
        "@import 'more.css'; .a {{ background: url(img/bg.png) }} \
         .x {{ background: url({other}/x.png) }} \
         @font-face {{ font-family: F; src: url(font.woff2) format('woff2') }}"
    );
    json!({
        "t": "snapshot",
        "url": format!("{origin}/shop/page.html"),
        "title": "Shop",
        "viewport": {"w": 1280.0, "h": 800.0},
        "root": {"id": 1, "type": "document", "children": [
            {"id": 2, "type": "doctype", "name": "html"},
            {"id": 3, "type": "element", "tag": "html", "children": [
                {"id": 4, "type": "element", "tag": "head", "children": [
                    {"id": 5, "type": "element", "tag": "link",
                     "attrs": {"rel": "stylesheet", "href": "/style.css"}},
                    {"id": 6, "type": "element", "tag": "style", "children": [
                        {"id": 7, "type": "text", "text": css}
                    ]}
                ]},
                {"id": 8, "type": "element", "tag": "body", "children": [
                    {"id": 9, "type": "element", "tag": "img", "attrs": {
                        "src": "/img.png",
                        "srcset": format!("/img.png 1x, /cached.png 2x, {other}/s.png 3x")
                    }},
                    {"id": 10, "type": "element", "tag": "div",
                     "attrs": {"style": "background: url(/img.png) no-repeat"}},
                    {"id": 11, "type": "element", "tag": "video", "attrs": {"poster": "/img.png"}},
                    {"id": 12, "type": "element", "tag": "svg", "ns": "svg", "children": [
                        {"id": 13, "type": "element", "tag": "image", "ns": "svg",
                         "attrs": {"href": "/img.png", "width": "3", "height": "2"}},
                        {"id": 14, "type": "element", "tag": "use", "ns": "svg",
                         "attrs": {"href": "sprite.svg#i"}}
                    ]},
                    {"id": 15, "type": "element", "tag": "img", "attrs": {"src": format!("{other}/evil.png")}}
                ]}
            ]},
            {"id": 16, "type": "sheet",
             "css": format!(".s {{ background: url(/img.png) }} .t {{ background: url({other}/t.png) }}")}
        ]}
    })
}

/// A session on the site with the customer's snapshot sent and `agent1`
/// joined (bearer token); returns the customer, the agent and the agent's
/// snapshot.
async fn joined(s: &Scene) -> (WsClient, WsClient, Value) {
    let (id, token) = s
        .app
        .create_session_with(
            json!({"site": SITE, "url": format!("{}/shop/page.html", s.origin.base)}),
        )
        .await;
    let mut c = s.app.customer(&id, &token).await;
    c.recv_type("session").await;
    c.send(snapshot(&s.origin.base, &s.other)).await;
    let mut a = s.app.agent(&id).await;
    let snap = a.recv_type("snapshot").await;
    (c, a, snap)
}

/// The element with node id `id` in an agent tree.
fn node(v: &Value, id: u64) -> Option<&Value> {
    if v["id"] == id {
        return Some(v);
    }
    v["children"].as_array()?.iter().find_map(|c| node(c, id))
}

#[tokio::test]
async fn replica_resource_links_point_at_the_proxy_and_serve_the_origins_bytes() {
    let s = Scene::new().await;
    let (_c, _a, snap) = joined(&s).await;
    let text = snap.to_string();
    let other_host = s.other.trim_start_matches("http://");
    assert!(
        !text.contains(other_host),
        "a URL on the host the site does not allow reached the agent: {text}"
    );
    let mut links = Vec::new();
    resource_urls(&snap["root"], &mut links);
    for l in &links {
        assert!(
            l.starts_with(&format!("/proxy/{SITE}/")),
            "a resource link the agent got does not point at the proxy: {l}"
        );
    }
    let targets: Vec<String> = links.iter().map(|l| target_of(l)).collect();
    let o = &s.origin.base;
    for want in [
        format!("{o}/style.css"),       // <link rel=stylesheet>
        format!("{o}/shop/more.css"),   // @import in <style>
        format!("{o}/shop/img/bg.png"), // url() in <style>
        format!("{o}/shop/font.woff2"), // @font-face
        format!("{o}/img.png"),         // img src, srcset, style=, poster, <image>, sheet
        format!("{o}/cached.png"),      // srcset
        format!("{o}/shop/sprite.svg"), // <use href>
    ] {
        assert!(targets.contains(&want), "{want} not among {targets:?}");
    }
    let img = node(&snap["root"], 9).unwrap();
    assert_eq!(
        img["attrs"]["srcset"]
            .as_str()
            .unwrap()
            .matches("/proxy/")
            .count(),
        2
    );
    assert!(node(&snap["root"], 14).unwrap()["attrs"]["href"]
        .as_str()
        .unwrap()
        .ends_with("#i"));
    assert!(
        node(&snap["root"], 15).unwrap()["attrs"]
            .get("src")
            .is_none(),
        "the foreign image keeps no src"
    );

    // The agent's link serves the origin's bytes, with the resource headers.
    let src = img["attrs"]["src"].as_str().unwrap();
    let r = s.agent.get(s.app.url(src)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "image/png");
    assert_eq!(h["x-content-type-options"], "nosniff");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("sandbox"),
        "{csp}"
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), png(3, 2).as_slice());
    // Every other link the agent got is served too.
    for l in &links {
        let r = s.agent.get(s.app.url(l)).send().await.unwrap();
        let want = if l.contains("sprite.svg") { 502 } else { 200 };
        assert_eq!(r.status(), want, "{l} → {}", target_of(l));
    }
    assert_eq!(
        s.other_hits(),
        0,
        "the host the site does not allow was contacted"
    );
}

#[tokio::test]
async fn style_text_and_sheets_changed_by_ops_are_rewritten_to_the_proxy() {
    let s = Scene::new().await;
    let (mut c, mut a, _) = joined(&s).await;
    let other = &s.other;
    let other_host = other.trim_start_matches("http://");
    let check = |ops: &Value, want: &str| {
        let text = ops.to_string();
        assert!(
            !text.contains(other_host),
            "foreign host reached the agent: {text}"
        );
        let mut links = Vec::new();
        resource_urls(ops, &mut links);
        assert!(!links.is_empty(), "no resource link in {text}");
        for l in &links {
            assert!(l.starts_with(&format!("/proxy/{SITE}/")), "{l} in {text}");
        }
        let targets: Vec<String> = links.iter().map(|l| target_of(l)).collect();
        assert!(
            targets.contains(&format!("{}{want}", s.origin.base)),
            "{want} not among {targets:?}"
        );
    };
    // the <style> element's text
    c.send(
        json!({"t": "mutations", "ops": [{"op": "text", "id": 7, "text": format!(
            "@import url({other}/i.css); @import \"/new.css\"; .b {{ background: url(new.png) }}"
        )}]}),
    )
    .await;
    let m = a.recv_type("mutations").await;
    check(&m["ops"], "/shop/new.png");
    check(&m["ops"], "/new.css");
    // a sheet built through the CSSOM
    c.send(
        json!({"t": "mutations", "ops": [{"op": "text", "id": 16, "text": format!(
            ".u {{ background: url(/sheet.png) }} .v {{ background: url({other}/v.png) }}"
        )}]}),
    )
    .await;
    let m = a.recv_type("mutations").await;
    check(&m["ops"], "/sheet.png");
    // an inserted <style> and an attribute set to a resource
    c.send(json!({"t": "mutations", "ops": [
        {"op": "insert", "parent": 8, "before": null, "node": {"id": 20, "type": "element",
         "tag": "style", "children": [{"id": 21, "type": "text",
         "text": format!(".w {{ background: url(w.png) }} .y {{ background: url({other}/y.png) }}")}]}},
        {"op": "attr", "id": 9, "name": "src", "value": "/attr.png"}
    ]}))
    .await;
    let m = a.recv_type("mutations").await;
    check(&m["ops"], "/shop/w.png");
    check(&m["ops"], "/attr.png");
    c.send(json!({"t": "mutations", "ops": [
        {"op": "attr", "id": 9, "name": "src", "value": format!("{other}/z.png")}
    ]}))
    .await;
    let m = a.recv_type("mutations").await;
    assert!(!m.to_string().contains(other_host), "{m}");
    assert_eq!(s.other_hits(), 0);
}

#[tokio::test]
async fn the_proxy_requires_a_signed_in_agent() {
    let s = Scene::new().await;
    let anon = reqwest::Client::new();
    let r = anon.get(s.link("/img.png")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // a bearer token is not a viewer's cookie
    let r = anon
        .get(s.link("/img.png"))
        .bearer_auth(&s.app.agent_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(s.origin.hits("/img.png"), 0);
    assert_eq!(s.get("/img.png").await.status(), 200);
}

#[tokio::test]
async fn a_tampered_signature_is_refused() {
    let s = Scene::new().await;
    let good = s.link("/img.png");
    let sig_start = good.find(&format!("/proxy/{SITE}/")).unwrap() + SITE.len() + 8;
    let mut bad = good.clone();
    // one letter changed: still well-formed, no longer the signature
    let flipped = if &good[sig_start..=sig_start] == "a" {
        "b"
    } else {
        "a"
    };
    bad.replace_range(sig_start..=sig_start, flipped);
    assert_eq!(s.agent.get(&bad).send().await.unwrap().status(), 403);
    // the signature of one URL does not serve another
    let other_url = good.replace("/img.png", "/nostore.png");
    assert_eq!(s.agent.get(&other_url).send().await.unwrap().status(), 403);
    // nor the same URL for another site
    let other_site = good.replace(&format!("/proxy/{SITE}/"), "/proxy/demo/");
    assert_eq!(s.agent.get(&other_site).send().await.unwrap().status(), 403);
    assert_eq!(s.origin.hits("/img.png") + s.origin.hits("/nostore.png"), 0);
    assert_eq!(s.agent.get(&good).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_url_on_a_host_the_site_does_not_allow_is_refused_without_contacting_it() {
    let s = Scene::new().await;
    // validly signed (as if once allowed), but not among the origins now
    let link = s.link_for(&format!("{}/x.png", s.other));
    let r = s.agent.get(&link).send().await.unwrap();
    assert_eq!(r.status(), 403);
    // a cached resource stops being served when its origin is no longer allowed
    assert_eq!(s.get("/cached.png").await.status(), 200);
    s.app
        .state
        .store
        .set_origins(SITE, std::slice::from_ref(&s.other), "test")
        .await
        .unwrap();
    assert_eq!(s.get("/cached.png").await.status(), 403);
    assert_eq!(s.other_hits(), 0, "the other host was contacted");
}

#[tokio::test]
async fn a_redirect_off_the_allowed_origins_is_refused_without_contacting_the_other_host() {
    let s = Scene::new().await;
    let r = s.get("/to-other.png").await;
    assert_eq!(r.status(), 403);
    assert_eq!(s.origin.hits("/to-other.png"), 1);
    assert_eq!(s.other_hits(), 0, "the redirect target was contacted");
    // a redirect that stays on the origin is followed
    let r = s.get("/to-self.png").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), png(3, 2).as_slice());
}

#[tokio::test]
async fn no_cookie_authorization_or_referer_reaches_the_origin() {
    let s = Scene::new().await;
    use reqwest::cookie::CookieStore;
    let ours = s
        .jar
        .cookies(&s.app.base.parse().unwrap())
        .expect("the agent's cookie");
    let r = s
        .agent
        .get(s.link("/headers.png"))
        .header(
            "cookie",
            format!("{}; origin_session=secret", ours.to_str().unwrap()),
        )
        .header("authorization", "Bearer secret")
        .header("referer", format!("{}/agent", s.app.base))
        .header("x-forwarded-for", "10.9.8.7")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let reqs = s.origin.requests("/headers.png");
    assert_eq!(reqs.len(), 1);
    let h = &reqs[0];
    for name in [
        "cookie",
        "authorization",
        "referer",
        "x-forwarded-for",
        "origin",
    ] {
        assert!(h.get(name).is_none(), "{name} reached the origin: {h:?}");
    }
    assert!(!format!("{h:?}").contains("secret"), "{h:?}");
}

#[tokio::test]
async fn a_resource_over_the_size_limit_is_refused() {
    let s = Scene::new().await;
    assert_eq!(s.get("/big.png").await.status(), 413);
    assert_eq!(s.get("/big-stream.png").await.status(), 413);
}

#[tokio::test]
async fn an_origin_slower_than_the_time_limit_gets_504() {
    let s = Scene::with(ProxyLimits {
        timeout: Duration::from_millis(300),
        ..ProxyLimits::default()
    })
    .await;
    let r = s.get("/slow.png").await;
    assert_eq!(r.status(), 504);
}

#[tokio::test]
async fn content_types_other_than_images_fonts_and_css_are_refused() {
    let s = Scene::new().await;
    for path in ["/page.html", "/app.js"] {
        let r = s.get(path).await;
        assert_eq!(r.status(), 415, "{path}");
        assert!(!r.text().await.unwrap().contains("alert"));
    }
    let r = s.get("/font.woff2").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "font/woff2");
}

#[tokio::test]
async fn a_fresh_resource_is_served_from_the_cache_without_hitting_the_origin() {
    let s = Scene::new().await;
    for _ in 0..2 {
        let r = s.get("/cached.png").await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.bytes().await.unwrap().as_ref(), png(3, 2).as_slice());
    }
    assert_eq!(s.origin.hits("/cached.png"), 1);
}

#[tokio::test]
async fn a_stale_resource_with_an_etag_is_revalidated_and_a_304_serves_the_cached_bytes() {
    let s = Scene::new().await;
    for _ in 0..3 {
        let r = s.get("/etag.png").await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.bytes().await.unwrap().as_ref(), png(5, 5).as_slice());
    }
    let reqs = s.origin.requests("/etag.png");
    assert_eq!(reqs.len(), 3, "a stale entry is asked about every time");
    assert!(reqs[0].get("if-none-match").is_none());
    for h in &reqs[1..] {
        assert_eq!(h["if-none-match"], "\"v1\"", "revalidated with the ETag");
    }
}

#[tokio::test]
async fn a_no_store_resource_is_never_cached() {
    let s = Scene::new().await;
    for _ in 0..2 {
        assert_eq!(s.get("/nostore.png").await.status(), 200);
    }
    let reqs = s.origin.requests("/nostore.png");
    assert_eq!(reqs.len(), 2);
    assert!(reqs[1].get("if-none-match").is_none());
}

#[tokio::test]
async fn a_proxied_stylesheet_has_its_urls_and_imports_rewritten_to_signed_proxy_links() {
    let s = Scene::new().await;
    let r = s.get("/style.css").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
    let css = r.text().await.unwrap();
    assert!(
        !css.contains(s.other.trim_start_matches("http://")),
        "foreign URL kept: {css}"
    );
    assert!(css.contains("@import url(\"/proxy/"), "{css}");
    let links = css_urls(&css);
    let targets: Vec<String> = links.iter().map(|l| target_of(l)).collect();
    let o = &s.origin.base;
    for want in [
        format!("{o}/more.css"),
        format!("{o}/img/bg.png"),
        format!("{o}/font.woff2"),
    ] {
        assert!(
            targets.contains(&want),
            "{want} not among {targets:?} in {css}"
        );
    }
    // every link points at the proxy and is signed: each one is served
    for l in &links {
        assert!(l.starts_with(&format!("/proxy/{SITE}/")), "{l} in {css}");
        let r = s.agent.get(s.app.url(l)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{l}");
        if l.contains("more.css") {
            let inner = r.text().await.unwrap();
            let inner_links = css_urls(&inner);
            assert_eq!(inner_links.len(), 1, "{inner}");
            assert_eq!(target_of(&inner_links[0]), format!("{o}/img.png"));
        }
    }
    assert_eq!(s.other_hits(), 0);
}
