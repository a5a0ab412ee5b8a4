//! HTTP API and static routes: session creation (sites, origins, CORS,
//! bad bodies), agent-only reads, health, embedded assets, first-start data.

use crate::common::spawn_app;
use serde_json::{json, Value};

#[tokio::test]
async fn healthz_says_ok() {
    let app = spawn_app().await;
    let r = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "ok");
}

#[tokio::test]
async fn create_session_checks_site_origin_and_body() {
    let app = spawn_app().await;
    let url = format!("{}/demo/", app.base);
    // Unknown site.
    let r = app.post_session(json!({"site": "nope", "url": url})).await;
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("unknown site"));
    // Malformed body.
    let r = app
        .http
        .post(app.url("/api/v1/sessions"))
        .header("content-type", "application/json")
        .body("{\"site\":")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = app.post_session(json!({"site": "demo"})).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("url"));
    // Foreign origin.
    let r = app
        .http
        .post(app.url("/api/v1/sessions"))
        .header("origin", "https://evil.example")
        .json(&json!({"site": "demo", "url": url}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("access-control-allow-origin").is_none());
    // The server's own origin (the demo site's) gets CORS and a session.
    let r = app
        .http
        .post(app.url("/api/v1/sessions"))
        .header("origin", &app.base)
        .json(&json!({"site": "demo", "url": url}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        app.base.as_str()
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["id"].as_str().unwrap().len(), 9);
}

#[tokio::test]
async fn preflight_is_granted_only_to_known_origins() {
    let app = spawn_app().await;
    let r = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/sessions"))
        .header("origin", &app.base)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        app.base.as_str()
    );
    assert!(r.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    let r = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/sessions"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn session_ids_are_unique_among_live_sessions() {
    let app = spawn_app().await;
    let mut ids = std::collections::HashSet::new();
    for _ in 0..50 {
        let (id, _) = app.create_session().await;
        assert!((100_000_000..=999_999_999).contains(&id.parse::<u32>().unwrap()));
        assert!(ids.insert(id));
    }
    assert_eq!(app.state.registry.live_count(), 50);
}

#[tokio::test]
async fn session_state_needs_an_agent() {
    let app = spawn_app().await;
    let (id, _) = app.create_session().await;
    let r = app
        .http
        .get(app.url(&format!("/api/v1/sessions/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .http
        .get(app.url(&format!("/api/v1/sessions/{id}")))
        .bearer_auth(&app.agent_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v,
        json!({"id": id, "state": "waiting", "mode": "pointer", "site": "demo"})
    );
    let r = app
        .http
        .get(app.url("/api/v1/sessions/111111111"))
        .bearer_auth(&app.agent_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn assets_are_served_with_content_types() {
    let app = spawn_app().await;
    for (path, ty) in [
        ("/cobrowse.js", "text/javascript"),
        ("/static/viewer.js", "text/javascript"),
        ("/static/viewer.css", "text/css"),
        ("/static/app.css", "text/css"),
        ("/demo/", "text/html"),
        ("/demo/checkout", "text/html"),
        ("/demo/done", "text/html"),
        ("/demo/shop.css", "text/css"),
        ("/", "text/html"),
        ("/login", "text/html"),
    ] {
        let r = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with(ty), "{path}: {ct}");
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        assert!(!r.text().await.unwrap().is_empty(), "{path}");
    }
    let index = app
        .http
        .get(app.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for link in ["/demo/", "/agent", "/admin"] {
        assert!(
            index.contains(&format!("href=\"{link}\"")),
            "index links {link}"
        );
    }
}

#[tokio::test]
async fn first_start_creates_admin_and_demo_site_with_default_rules() {
    let app = spawn_app().await;
    let admin = app
        .state
        .store
        .user_by_name("admin")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(admin.role, cobrowse::store::Role::Admin);
    let site = app.state.store.site_by_key("demo").await.unwrap().unwrap();
    assert_eq!(site.origins, vec![app.base.clone()]);
    let v1 = app.state.store.published(site.id).await.unwrap().unwrap();
    assert_eq!(v1.version, 1);
    let pack = cobrowse::rules::RulePack::from_yaml(cobrowse::rules::DEFAULT_PACK_YAML).unwrap();
    assert_eq!(v1.rules, pack.rules);
    let draft = app.state.store.draft(site.id).await.unwrap().unwrap();
    assert_eq!(draft.rules, pack.rules);
    // A second bootstrap (restart) creates nothing new.
    let again = app.state.store.bootstrap(&app.base).await.unwrap();
    assert!(again.admin_password.is_none() && again.demo_api_key.is_none());
}

#[tokio::test]
async fn demo_site_accepts_the_servers_own_origin_under_any_host_name() {
    let app = spawn_app().await;
    app.state
        .store
        .create_site("other", "", &["https://other.example".to_owned()], "test")
        .await
        .unwrap();
    let host = format!("localhost:{}", app.addr.port());
    let origin = format!("http://{host}");
    let post = |site: &str| {
        app.http
            .post(format!("{origin}/api/v1/sessions"))
            .header("origin", &origin)
            .json(&json!({"site": site, "url": format!("{origin}/demo/")}))
            .send()
    };
    let r = post("demo").await.unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let v: Value = r.json().await.unwrap();
    // Other sites only accept their configured origins.
    assert_eq!(post("other").await.unwrap().status(), 403);

    // The customer socket from that same origin is accepted for the demo site.
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!(
        "ws://{host}/ws/customer/{}?token={}",
        v["id"].as_str().unwrap(),
        v["token"].as_str().unwrap()
    );
    let mut req = url.as_str().into_client_request().unwrap();
    req.headers_mut().insert("origin", origin.parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let mut c = crate::common::WsClient::from_stream(ws);
    assert_eq!(c.recv_type("session").await["state"], "waiting");

    // A foreign page origin is refused on the customer socket.
    let (id, token) = app.create_session().await;
    let url = format!("{}/ws/customer/{id}?token={token}", app.ws_base);
    let mut req = url.as_str().into_client_request().unwrap();
    req.headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let mut c = crate::common::WsClient::from_stream(ws);
    assert_eq!(c.recv_error_code().await, "origin_not_allowed");
}
