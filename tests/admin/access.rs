//! Access control of the editor: sign-in required, agents refused, CSRF on
//! every form, login lock-out and rate limit.

use super::{client, demo_draft, location, Browser};
use crate::common::{spawn_app, AGENT_PASSWORD};
use reqwest::StatusCode;

const PAGES: &[&str] = &[
    "/admin/sites",
    "/admin/sites/new",
    "/admin/sites/demo",
    "/admin/sites/demo/rules",
    "/admin/sites/demo/rules/1",
    "/admin/sites/demo/import",
    "/admin/sites/demo/export",
    "/admin/sites/demo/preview",
    "/admin/sites/demo/publish",
    "/admin/sites/demo/versions/1",
    "/admin/audit",
    "/admin/sessions",
    "/admin/users",
];

const FORMS: &[&str] = &[
    "/admin/sites/new",
    "/admin/sites/demo",
    "/admin/sites/demo/rotate",
    "/admin/sites/demo/rules",
    "/admin/sites/demo/rules/1",
    "/admin/sites/demo/rules/1/delete",
    "/admin/sites/demo/rules/1/toggle",
    "/admin/sites/demo/rules/1/up",
    "/admin/sites/demo/rules/1/down",
    "/admin/sites/demo/settings",
    "/admin/sites/demo/publish",
    "/admin/sites/demo/versions/1/rollback",
    "/admin/sites/demo/pick",
    "/admin/users",
    "/admin/users/agent1/disable",
    "/admin/users/agent1/enable",
    "/admin/users/agent1/reset",
];

#[tokio::test]
async fn every_admin_page_requires_sign_in() {
    let app = spawn_app().await;
    let http = client();
    for path in PAGES {
        let resp = http.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "GET {path}");
        let to = location(&resp);
        assert!(
            to.starts_with("/login?next="),
            "GET {path} redirected to {to}"
        );
        assert!(
            to.contains("next=/admin"),
            "the page is kept as `next`: {to}"
        );
    }
    for path in FORMS {
        let resp = http
            .post(app.url(path))
            .form(&[("csrf", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "POST {path}");
        assert!(location(&resp).starts_with("/login"), "POST {path}");
    }
    assert_eq!(demo_draft(&app).await.len(), 2, "nothing changed");
}

#[tokio::test]
async fn agents_get_403_on_every_admin_page() {
    let app = spawn_app().await;
    let agent = Browser::login(&app, "agent1", AGENT_PASSWORD).await;
    for path in PAGES {
        let resp = agent.get(path).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "GET {path}");
        assert!(resp.text().await.unwrap().contains("Administrators only"));
    }
    for path in FORMS {
        let resp = agent.post(path, &[]).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "POST {path}");
    }
}

#[tokio::test]
async fn forms_without_or_with_a_wrong_csrf_token_are_rejected() {
    let app = spawn_app().await;
    let admin = Browser::admin(&app).await;
    let before = demo_draft(&app).await;
    for path in FORMS {
        for fields in [
            vec![
                ("selector", ".x"),
                ("action", "mask"),
                ("enabled", "on"),
                ("name", "n"),
                ("origins", "http://a.b"),
            ],
            vec![
                ("csrf", "not-the-token"),
                ("selector", ".x"),
                ("action", "mask"),
            ],
        ] {
            let resp = admin.post_raw(path, &fields).await;
            assert_eq!(
                resp.status(),
                StatusCode::FORBIDDEN,
                "POST {path} {fields:?}"
            );
            let body = resp.text().await.unwrap();
            assert!(body.contains("reload the page"), "a clear message: {body}");
            assert!(
                body.contains("<h1>Not allowed</h1>"),
                "as an editor page: {body}"
            );
        }
    }
    assert_eq!(demo_draft(&app).await, before, "nothing was written");
    assert!(app
        .state
        .store
        .user_by_name("agent1")
        .await
        .unwrap()
        .is_some_and(|u| !u.disabled));
    // The multipart forms check the token too.
    for path in ["/admin/sites/demo/import", "/admin/sites/demo/preview"] {
        let form = reqwest::multipart::Form::new()
            .text("yaml", "version: 1\nrules: []\n")
            .text("html", "<p>x</p>");
        let resp = admin
            .http
            .post(app.url(path))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "POST {path}");
    }
    assert_eq!(demo_draft(&app).await, before);
}

#[tokio::test]
async fn five_failed_logins_lock_the_account_for_15_minutes() {
    let app = spawn_app().await;
    let http = client();
    let page = http
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("locked for 15 minutes"),
        "the login page says so plainly"
    );
    let csrf = super::csrf_of(&page);
    let attempt = |password: &'static str| {
        let http = http.clone();
        let url = app.url("/login");
        let csrf = csrf.clone();
        async move {
            http.post(url)
                .form(&[
                    ("name", "agent2"),
                    ("password", password),
                    ("csrf", &csrf),
                    ("next", "/agent"),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    for _ in 0..4 {
        assert_eq!(
            attempt("wrong-password").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let fifth = attempt("wrong-password").await;
    assert_eq!(fifth.status(), StatusCode::TOO_MANY_REQUESTS);
    let body = fifth.text().await.unwrap();
    assert!(body.contains("15 minutes"), "{body}");
    // Even the right password is refused while locked.
    let resp = attempt(AGENT_PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    // Other accounts are unaffected.
    Browser::login(&app, "agent3", AGENT_PASSWORD).await;
    // An admin reset clears the lock-out in the store.
    let admin = Browser::admin(&app).await;
    let resp = admin.post("/admin/users/agent2/reset", &[]).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let locked: (Option<i64>,) =
        sqlx::query_as("SELECT locked_until FROM users WHERE name = 'agent2'")
            .fetch_one(app.state.store.pool())
            .await
            .unwrap();
    assert_eq!(locked.0, None);
}

#[tokio::test]
async fn unknown_names_are_rate_limited_per_address() {
    let app = spawn_app().await;
    let http = client();
    let page = http
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = super::csrf_of(&page);
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let resp = http
            .post(app.url("/login"))
            .form(&[
                ("name", "nobody"),
                ("password", "whatever-pw"),
                ("csrf", &csrf),
                ("next", "/agent"),
            ])
            .send()
            .await
            .unwrap();
        statuses.push(resp.status());
    }
    assert_eq!(&statuses[..5], &[StatusCode::UNAUTHORIZED; 5]);
    assert_eq!(statuses[5], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
}
