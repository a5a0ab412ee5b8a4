//! The element picker: signed short-lived links opened on an allowed origin,
//! and the picker API (CORS, token checks, only the selector and count).

use super::{demo_draft, location, Browser};
use crate::common::spawn_app;
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn picker_token(app: &crate::common::TestApp, admin: &Browser) -> String {
    let resp = admin
        .post(
            "/admin/sites/demo/pick",
            &[("url", &format!("{}/demo/checkout", app.base))],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let to = location(&resp);
    let prefix = format!("{}/demo/checkout#cobrowse-pick=", app.base);
    assert!(
        to.starts_with(&prefix),
        "opens the page with the token: {to}"
    );
    to[prefix.len()..].to_owned()
}

#[tokio::test]
async fn a_picked_element_becomes_an_enabled_draft_rule() {
    let app = spawn_app().await;
    let mut admin = Browser::admin(&app).await;
    admin.refresh_csrf("/admin/sites/demo/rules").await;
    let token = picker_token(&app, &admin).await;
    let http = reqwest::Client::new();
    let resp = http
        .post(app.url("/admin/api/picker"))
        .header("origin", &app.base)
        .header("content-type", "text/plain")
        .body(json!({"token": token, "selector": "input[autocomplete=\"cc-number\"]", "action": "mask", "count": 1}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(
        resp.headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some(app.base.as_str()),
        "CORS for the site's origin"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["rule"], 3);
    let draft = demo_draft(&app).await;
    assert_eq!(
        draft[2],
        (
            "input[autocomplete=\"cc-number\"]".into(),
            "mask".into(),
            true
        )
    );
    let site = app.state.store.site_by_key("demo").await.unwrap().unwrap();
    let rule = app.state.store.draft(site.id).await.unwrap().unwrap().rules[2].clone();
    assert_eq!(rule.description, "picked on /demo/checkout");
    let audit = app.state.store.list_audit(20).await.unwrap();
    assert!(audit
        .iter()
        .any(|e| e.action == "rules.pick" && e.actor == "admin" && e.target == "demo"));
    let page = admin.get_text("/admin/sites/demo/rules").await;
    assert!(page.contains("picked on /demo/checkout"));

    // The link is single-use: a replay is refused.
    let resp = http
        .post(app.url("/admin/api/picker"))
        .header("origin", &app.base)
        .body(
            json!({"token": token, "selector": ".other", "action": "mask", "count": 1}).to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let body: Value = resp.json().await.unwrap();
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("already been used"));
    assert_eq!(demo_draft(&app).await.len(), 3);

    // Picking the same element again (with a new link) adds nothing.
    let token = picker_token(&app, &admin).await;
    let resp = http
        .post(app.url("/admin/api/picker"))
        .header("origin", &app.base)
        .body(json!({"token": token, "selector": "input[autocomplete=\"cc-number\"]", "action": "mask", "count": 1}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["rule"], 3);
    assert_eq!(demo_draft(&app).await.len(), 3);

    // Preflight from the site's origin is answered.
    let resp = http
        .request(reqwest::Method::OPTIONS, app.url("/admin/api/picker"))
        .header("origin", &app.base)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        resp.headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some(app.base.as_str())
    );
    let resp = http
        .request(reqwest::Method::OPTIONS, app.url("/admin/api/picker"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn forged_foreign_or_malformed_picker_requests_write_nothing() {
    let app = spawn_app().await;
    let mut admin = Browser::admin(&app).await;
    admin.refresh_csrf("/admin/sites/demo/rules").await;
    let token = picker_token(&app, &admin).await;
    let http = reqwest::Client::new();
    let post = |origin: &'static str, body: Value| {
        let http = http.clone();
        let url = app.url("/admin/api/picker");
        let origin = if origin.is_empty() {
            app.base.clone()
        } else {
            origin.to_owned()
        };
        async move {
            http.post(url)
                .header("origin", origin)
                .body(body.to_string())
                .send()
                .await
                .unwrap()
        }
    };
    let (payload, mac) = token.split_once('.').unwrap();
    let mut forged_mac = mac.to_owned();
    forged_mac.replace_range(0..2, if &mac[0..2] == "00" { "11" } else { "00" });
    let cases: Vec<(&str, Value, StatusCode)> = vec![
        (
            "",
            json!({"token": format!("{payload}.{forged_mac}"), "selector": ".x", "action": "mask", "count": 1}),
            StatusCode::FORBIDDEN,
        ),
        (
            "",
            json!({"token": "garbage", "selector": ".x", "action": "mask", "count": 1}),
            StatusCode::FORBIDDEN,
        ),
        (
            "https://evil.example",
            json!({"token": token, "selector": ".x", "action": "mask", "count": 1}),
            StatusCode::FORBIDDEN,
        ),
        (
            "",
            json!({"token": token, "selector": "div >>", "action": "mask", "count": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "",
            json!({"token": token, "selector": ".x", "action": "unmask", "count": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "",
            json!({"token": token, "selector": ".x", "action": "mask", "count": 1, "value": "4111 1111 1111 1111"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "",
            json!({"token": token, "selector": ".x"}),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (origin, body, want) in cases {
        let resp = post(origin, body.clone()).await;
        assert_eq!(resp.status(), want, "{origin} {body}");
        let answer: Value = resp.json().await.unwrap();
        assert_eq!(answer["ok"], false);
        assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    assert_eq!(demo_draft(&app).await.len(), 2, "nothing written");

    // Pages outside the site's origins cannot be opened with a token.
    let resp = admin
        .post(
            "/admin/sites/demo/pick",
            &[("url", "https://evil.example/")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/admin/sites/demo/rules");
    assert!(admin
        .get_text("/admin/sites/demo/rules")
        .await
        .contains("not one of this site"));
}
