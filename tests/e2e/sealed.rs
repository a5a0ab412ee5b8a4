//! Issue 8 items 1 and 2 in Chromium: while the agent views a hostile page,
//! the agent's browser connects to no other host (a listener on another
//! loopback port records every connection and must see none), and clobbering
//! names in the customer's markup cannot break the viewer's DOM building.
//! A page whose image and stylesheet live on the site's allowed origin shows
//! them in the replica, fetched through the server's resource proxy.

use super::stage::{Stage, REPLICA};
use crate::api::proxy::png;
use crate::wait_for;
use axum::extract::{OriginalUri, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A loopback listener that counts every connection made to it.
async fn tripwire() -> (u16, Arc<AtomicUsize>, Arc<std::sync::Mutex<Vec<String>>>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (h, w) = (hits.clone(), seen.clone());
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = l.accept().await {
            h.fetch_add(1, Ordering::SeqCst);
            let w = w.clone();
            tokio::spawn(async move {
                use tokio::io::AsyncReadExt;
                let mut buf = vec![0u8; 2048];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).into_owned();
                if let Ok(mut v) = w.lock() {
                    v.push(head);
                }
            });
        }
    });
    (port, hits, seen)
}

/// Markup naming the tripwire in the ways a page can make a browser fetch.
/// Frames and plugins name no URL here: the *customer's* Chromium connects
/// to an `<iframe src>`/`<object data>` host even where its CSP refuses the
/// load, which would trip the listener for the wrong browser (the agent's
/// replica never gets those URLs: see `relay::inert`).
fn hostile(port: u16) -> String {
    let u = format!("http://127.0.0.1:{port}");
    format!(
        r##"<div id="hostile">
<base href="{u}/base/">
<img src="{u}/img.png"><img src="rel.png"><img srcset="{u}/a.png 1x, {u}/b.png 2x">
<picture><source srcset="{u}/s.webp"><img src="{u}/p.png"></picture>
<video poster="{u}/poster.png"><source src="{u}/v.mp4"></video>
<link rel="stylesheet" href="{u}/x.css"><link rel="prefetch" href="{u}/pf">
<link rel="preload" as="image" href="{u}/pl.png"><link rel="icon" href="{u}/i.ico">
<style>@import url("{u}/imp.css"); .bg {{ background: url({u}/bg.png) }}
@font-face {{ font-family: F; src: url({u}/f.woff) }} .f {{ font-family: F }}
input[value^="a"] {{ background: url({u}/exfil-a) }}</style>
<div class="bg f" style="background-image: url({u}/inline.png)">styled</div>
<input value="abc">
<svg><image href="{u}/svg.png" width="5" height="5"/><use href="{u}/use.svg#x"/>
<image xlink:href="{u}/xlink.png" width="5" height="5"/></svg>
<iframe srcdoc="x"></iframe><object></object><embed>
<table background="{u}/table.png"><tr><td>t</td></tr></table>
<a href="{u}/link" ping="{u}/ping">link</a>
<img name="createElement"><img name="createTextNode"><img name="implementation">
<form id="body" name="head"><input name="setAttribute"><input name="parentNode">
<input name="firstChild"><input name="insertBefore"></form>
<embed name="documentElement"><img id="readyMarker" src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">
</div>"##
    )
}

#[tokio::test]
async fn agent_browser_contacts_no_other_host_and_clobbering_names_do_not_break_the_replica() {
    let (port, hits, seen) = tripwire().await;
    let s = Stage::new().await;
    s.start_and_join("/demo/").await;
    let html = serde_json::to_string(&hostile(port)).unwrap();
    let _: bool = s
        .customer
        .eval(&format!(
            "document.body.insertAdjacentHTML('beforeend', {html}); return true;"
        ))
        .await;
    wait_for!("the hostile markup in the replica", {
        s.agent
            .try_eval::<bool>(&format!(
                "{REPLICA} return !!d.getElementById('readyMarker');"
            ))
            .await
            .and_then(|ok| if ok { Ok(()) } else { Err("not yet".into()) })
    });
    // Clobbering names are in the replica: later mutations still apply.
    let _: bool = s
        .customer
        .eval(
            "var p = Document.prototype.createElement.call(document, 'p'); \
             p.id = 'afterClobber'; p.textContent = 'still building'; \
             Node.prototype.appendChild.call(document.getElementById('hostile'), p); return true;",
        )
        .await;
    wait_for!("a mutation applied after the clobbering names", {
        s.agent
            .try_eval::<String>(&format!(
                "{REPLICA} var p = d.getElementById('afterClobber'); return p ? p.textContent : '';"
            ))
            .await
            .and_then(|t| {
                if t == "still building" {
                    Ok(())
                } else {
                    Err(t)
                }
            })
    });
    // Every image of the replica has settled (loaded or refused) ...
    wait_for!("the replica's images to settle", {
        s.agent
            .try_eval::<bool>(&format!(
                "{REPLICA} return [].every.call(d.images, function (i) {{ return i.complete; }}) \
                 && d.readyState === 'complete';"
            ))
            .await
            .and_then(|ok| if ok { Ok(()) } else { Err("loading".into()) })
    });
    // ... and the replica holds no script, no working frame or plugin.
    let inert: bool = s
        .agent
        .eval(&format!(
            "{REPLICA} return d.querySelectorAll('script,object,embed,base').length === 0 \
             && [].every.call(d.querySelectorAll('iframe'), function (f) {{ \
                  var sb = f.getAttribute('sandbox'); \
                  return (sb === '' || sb === 'allow-same-origin') && !f.hasAttribute('src'); }});"
        ))
        .await;
    assert!(
        inert,
        "the replica holds script, a plugin, <base> or a live frame"
    );
    let n = hits.load(Ordering::SeqCst);
    if n > 0 {
        wait_for!("the stray request's head", {
            let got = seen.lock().map(|v| v.len()).unwrap_or(0);
            if got >= n {
                Ok(())
            } else {
                Err(format!("{got}"))
            }
        });
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a browser connected to the other loopback host: {:?}",
        seen.lock().map(|v| v.clone()).unwrap_or_default()
    );
    s.finish().await;
}

/// The allowed origins of the proxy test: a shop page (with the snippet)
/// whose image and stylesheets live on the origin, naming the tripwire too.
/// The same server is a second allowed origin as `localhost`: the snippet
/// cannot read that stylesheet's rules, so the replica keeps its `<link>`
/// and loads it through the proxy. The page's own CSP keeps the
/// *customer's* browser off the tripwire, so only the agent's browser (or
/// the proxy) could reach it.
#[derive(Clone)]
struct ShopOrigin {
    cobrowse: String,
    trip: String,
    /// `http://localhost:PORT`: the same server as another origin.
    cross: String,
    /// User agents of the requests for each path (with query).
    log: Arc<std::sync::Mutex<Vec<(String, String)>>>,
}

async fn shop_origin(
    State(st): State<ShopOrigin>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if let Ok(mut l) = st.log.lock() {
        l.push((uri.to_string(), ua));
    }
    let (cob, trip, cross) = (&st.cobrowse, &st.trip, &st.cross);
    match uri.path() {
        "/page.html" => {
            let csp = format!(
                "img-src 'self' data: {cob} {cross}; style-src 'self' 'unsafe-inline' {cob} {cross}; \
                 font-src 'self' data: {cob}; media-src 'self'"
            );
            let html = format!(
                r#"<!doctype html><html><head><meta charset="utf-8"><title>Origin shop</title>
<link rel="stylesheet" href="/site.css">
<link rel="stylesheet" href="{cross}/remote.css">
<style>.tw {{ background-image: url({trip}/style.png) }}
.logo {{ width: 40px; height: 30px; background: url(/pic.png?style) }}</style>
</head><body>
<h1 class="hero">Shop</h1>
<img id="pic" src="/pic.png" width="40" height="30" alt="pic">
<img id="trip" src="{trip}/img.png" alt="">
<div class="tw logo" style="border: 1px solid; background-image: url({trip}/inline.png)">x</div>
<div class="sheet-bg">y</div>
<div class="remote">z</div>
<script src="{cob}/cobrowse.js" data-site="shop" async></script>
</body></html>"#
            );
            (
                [
                    (header::CONTENT_TYPE, "text/html; charset=utf-8".to_string()),
                    (header::CONTENT_SECURITY_POLICY, csp),
                ],
                html,
            )
                .into_response()
        }
        "/site.css" => (
            [(header::CONTENT_TYPE, "text/css")],
            format!(
                "@import url({trip}/imp.css);\n.hero {{ color: rgb(1, 2, 3) }}\n\
                 .sheet-bg {{ background: url(pic.png?sheet) }}\n"
            ),
        )
            .into_response(),
        "/remote.css" => (
            [(header::CONTENT_TYPE, "text/css")],
            format!(
                "@import url({trip}/imp2.css);\n\
                 .remote {{ color: rgb(4, 5, 6); background: url(pic.png?remote) }}\n"
            ),
        )
            .into_response(),
        "/pic.png" => ([(header::CONTENT_TYPE, "image/png")], png(40, 30)).into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

#[tokio::test]
async fn replica_shows_the_allowed_origins_image_and_stylesheet_through_the_proxy_and_no_other_host(
) {
    let (port, hits, seen) = tripwire().await;
    let s = Stage::new().await;
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin_port = l.local_addr().unwrap().port();
    let origin = format!("http://127.0.0.1:{origin_port}");
    let cross = format!("http://localhost:{origin_port}");
    let st = ShopOrigin {
        cobrowse: s.base.clone(),
        trip: format!("http://127.0.0.1:{port}"),
        cross: cross.clone(),
        log: Arc::default(),
    };
    let log = st.log.clone();
    let app = axum::Router::new().fallback(shop_origin).with_state(st);
    let server = tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    s.app()
        .state
        .store
        .create_site("shop", "Shop", &[origin.clone(), cross.clone()], "test")
        .await
        .unwrap();
    s.start_and_join(&format!("{origin}/page.html")).await;

    // The replica's image has loaded, from the proxy.
    let src: String = wait_for!("the replica's image to load through the proxy", {
        let v: Value = s
            .agent
            .try_eval(&format!(
                "{REPLICA} var i = d.getElementById('pic'); \
                 return i ? [i.complete, i.naturalWidth, i.src] : null;"
            ))
            .await?;
        if v[0] == true && v[1].as_u64().unwrap_or(0) > 0 {
            Ok(v[2].as_str().unwrap_or_default().to_string())
        } else {
            Err(v.to_string())
        }
    });
    assert!(
        src.starts_with(&format!("{}/proxy/shop/", s.base)),
        "the replica's image comes from {src}"
    );
    assert_eq!(
        s.agent
            .eval::<u64>(&format!(
                "{REPLICA} return d.getElementById('pic').naturalWidth;"
            ))
            .await,
        40
    );
    // Both stylesheets apply: the one the snippet could read arrives as CSS
    // with its url() proxied; the other stays a <link> to the proxy.
    wait_for!("the origin's stylesheets in the replica", {
        let v: Value = s
            .agent
            .try_eval(&format!(
                "{REPLICA} var w = d.defaultView; \
                 var h = d.querySelector('.hero'), b = d.querySelector('.sheet-bg'), \
                   r = d.querySelector('.remote'); \
                 return h && b && r ? [w.getComputedStyle(h).color, \
                   w.getComputedStyle(b).backgroundImage, w.getComputedStyle(r).color, \
                   [].map.call(d.querySelectorAll('link'), function (l) {{ return l.href; }})] \
                   : null;"
            ))
            .await?;
        let bg = v[1].as_str().unwrap_or_default();
        let proxy = format!("{}/proxy/shop/", s.base);
        let links_ok = v[3].as_array().is_some_and(|a| {
            !a.is_empty()
                && a.iter()
                    .all(|l| l.as_str().is_some_and(|l| l.starts_with(&proxy)))
        });
        if v[0] == "rgb(1, 2, 3)" && bg.contains(&proxy) && v[2] == "rgb(4, 5, 6)" && links_ok {
            Ok(())
        } else {
            Err(v.to_string())
        }
    });
    // Every resource the replica fetched came from the co-browse server.
    wait_for!("the stylesheets' background images through the proxy", {
        let names: Vec<String> = s
            .agent
            .try_eval(&format!(
                "{REPLICA} return d.defaultView.performance.getEntriesByType('resource')\
                 .map(function (e) {{ return e.name; }});"
            ))
            .await?;
        for n in &names {
            assert!(
                n.starts_with(&format!("{}/", s.base)),
                "the replica fetched {n}"
            );
        }
        if ["pic.png%3Fsheet", "pic.png%3Fremote", "remote.css"]
            .iter()
            .all(|want| names.iter().any(|n| n.contains(want)))
        {
            Ok(())
        } else {
            Err(format!("{names:?}"))
        }
    });
    // The server fetched them from the origin (the proxy's own requests).
    let proxied: Vec<String> = log
        .lock()
        .map(|l| {
            l.iter()
                .filter(|(_, ua)| ua.starts_with("cobrowse-proxy/"))
                .map(|(p, _)| p.clone())
                .collect()
        })
        .unwrap_or_default();
    for want in [
        "/pic.png",
        "/remote.css",
        "/pic.png?sheet",
        "/pic.png?remote",
    ] {
        assert!(
            proxied.iter().any(|p| p == want),
            "the proxy did not fetch {want} from the origin: {proxied:?}"
        );
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a browser or the proxy connected to the other loopback host: {:?}",
        seen.lock().map(|v| v.clone()).unwrap_or_default()
    );
    server.abort();
    s.finish().await;
}
