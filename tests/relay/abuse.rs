//! Abuse over real sockets (issue 8): revocation that bites on open agent
//! sockets, session-ID guessing back-off, and the server's resource limits
//! (session creation rate, live-session caps, connection limit, header-read
//! timeout) — each hit, answered with a clear error, while others go on
//! being served.

use crate::common::{spawn_app_with, TestApp, TestOptions, WsClient, AGENT_PASSWORD, SOON};
use cobrowse::config::IpNet;
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Options trusting 127.0.0.1 as a proxy, so tests can act from many
/// client addresses with `X-Forwarded-For`.
fn behind_proxy() -> TestOptions {
    TestOptions {
        trusted_proxies: vec![IpNet::parse("127.0.0.1").unwrap()],
        ..TestOptions::default()
    }
}

/// Open an agent socket with a bearer token from client address `from`.
async fn agent_from(app: &TestApp, id: &str, bearer: &str, from: &str) -> WsClient {
    let mut req = format!("{}/ws/agent/{id}", app.ws_base)
        .into_client_request()
        .unwrap();
    let h = req.headers_mut();
    h.insert("authorization", format!("Bearer {bearer}").parse().unwrap());
    h.insert("x-forwarded-for", from.parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    WsClient::from_stream(ws)
}

/// Sign in through the form by hand; returns the session cookie.
async fn login_cookie(app: &TestApp, name: &str, password: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = http.get(app.url("/login")).send().await.unwrap();
    let pre = page.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let csrf = crate::admin::csrf_of(&page.text().await.unwrap());
    let r = http
        .post(app.url("/login"))
        .header("cookie", &pre)
        .form(&[
            ("name", name),
            ("password", password),
            ("csrf", &csrf),
            ("next", "/agent"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "login of {name}");
    r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// Open an agent socket with a login cookie from our own origin.
async fn agent_with_cookie(app: &TestApp, id: &str, cookie: &str) -> WsClient {
    let mut req = format!("{}/ws/agent/{id}", app.ws_base)
        .into_client_request()
        .unwrap();
    req.headers_mut().insert("cookie", cookie.parse().unwrap());
    req.headers_mut()
        .insert("origin", app.base.parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    WsClient::from_stream(ws)
}

/// Whether a login cookie still opens the agent page.
async fn cookie_signed_in(app: &TestApp, cookie: &str) -> bool {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http
        .get(app.url("/agent"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    r.status() == StatusCode::OK
}

/// A live session with the customer connected and a snapshot sent; the
/// agent joins with `join`.
async fn waiting_session(app: &TestApp) -> (String, WsClient) {
    let (id, token) = app.create_session().await;
    let mut c = app.customer(&id, &token).await;
    c.recv_type("rules").await;
    c.send(crate::common::sample_snapshot("hello")).await;
    c.recv_type("rules").await;
    (id, c)
}

#[tokio::test]
async fn revoking_a_token_ends_the_open_agent_socket_with_agent_revoked() {
    let app = spawn_app_with(TestOptions::default()).await;
    let (_id, _token, mut c, mut a) = app.active_session().await;
    // What `cobrowse token revoke agent1` does (same database).
    app.state.store.revoke_tokens("agent1").await.unwrap();
    assert_eq!(a.recv_ended().await, "agent_revoked");
    a.expect_closed(SOON).await;
    assert_eq!(c.recv_ended().await, "agent_revoked");
    // The revoked token opens nothing any more.
    let (id2, _c2) = waiting_session(&app).await;
    let err = WsClient::connect(
        &format!("{}/ws/agent/{id2}", app.ws_base),
        Some(&app.agent_token),
    )
    .await
    .err()
    .expect("a revoked token is refused");
    assert!(err.to_string().contains("401"), "{err}");
    // Other agents are unaffected.
    let mut other = app.agent_with(&id2, &app.agent2_token).await;
    assert_eq!(other.recv_type("session").await["state"], "active");
}

#[tokio::test]
async fn disabling_an_agent_ends_their_session_and_signs_them_out() {
    let app = spawn_app_with(TestOptions::default()).await;
    let cookie = login_cookie(&app, "agent2", AGENT_PASSWORD).await;
    let (id, mut c) = waiting_session(&app).await;
    let mut a = agent_with_cookie(&app, &id, &cookie).await;
    assert_eq!(a.recv_type("session").await["state"], "active");
    let admin = crate::admin::Browser::admin(&app).await;
    let r = admin.post("/admin/users/agent2/disable", &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(a.recv_ended().await, "agent_revoked");
    assert_eq!(c.recv_ended().await, "agent_revoked");
    assert!(
        !cookie_signed_in(&app, &cookie).await,
        "old cookie still signed in"
    );
    let history = app.ended_history(&id).await;
    assert_eq!(history.end_reason.as_deref(), Some("agent_revoked"));
}

#[tokio::test]
async fn a_password_change_ends_the_agents_session_and_old_login_sessions() {
    let app = spawn_app_with(TestOptions::default()).await;
    let cookie = login_cookie(&app, "agent3", AGENT_PASSWORD).await;
    let (id, mut c) = waiting_session(&app).await;
    let mut a = agent_with_cookie(&app, &id, &cookie).await;
    assert_eq!(a.recv_type("session").await["state"], "active");
    // What `cobrowse user passwd agent3` does.
    app.state
        .store
        .set_password("agent3", "a-new-password-9", "cli")
        .await
        .unwrap();
    assert_eq!(a.recv_ended().await, "agent_revoked");
    assert_eq!(c.recv_ended().await, "agent_revoked");
    assert!(
        !cookie_signed_in(&app, &cookie).await,
        "old cookie still signed in"
    );
    // The new password works, and its cookie does.
    let fresh = login_cookie(&app, "agent3", "a-new-password-9").await;
    assert!(cookie_signed_in(&app, &fresh).await);
}

#[tokio::test]
async fn guessed_session_ids_are_throttled_per_agent_and_address_and_audited() {
    let app = spawn_app_with(behind_proxy()).await;
    let (live, _c) = waiting_session(&app).await;
    let guesser = "198.51.100.7";
    let free = cobrowse::config::ServerLimits::default().free_id_misses;
    for i in 0..free {
        let guess = format!("{}", 100_000_000 + i);
        let mut a = agent_from(&app, &guess, &app.agent_token, guesser).await;
        assert_eq!(a.recv_error_code().await, "not_found");
    }
    // In back-off now: even the live id is refused, with a clear code.
    let mut a = agent_from(&app, &live, &app.agent_token, guesser).await;
    assert_eq!(a.recv_error_code().await, "throttled");
    // Per agent: the same agent from another address is throttled too.
    let mut a = agent_from(&app, &live, &app.agent_token, "198.51.100.8").await;
    assert_eq!(a.recv_error_code().await, "throttled");
    // Per address: another agent from the guessing address is throttled.
    let mut a = agent_from(&app, &live, &app.agent3_token, guesser).await;
    assert_eq!(a.recv_error_code().await, "throttled");
    // The lookup API is throttled as well (429 with Retry-After).
    let r = app
        .http
        .get(app.url(&format!("/api/v1/sessions/{live}")))
        .bearer_auth(&app.agent_token)
        .header("x-forwarded-for", guesser)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    // Everyone else is served: another agent elsewhere joins the live session.
    let mut other = agent_from(&app, &live, &app.agent2_token, "203.0.113.9").await;
    assert_eq!(other.recv_type("session").await["state"], "active");
    let audit = app.state.store.list_audit(50).await.unwrap();
    assert!(
        audit.iter().any(|e| e.action == "session.id_guessing"
            && e.actor == "agent1"
            && e.target == guesser),
        "{audit:?}"
    );
}

#[tokio::test]
async fn session_lookup_misses_are_throttled_with_429() {
    let app = spawn_app_with(behind_proxy()).await;
    let free = cobrowse::config::ServerLimits::default().free_id_misses;
    let get = |id: String, from: &'static str| {
        let req = app
            .http
            .get(app.url(&format!("/api/v1/sessions/{id}")))
            .bearer_auth(&app.agent2_token)
            .header("x-forwarded-for", from);
        async move { req.send().await.unwrap() }
    };
    for i in 0..free {
        let r = get(format!("{}", 200_000_000 + i), "198.51.100.20").await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
    let r = get("200000099".into(), "198.51.100.20").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let text = r.text().await.unwrap();
    assert!(text.contains("try again in"), "{text}");
}

#[tokio::test]
async fn session_creation_is_rate_limited_per_address() {
    let mut opts = behind_proxy();
    opts.server.sessions_per_minute = 3;
    let app = spawn_app_with(opts).await;
    let body = json!({"site": "demo", "url": format!("{}/demo/", app.base)});
    let post = |from: &'static str| {
        let req = app
            .http
            .post(app.url("/api/v1/sessions"))
            .header("x-forwarded-for", from)
            .json(&body);
        async move { req.send().await.unwrap() }
    };
    for _ in 0..3 {
        assert_eq!(post("198.51.100.30").await.status(), StatusCode::CREATED);
    }
    let r = post("198.51.100.30").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    let text = r.text().await.unwrap();
    assert!(text.contains("too many sessions started"), "{text}");
    // Another address is served.
    assert_eq!(post("198.51.100.31").await.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn live_session_caps_refuse_with_503_and_a_message() {
    let mut opts = TestOptions::default();
    opts.server.live_sessions = 3;
    opts.server.live_sessions_per_site = 2;
    let app = spawn_app_with(opts).await;
    let (a, _) = app.create_session().await;
    app.create_session().await;
    let r = app
        .post_session(json!({"site": "demo", "url": format!("{}/demo/", app.base)}))
        .await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let text = r.text().await.unwrap();
    assert!(text.contains("site `demo` is at its limit of 2"), "{text}");
    // Another site still has room until the server-wide cap.
    app.state
        .store
        .create_site("other", "Other", &["https://other.test".into()], "test")
        .await
        .unwrap();
    let other = json!({"site": "other", "url": "https://other.test/"});
    assert_eq!(
        app.post_session(other.clone()).await.status(),
        StatusCode::CREATED
    );
    let r = app.post_session(other).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let text = r.text().await.unwrap();
    assert!(text.contains("limit of 3 live sessions"), "{text}");
    // Ending a session frees a place.
    let r = app
        .http
        .post(app.url(&format!("/api/v1/sessions/{a}/end")))
        .bearer_auth(&app.demo_api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let deadline = tokio::time::Instant::now() + SOON;
    while app.state.registry.is_live(&a) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "session did not end"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.create_session().await;
}

/// Send a raw HTTP request on a fresh connection; the whole answer.
async fn raw_get(app: &TestApp, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(SOON, s.read_to_end(&mut out))
        .await
        .expect("answer in time")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn connections_past_the_limit_get_503_and_the_server_recovers() {
    let mut opts = TestOptions::default();
    opts.server.max_connections = 3;
    let app = spawn_app_with(opts).await;
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(tokio::net::TcpStream::connect(app.addr).await.unwrap());
    }
    // The idle sockets are accepted (permits held) before the next one: poll.
    let deadline = tokio::time::Instant::now() + SOON;
    let busy = loop {
        let answer = raw_get(&app, "/healthz").await;
        if answer.starts_with("HTTP/1.1 503") {
            break answer;
        }
        assert!(tokio::time::Instant::now() < deadline, "no 503: {answer}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(busy.contains("too many open connections"), "{busy}");
    idle.pop();
    let deadline = tokio::time::Instant::now() + SOON;
    loop {
        let answer = raw_get(&app, "/healthz").await;
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never recovered: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn stalled_request_headers_are_timed_out() {
    let mut opts = TestOptions::default();
    opts.server.header_read_timeout = Duration::from_secs(1);
    let app = spawn_app_with(opts).await;
    let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    // The server closes the connection (with or without a 408) on its own.
    let mut out = Vec::new();
    let read = tokio::time::timeout(SOON, s.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "a stalled request was never cut off");
    assert!(!String::from_utf8_lossy(&out).contains("200 OK"));
    // Others are served.
    assert!(raw_get(&app, "/healthz").await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn idle_websockets_are_closed_with_idle_timeout() {
    let mut opts = TestOptions::default();
    opts.server.ws_idle_timeout = Duration::from_secs(1);
    let app = spawn_app_with(opts).await;
    let (id, token) = app.create_session().await;
    // A raw client that completes the handshake and then never answers a
    // ping nor sends anything (a vanished peer).
    let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    s.write_all(
        format!(
            "GET /ws/customer/{id}?token={token} HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\n\
             connection: upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             sec-websocket-version: 13\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(SOON, s.read_to_end(&mut out))
        .await
        .expect("the idle socket is closed by the server")
        .unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 101"), "{text}");
    assert!(text.contains("\"code\":\"idle_timeout\""), "{text}");
    // A client that answers pings (tungstenite does while reading) stays
    // open well past the timeout although it sends nothing itself.
    let url = format!("{}/ws/customer/{id}?token={token}", app.ws_base);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match futures_util::StreamExt::next(&mut ws).await {
                None | Some(Err(_)) => return "gone".to_owned(),
                Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_))) => {
                    return "closed".to_owned()
                }
                Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t)))
                    if t.contains("idle_timeout") =>
                {
                    return t.to_string()
                }
                Some(Ok(_)) => continue,
            }
        }
    })
    .await;
    assert!(closed.is_err(), "a live client was cut: {closed:?}");
    assert!(raw_get(&app, "/healthz").await.starts_with("HTTP/1.1 200"));
}
