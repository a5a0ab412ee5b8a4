//! Login, logout, the agent page and cookie-authenticated agent sockets.

use crate::common::{spawn_app, TestApp, WsClient, AGENT_PASSWORD};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// The CSRF token embedded in a login page.
fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("csrf field") + marker.len();
    html[start..start + 64].to_owned()
}

async fn login(app: &TestApp, name: &str, password: &str) -> reqwest::Response {
    let page = app
        .http
        .get(app.url("/login?next=/agent"))
        .send()
        .await
        .unwrap();
    let csrf = csrf_of(&page.text().await.unwrap());
    app.http
        .post(app.url("/login"))
        .form(&[
            ("name", name),
            ("password", password),
            ("csrf", &csrf),
            ("next", "/agent"),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn agent_page_requires_login_and_shows_the_user() {
    let app = spawn_app().await;
    let r = app.http.get(app.url("/agent")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login?next=/agent");

    let r = login(&app, "agent1", "wrong-password").await;
    assert_eq!(r.status(), 401);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Wrong user name or password"));

    let r = login(&app, "agent1", AGENT_PASSWORD).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/agent");
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("cobrowse_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain http must not set Secure: {cookie}"
    );

    let page = app.http.get(app.url("/agent")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("agent1"));
    let csrf = csrf_of(&html);

    // Logout needs the CSRF token.
    let r = app
        .http
        .post(app.url("/logout"))
        .form(&[("csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = app
        .http
        .post(app.url("/logout"))
        .form(&[("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = app.http.get(app.url("/agent")).send().await.unwrap();
    assert_eq!(r.status(), 303);
}

#[tokio::test]
async fn login_without_csrf_is_refused() {
    let app = spawn_app().await;
    let r = app
        .http
        .post(app.url("/login"))
        .form(&[
            ("name", "agent1"),
            ("password", AGENT_PASSWORD),
            ("csrf", "forged"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = app.http.get(app.url("/agent")).send().await.unwrap();
    assert_eq!(r.status(), 303, "still not signed in");
}

#[tokio::test]
async fn repeated_failures_back_off_for_seconds_without_locking_the_account() {
    let app = spawn_app().await;
    for _ in 0..5 {
        assert_eq!(login(&app, "agent2", "nope-nope-nope").await.status(), 401);
    }
    let r = login(&app, "agent2", "nope-nope-nope").await;
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait <= 8, "{wait}");
    // An unknown name looks like a wrong password.
    assert_eq!(login(&app, "nobody", AGENT_PASSWORD).await.status(), 401);
    // The account itself is not locked.
    let locked: (Option<i64>,) =
        sqlx::query_as("SELECT locked_until FROM users WHERE name = 'agent2'")
            .fetch_one(app.state.store.pool())
            .await
            .unwrap();
    assert_eq!(locked.0, None);
}

#[tokio::test]
async fn cookie_login_opens_the_agent_socket_from_our_origin_only() {
    let app = spawn_app().await;
    let (id, token) = app.create_session().await;
    let mut c = app.customer(&id, &token).await;
    c.recv_type("rules").await;

    // A session cookie, handled by hand (no cookie jar).
    let cookie = {
        let fresh = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let page = fresh.get(app.url("/login")).send().await.unwrap();
        let pre = page.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let csrf = csrf_of(&page.text().await.unwrap());
        let r = fresh
            .post(app.url("/login"))
            .header("cookie", &pre)
            .form(&[
                ("name", "agent1"),
                ("password", AGENT_PASSWORD),
                ("csrf", &csrf),
                ("next", "/agent"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned()
    };

    let url = format!("{}/ws/agent/{id}", app.ws_base);
    let mut foreign = url.as_str().into_client_request().unwrap();
    foreign
        .headers_mut()
        .insert("cookie", cookie.parse().unwrap());
    foreign
        .headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    let err = match tokio_tungstenite::connect_async(foreign).await {
        Ok(_) => panic!("a foreign origin must be refused"),
        Err(e) => e,
    };
    assert!(err.to_string().contains("403"), "{err}");

    let mut req = url.as_str().into_client_request().unwrap();
    req.headers_mut().insert("cookie", cookie.parse().unwrap());
    req.headers_mut()
        .insert("origin", app.base.parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let mut a = WsClient::from_stream(ws);
    assert_eq!(a.recv_type("session").await["state"], "active");
    assert_eq!(c.recv_type("agent").await["name"], "agent1");
}
