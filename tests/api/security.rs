//! Login and page hardening, and the database under contention (issue 8):
//! one answer for unknown users and wrong passwords, a back-off that never
//! locks the right password out for long, `trusted_proxies`, same-origin
//! `next`, security headers on every page, no "database is locked", stale
//! sessions closed at start-up, history pruned past its retention.

use crate::admin::{client, csrf_of, location, Browser};
use crate::common::{spawn_app, spawn_app_with, TestApp, TestOptions, AGENT_PASSWORD, SOON};
use cobrowse::config::{Config, IpNet};
use reqwest::{Client, Response, StatusCode};
use std::time::Duration;

async fn login_form(http: &Client, app: &TestApp) -> String {
    let page = http.get(app.url("/login")).send().await.unwrap();
    csrf_of(&page.text().await.unwrap())
}

async fn attempt(
    http: &Client,
    app: &TestApp,
    csrf: &str,
    name: &str,
    password: &str,
    next: &str,
    from: Option<&str>,
) -> Response {
    let mut req = http.post(app.url("/login")).form(&[
        ("name", name),
        ("password", password),
        ("csrf", csrf),
        ("next", next),
    ]);
    if let Some(f) = from {
        req = req.header("x-forwarded-for", f);
    }
    req.send().await.unwrap()
}

/// The error paragraph of the login page.
fn error_of(html: &str) -> String {
    let start = html.find("class=\"error").expect("an error message");
    let rest = &html[start..];
    let open = rest.find('>').unwrap() + 1;
    let close = rest.find("</").unwrap();
    rest[open..close].trim().to_owned()
}

#[tokio::test]
async fn unknown_users_and_wrong_passwords_get_the_same_answer() {
    let app = spawn_app().await;
    let http = client();
    let csrf = login_form(&http, &app).await;
    let mut answers = Vec::new();
    for name in ["agent2", "nobody-here"] {
        let mut per_name = Vec::new();
        for _ in 0..6 {
            let r = attempt(&http, &app, &csrf, name, "wrong-password", "/agent", None).await;
            let status = r.status();
            per_name.push((status, error_of(&r.text().await.unwrap())));
        }
        answers.push(per_name);
    }
    assert_eq!(answers[0][0].0, StatusCode::UNAUTHORIZED);
    assert_eq!(answers[0][5].0, StatusCode::TOO_MANY_REQUESTS);
    // Statuses and messages are identical for the real and the unknown name
    // (only the wait may differ by a second).
    for (real, unknown) in answers[0].iter().zip(&answers[1]) {
        assert_eq!(real.0, unknown.0);
        let strip = |s: &str| {
            s.chars()
                .filter(|c| !c.is_ascii_digit())
                .collect::<String>()
        };
        assert_eq!(strip(&real.1), strip(&unknown.1));
    }
    assert!(!answers[0][5].1.contains("locked"), "{}", answers[0][5].1);
}

#[tokio::test]
async fn login_backoff_never_locks_out_the_correct_password_for_long() {
    let app = spawn_app().await;
    let http = client();
    let csrf = login_form(&http, &app).await;
    for _ in 0..5 {
        let r = attempt(
            &http,
            &app,
            &csrf,
            "agent2",
            "wrong-password",
            "/agent",
            None,
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = attempt(&http, &app, &csrf, "agent2", AGENT_PASSWORD, "/agent", None).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait <= 8, "the wait is seconds, not minutes: {wait}");
    // The right password gets through once the short wait is over.
    let deadline = tokio::time::Instant::now() + SOON + Duration::from_secs(wait);
    loop {
        let r = attempt(&http, &app, &csrf, "agent2", AGENT_PASSWORD, "/agent", None).await;
        if r.status() == StatusCode::SEE_OTHER {
            break;
        }
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(
            tokio::time::Instant::now() < deadline,
            "locked out for long"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn forwarded_for_counts_only_behind_a_trusted_proxy() {
    // Without trusted proxies a forged X-Forwarded-For changes nothing.
    let app = spawn_app().await;
    let http = client();
    let csrf = login_form(&http, &app).await;
    for i in 0..5 {
        let from = format!("203.0.113.{i}");
        let r = attempt(
            &http,
            &app,
            &csrf,
            "agent2",
            "wrong-pw-1",
            "/agent",
            Some(&from),
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = attempt(
        &http,
        &app,
        &csrf,
        "agent2",
        "wrong-pw-1",
        "/agent",
        Some("203.0.113.99"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);

    // Behind a trusted proxy, each client address has its own counter.
    let app = spawn_app_with(TestOptions {
        trusted_proxies: vec![IpNet::parse("127.0.0.0/8").unwrap()],
        ..TestOptions::default()
    })
    .await;
    let http = client();
    let csrf = login_form(&http, &app).await;
    for _ in 0..5 {
        let r = attempt(
            &http,
            &app,
            &csrf,
            "agent2",
            "wrong-pw-1",
            "/agent",
            Some("203.0.113.1"),
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = attempt(
        &http,
        &app,
        &csrf,
        "agent2",
        "wrong-pw-1",
        "/agent",
        Some("203.0.113.1"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let r = attempt(
        &http,
        &app,
        &csrf,
        "agent2",
        AGENT_PASSWORD,
        "/agent",
        Some("203.0.113.2"),
    )
    .await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "another client is not held back"
    );
}

#[tokio::test]
async fn login_next_accepts_only_same_origin_paths() {
    let app = spawn_app().await;
    // The login page never carries an off-site `next` into its form.
    let page = client()
        .get(app.url("/login?next=/%09/evil.example/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("evil.example"), "next kept in the form");
    for (next, expected) in [
        ("/\t/evil.example/", "/agent"),
        ("/%09/evil.example/", "/agent"),
        ("//evil.example/", "/agent"),
        ("/\\evil.example/", "/agent"),
        ("https://evil.example/", "/agent"),
        ("/\n", "/agent"),
        ("/\r\nSet-Cookie: x=1", "/agent"),
        ("/admin/sites?site=demo", "/admin/sites?site=demo"),
    ] {
        let http = client();
        let csrf = login_form(&http, &app).await;
        let r = attempt(&http, &app, &csrf, "agent1", AGENT_PASSWORD, next, None).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "next {next:?}");
        assert_eq!(location(&r), expected, "next {next:?}");
    }
}

#[tokio::test]
async fn every_page_carries_csp_referrer_policy_and_nosniff() {
    let app = spawn_app().await;
    let admin = Browser::admin(&app).await;
    let anon = client();
    let mut pages = Vec::new();
    for path in ["/", "/login", "/demo/", "/demo/checkout"] {
        pages.push((path, anon.get(app.url(path)).send().await.unwrap()));
    }
    for path in [
        "/agent",
        "/admin/sites",
        "/admin/sites/demo/rules",
        "/admin/users",
    ] {
        pages.push((path, admin.get(path).await));
    }
    for (path, r) in &pages {
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let h = r.headers();
        let csp = h
            .get("content-security-policy")
            .unwrap_or_else(|| panic!("no CSP on {path}"))
            .to_str()
            .unwrap();
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("object-src 'none'"), "{path}: {csp}");
        assert!(csp.contains("base-uri 'none'"), "{path}: {csp}");
        if !path.starts_with("/demo") {
            assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
            assert!(
                !csp.contains("'unsafe-inline'")
                    || csp.contains("style-src 'self' 'unsafe-inline'"),
                "{path}: {csp}"
            );
            assert!(
                !csp.contains("script-src 'self' 'unsafe-inline'"),
                "{path}: {csp}"
            );
        }
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
    }
    // The replica's page lets no image or font come from another host.
    let agent = &pages.iter().find(|(p, _)| *p == "/agent").unwrap().1;
    let csp = agent.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("img-src 'self' data: blob:;"), "{csp}");
    // The snippet keeps loading cross-origin: nosniff, no CSP, no CORP.
    let js = anon.get(app.url("/cobrowse.js")).send().await.unwrap();
    assert_eq!(js.status(), StatusCode::OK);
    assert_eq!(js.headers()["x-content-type-options"], "nosniff");
    assert_eq!(js.headers()["referrer-policy"], "no-referrer");
    assert!(js.headers().get("cross-origin-resource-policy").is_none());
    assert!(js.headers().get("content-security-policy").is_none());
}

#[tokio::test]
async fn concurrent_publishes_and_session_writes_never_see_database_is_locked() {
    let app = spawn_app().await;
    let store = app.state.store.clone();
    let site = store.site_by_key("demo").await.unwrap().unwrap();
    let mut tasks = Vec::new();
    for i in 0..12 {
        let store = store.clone();
        let key = site.key.clone();
        tasks.push(tokio::spawn(async move {
            let mut errors = Vec::new();
            for j in 0..5 {
                if i % 2 == 0 {
                    if let Err(e) = store
                        .publish_draft(site.id, "test", &format!("p{i}-{j}"))
                        .await
                    {
                        errors.push(e.to_string());
                    }
                } else {
                    let h = match store
                        .history_start(&format!("{i:03}{j:06}"), site.id, &key, "http://x/", None)
                        .await
                    {
                        Ok(h) => h,
                        Err(e) => {
                            errors.push(e.to_string());
                            continue;
                        }
                    };
                    for r in [
                        store.history_join(h, "agent1").await,
                        store.history_event(h, "mode", "write").await,
                        store
                            .history_end(h, "customer_exit", Default::default())
                            .await,
                    ] {
                        if let Err(e) = r {
                            errors.push(e.to_string());
                        }
                    }
                }
            }
            errors
        }));
    }
    for t in tasks {
        let errors = t.await.unwrap();
        assert!(errors.is_empty(), "{errors:?}");
    }
    let versions = store.versions(site.id).await.unwrap();
    assert_eq!(
        versions.len(),
        1 + 6 * 5,
        "every publish got its own version"
    );
}

fn config_for(dir: &std::path::Path) -> Config {
    Config {
        db: dir.join("restart.db"),
        public_url: "http://127.0.0.1:1".into(),
        ..Config::default()
    }
}

#[tokio::test]
async fn sessions_left_live_by_a_crash_are_closed_with_server_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_for(dir.path());
    let (state, _) = cobrowse::web::build_state(config.clone()).await.unwrap();
    let site = state.store.site_by_key("demo").await.unwrap().unwrap();
    // A session that was live when the process died: started, never ended.
    let h = state
        .store
        .history_start("123456789", site.id, "demo", "http://x/", None)
        .await
        .unwrap();
    state.store.history_join(h, "agent1").await.unwrap();
    drop(state);
    let (state, _) = cobrowse::web::build_state(config).await.unwrap();
    let rows = state.store.history_of("123456789").await.unwrap();
    assert_eq!(rows[0].end_reason.as_deref(), Some("server_restart"));
    assert!(rows[0].ended_at.is_some());
    let events = state.store.history_events(h).await.unwrap();
    assert!(events
        .iter()
        .any(|e| e.kind == "end" && e.detail == "server_restart"));
}

#[tokio::test]
async fn history_older_than_the_retention_is_pruned_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_for(dir.path());
    let (state, _) = cobrowse::web::build_state(config.clone()).await.unwrap();
    let site = state.store.site_by_key("demo").await.unwrap().unwrap();
    let store = &state.store;
    let old = store
        .history_start("111111111", site.id, "demo", "", None)
        .await
        .unwrap();
    store
        .history_end(old, "customer_exit", Default::default())
        .await
        .unwrap();
    let recent = store
        .history_start("222222222", site.id, "demo", "", None)
        .await
        .unwrap();
    store
        .history_end(recent, "customer_exit", Default::default())
        .await
        .unwrap();
    sqlx::query("UPDATE session_history SET started_at = '2020-01-01T00:00:00.000Z' WHERE id = ?")
        .bind(old)
        .execute(store.pool())
        .await
        .unwrap();
    drop(state);
    config.history_retention = Duration::from_secs(90 * 24 * 3600);
    let (state, _) = cobrowse::web::build_state(config).await.unwrap();
    assert!(state
        .store
        .history_of("111111111")
        .await
        .unwrap()
        .is_empty());
    assert!(state.store.history_events(old).await.unwrap().is_empty());
    assert_eq!(state.store.history_of("222222222").await.unwrap().len(), 1);
}
