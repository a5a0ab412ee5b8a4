//! Access control of the editor: sign-in required, agents refused, CSRF on
//! every form, login rate limit, picker links (single use, die with their admin).

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

/// A picker link made by `admin` for the demo checkout page.
async fn picker_link(app: &crate::common::TestApp, admin: &Browser) -> String {
    let resp = admin
        .post(
            "/admin/sites/demo/pick",
            &[("url", &format!("{}/demo/checkout", app.base))],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let to = super::location(&resp);
    to.split_once("#cobrowse-pick=")
        .expect("token")
        .1
        .to_owned()
}

async fn pick(app: &crate::common::TestApp, token: &str, selector: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/admin/api/picker"))
        .header("origin", &app.base)
        .body(
            serde_json::json!({"token": token, "selector": selector, "action": "mask", "count": 1})
                .to_string(),
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn picker_links_are_single_use_and_die_with_their_admin() {
    let app = spawn_app().await;
    for name in ["admin2", "admin3"] {
        app.state
            .store
            .create_user(name, cobrowse::store::Role::Admin, "admin-password-2")
            .await
            .unwrap();
    }
    let admin = Browser::admin(&app).await;
    let mut second = Browser::login(&app, "admin2", "admin-password-2").await;
    second.refresh_csrf("/admin/sites/demo/rules").await;
    let mut third = Browser::login(&app, "admin3", "admin-password-2").await;
    third.refresh_csrf("/admin/sites/demo/rules").await;
    // Single use.
    let once = picker_link(&app, &admin).await;
    assert_eq!(pick(&app, &once, ".a").await.status(), StatusCode::CREATED);
    let replay = pick(&app, &once, ".b").await;
    assert_eq!(replay.status(), StatusCode::FORBIDDEN);
    // Disabled admin: the link is dead.
    let token = picker_link(&app, &second).await;
    let r = admin.post("/admin/users/admin2/disable", &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = pick(&app, &token, ".c").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("no longer valid"),
        "{body}"
    );
    // Changed password: the link is dead too.
    let token = picker_link(&app, &third).await;
    app.state
        .store
        .set_password("admin3", "another-password-3", "cli")
        .await
        .unwrap();
    assert_eq!(
        pick(&app, &token, ".d").await.status(),
        StatusCode::FORBIDDEN
    );
    let draft = demo_draft(&app).await;
    assert!(draft.iter().any(|r| r.0 == ".a"));
    assert!(
        !draft
            .iter()
            .any(|r| [".b", ".c", ".d"].contains(&r.0.as_str())),
        "{draft:?}"
    );
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
