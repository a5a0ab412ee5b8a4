//! Admin editor integration tests (issue 4): a real server (`spawn_app()`),
//! real SQLite, a cookie-keeping HTTP client that signs in through the login
//! form, and real WebSocket clients for the live-session checks.
//!
//! Modules: `access` (auth, agents, CSRF, lock-out), `rules` (rule editing,
//! validation, import/export), `pages` (sites, users, audit, sessions,
//! preview), `picker` (signed links and the picker API), `publish`
//! (diff, publish, roll-back and their effect on a live session).

mod access;
mod e2e;
mod pages;
mod picker;
mod publish;
mod rules;

use crate::common::TestApp;
use reqwest::header::LOCATION;
use reqwest::{Client, Response, StatusCode};

/// A browser-like client: cookie jar, no automatic redirects.
pub fn client() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

/// The value of the first hidden `csrf` field in a page.
pub fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("no csrf field in page:\n{html}"));
    let rest = &html[at + marker.len()..];
    rest[..rest.find('"').expect("end of csrf value")].to_owned()
}

/// The value of the first hidden `rev` field in a page.
pub fn rev_of(html: &str) -> String {
    let marker = "name=\"rev\" value=\"";
    let at = html.find(marker).expect("rev field");
    let rest = &html[at + marker.len()..];
    rest[..rest.find('"').expect("end of rev value")].to_owned()
}

/// The redirect target of a response.
pub fn location(resp: &Response) -> String {
    resp.headers()
        .get(LOCATION)
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// A signed-in client (admin or agent) and its current CSRF token.
pub struct Browser {
    pub http: Client,
    pub base: String,
    pub csrf: String,
}

impl Browser {
    /// Sign in through the login form.
    pub async fn login(app: &TestApp, name: &str, password: &str) -> Browser {
        let http = client();
        let page = http
            .get(app.url("/login"))
            .send()
            .await
            .expect("GET /login");
        let csrf = csrf_of(&page.text().await.expect("login page"));
        let resp = http
            .post(app.url("/login"))
            .form(&[
                ("name", name),
                ("password", password),
                ("csrf", &csrf),
                ("next", "/admin/sites"),
            ])
            .send()
            .await
            .expect("POST /login");
        assert_eq!(
            resp.status(),
            StatusCode::SEE_OTHER,
            "login of {name} failed"
        );
        let mut b = Browser {
            http,
            base: app.base.clone(),
            csrf: String::new(),
        };
        b.refresh_csrf("/login").await;
        b
    }

    /// Sign in as the bootstrap `admin`.
    pub async fn admin(app: &TestApp) -> Browser {
        Browser::login(app, "admin", &app.admin_password).await
    }

    /// Load a page and remember its CSRF token.
    pub async fn refresh_csrf(&mut self, path: &str) {
        let html = self.get_text(path).await;
        self.csrf = csrf_of(&html);
    }

    pub async fn get(&self, path: &str) -> Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("GET")
    }

    /// GET a page that must answer 200; returns its body.
    pub async fn get_text(&self, path: &str) -> String {
        let resp = self.get(path).await;
        let status = resp.status();
        let body = resp.text().await.expect("body");
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    /// POST a form with the current CSRF token added.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let mut all: Vec<(&str, &str)> = fields.to_vec();
        all.push(("csrf", &self.csrf));
        self.post_raw(path, &all).await
    }

    /// POST a form exactly as given (no CSRF token added).
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        self.http
            .post(format!("{}{path}", self.base))
            .form(fields)
            .send()
            .await
            .expect("POST")
    }

    /// POST a multipart form with the current CSRF token added.
    pub async fn post_multipart(&self, path: &str, form: reqwest::multipart::Form) -> Response {
        self.http
            .post(format!("{}{path}", self.base))
            .multipart(form.text("csrf", self.csrf.clone()))
            .send()
            .await
            .expect("POST multipart")
    }
}

/// The draft rules of the demo site as (selector, action, enabled).
pub async fn demo_draft(app: &TestApp) -> Vec<(String, String, bool)> {
    let site = app.state.store.site_by_key("demo").await.unwrap().unwrap();
    app.state
        .store
        .draft(site.id)
        .await
        .unwrap()
        .unwrap()
        .rules
        .into_iter()
        .map(|r| (r.selector, r.action.as_str().to_owned(), r.enabled))
        .collect()
}
