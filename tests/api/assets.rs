//! Snippet delivery over real HTTP (issue 9 item 5): `/cobrowse.js` in gzip
//! and brotli per `Accept-Encoding`, an `ETag` honoured with `304`, a year of
//! `immutable` caching under the versioned URL while the plain URL keeps a
//! short max-age, the demo pages using the versioned URL, and a favicon.

use crate::common::spawn_app;
use reqwest::header::{ACCEPT_ENCODING, IF_NONE_MATCH};
use reqwest::StatusCode;
use sha2::{Digest, Sha256};
use std::io::Read;

const SNIPPET: &str = include_str!("../../static/cobrowse.js");

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_snippet_is_served_gzip_and_brotli_compressed_and_decodes_to_the_script() {
    let app = spawn_app().await;
    // No Accept-Encoding: the plain script.
    let r = app.http.get(app.url("/cobrowse.js")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-encoding"), "");
    assert!(header(&r, "vary")
        .to_lowercase()
        .contains("accept-encoding"));
    assert_eq!(r.text().await.unwrap(), SNIPPET);

    let r = app
        .http
        .get(app.url("/cobrowse.js"))
        .header(ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-encoding"), "gzip");
    assert!(header(&r, "content-type").starts_with("text/javascript"));
    let body = r.bytes().await.unwrap();
    assert!(
        body.len() * 3 < SNIPPET.len(),
        "gzip body of {} bytes",
        body.len()
    );
    let mut text = String::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, SNIPPET);

    let r = app
        .http
        .get(app.url("/cobrowse.js"))
        .header(ACCEPT_ENCODING, "gzip, deflate, br")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-encoding"), "br");
    let body = r.bytes().await.unwrap();
    assert!(
        body.len() * 3 < SNIPPET.len(),
        "br body of {} bytes",
        body.len()
    );
    let mut text = String::new();
    brotli::Decompressor::new(&body[..], 4096)
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, SNIPPET);

    // br refused with q=0: gzip.
    let r = app
        .http
        .get(app.url("/cobrowse.js"))
        .header(ACCEPT_ENCODING, "br;q=0, gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "content-encoding"), "gzip");
}

#[tokio::test]
async fn the_snippet_etag_is_answered_with_304_in_every_encoding() {
    let app = spawn_app().await;
    for enc in ["", "gzip", "br"] {
        let get = || {
            let mut req = app.http.get(app.url("/cobrowse.js"));
            if !enc.is_empty() {
                req = req.header(ACCEPT_ENCODING, enc);
            }
            req
        };
        let r = get().send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{enc}");
        let etag = header(&r, "etag");
        assert!(
            etag.starts_with('"') && etag.ends_with('"'),
            "{enc}: {etag:?}"
        );
        let r = get().header(IF_NONE_MATCH, &etag).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED, "{enc}");
        assert_eq!(header(&r, "etag"), etag, "{enc}");
        assert!(
            r.bytes().await.unwrap().is_empty(),
            "{enc}: a 304 has no body"
        );
        // Another version's tag gets the whole script.
        let r = get()
            .header(IF_NONE_MATCH, "\"0000000000000000\"")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{enc}");
    }
}

#[tokio::test]
async fn the_versioned_snippet_url_is_immutable_and_the_plain_url_is_short_lived() {
    let app = spawn_app().await;
    let plain = app.http.get(app.url("/cobrowse.js")).send().await.unwrap();
    let cc = header(&plain, "cache-control");
    assert!(
        cc.contains("max-age=300") && !cc.contains("immutable"),
        "{cc}"
    );
    assert!(
        !header(&plain, "etag").is_empty(),
        "the plain URL has a validator"
    );

    // The demo pages embed the versioned URL.
    let page = app
        .http
        .get(app.url("/demo/checkout"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let at = page
        .find("/cobrowse.js?v=")
        .unwrap_or_else(|| panic!("no versioned snippet URL in the demo page"));
    let path: String = page[at..].chars().take_while(|c| *c != '"').collect();
    // The version is the content hash: a new build of the script, a new URL.
    let hash = hex::encode(&Sha256::digest(SNIPPET.as_bytes())[..8]);
    assert_eq!(path, format!("/cobrowse.js?v={hash}"));
    let r = app.http.get(app.url(&path)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        header(&r, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(r.text().await.unwrap(), SNIPPET);

    // A stale or made-up version is not cached for long: it gets today's script.
    let r = app
        .http
        .get(app.url("/cobrowse.js?v=0123456789abcdef"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(!header(&r, "cache-control").contains("immutable"));
}

#[tokio::test]
async fn a_favicon_is_served_and_linked_from_the_servers_pages() {
    let app = spawn_app().await;
    for path in ["/favicon.svg", "/favicon.ico"] {
        let r = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(header(&r, "content-type"), "image/svg+xml", "{path}");
        assert!(r.text().await.unwrap().contains("<svg"), "{path}");
    }
    for path in ["/", "/login"] {
        let page = app
            .http
            .get(app.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            page.contains("<link rel=\"icon\" href=\"/favicon.svg\""),
            "{path} links no favicon"
        );
    }
}
