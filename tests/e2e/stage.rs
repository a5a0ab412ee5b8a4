//! The scene of a browser test: a real server on an ephemeral port, an agent
//! account, a chromedriver, the customer's browser and the agent's browser
//! (already logged in), plus the user-level steps the tests share (start a
//! session from the widget's API, join it from the viewer, answer consent).

use super::browser::{Browser, Driver};
use crate::common::{spawn_app, TestApp};
use crate::wait_for;
use cobrowse::store::Role;
use fantoccini::Locator;
use serde_json::Value;
use tokio::sync::{Mutex, MutexGuard};

/// Script prefix binding `d` to the replica document in the agent viewer.
pub const REPLICA: &str = "var d = document.getElementById('replica').contentDocument;";

/// Agent account used by every test.
pub const AGENT_NAME: &str = "Ana";
const AGENT_PASSWORD: &str = "correct-horse-battery";

/// Browser tests run one at a time: each starts two Chromium processes.
/// (A tokio mutex: it is held across awaits and works across test runtimes.)
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

pub struct Stage {
    pub customer: Browser,
    pub agent: Browser,
    pub base: String,
    _driver: Driver,
    _app: TestApp,
    _gate: MutexGuard<'static, ()>,
}

impl Stage {
    /// Server, agent account, both browsers; the agent is logged in on `/agent`.
    /// Window sizes are chosen so the replica is shown at 100% in the viewer.
    pub async fn new() -> Stage {
        Stage::with_windows((1100, 800), (1500, 1000)).await
    }

    /// Like [`Stage::new`] with explicit (width, height) browser windows.
    pub async fn with_windows(customer: (u32, u32), agent: (u32, u32)) -> Stage {
        let gate = ONE_AT_A_TIME.lock().await;
        let app = spawn_app().await;
        app.state
            .store
            .create_user(AGENT_NAME, Role::Agent, AGENT_PASSWORD)
            .await
            .unwrap();
        let base = app.base.clone();
        let driver = Driver::start();
        let customer = Browser::launch(&driver, customer.0, customer.1).await;
        let agent = Browser::launch(&driver, agent.0, agent.1).await;
        let stage = Stage {
            customer,
            agent,
            base,
            _driver: driver,
            _app: app,
            _gate: gate,
        };
        stage.log_in_agent().await;
        stage
    }

    /// The running server (its store, for tests that change a site's rules).
    pub fn app(&self) -> &TestApp {
        &self._app
    }

    async fn log_in_agent(&self) {
        let c = &self.agent.client;
        c.goto(&format!("{}/login?next=/agent", self.base))
            .await
            .unwrap();
        c.find(Locator::Id("name"))
            .await
            .unwrap()
            .send_keys(AGENT_NAME)
            .await
            .unwrap();
        c.find(Locator::Id("password"))
            .await
            .unwrap()
            .send_keys(AGENT_PASSWORD)
            .await
            .unwrap();
        c.find(Locator::Css("form button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_for!("the agent viewer after login", {
            let ok: bool = self
                .agent
                .try_eval("return location.pathname === '/agent' && !!document.getElementById('join-form');")
                .await?;
            if ok {
                Ok(())
            } else {
                Err("not on /agent yet".into())
            }
        });
    }

    /// The customer opens `path` (on this server, or a full `http` URL) and
    /// starts a session through the JS API; the agent joins it; returns the
    /// nine-digit ID.
    pub async fn start_and_join(&self, path: &str) -> String {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        self.customer.client.goto(&url).await.unwrap();
        wait_for!("the snippet on the customer's page", {
            let ok: bool = self
                .customer
                .try_eval("return !!(window.cobrowse && window.cobrowse.start);")
                .await?;
            if ok {
                Ok(())
            } else {
                Err("no window.cobrowse".into())
            }
        });
        let started: Value = self
            .customer
            .eval_async(
                "var done = arguments[arguments.length - 1]; \
                 window.cobrowse.start().then(done, function (e) { done({ error: String(e) }); });",
            )
            .await;
        let id = started["id"]
            .as_str()
            .unwrap_or_else(|| panic!("start() failed: {started}"))
            .to_string();
        assert!(
            id.len() == 9 && id.bytes().all(|b| b.is_ascii_digit()),
            "session id {id:?}"
        );
        // The widget shows the same ID to read out.
        let shown: String = self
            .customer
            .eval(
                "return document.querySelector('[data-cobrowse-widget]').shadowRoot\
                 .querySelector('[data-role=\"session-id\"]').textContent;",
            )
            .await;
        assert_eq!(shown.replace(' ', ""), id);

        let input = self
            .agent
            .client
            .find(Locator::Id("session-id"))
            .await
            .unwrap();
        input.send_keys(&id).await.unwrap();
        self.agent
            .client
            .find(Locator::Id("join-button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_for!("the viewer to be live", {
            let st: String = self
                .agent
                .try_eval("return document.getElementById('state-pill').dataset.state;")
                .await?;
            if st == "active" {
                Ok(())
            } else {
                Err(st)
            }
        });
        wait_for!("the replica of the customer's page", {
            let ok: bool = self
                .agent
                .try_eval(&format!(
                    "{REPLICA} return !!(d && d.body && d.body.childElementCount);"
                ))
                .await?;
            if ok {
                Ok(())
            } else {
                Err("empty replica".into())
            }
        });
        wait_for!("the customer to learn the agent joined", {
            let v: Value = self
                .customer
                .try_eval("return window.cobrowse.session();")
                .await?;
            if v["state"] == "active" {
                Ok(())
            } else {
                Err(v.to_string())
            }
        });
        id
    }

    /// The customer clicks an element of their page (a real click). It is
    /// centred first: WebDriver would scroll it under the demo's sticky header
    /// or the widget's panel.
    pub async fn customer_click(&self, css: &str) -> fantoccini::elements::Element {
        self.customer
            .eval::<Value>(&format!(
                "document.querySelector({}).scrollIntoView({{ block: 'center' }});",
                serde_json::to_string(css).unwrap()
            ))
            .await;
        let el = self.customer.client.find(Locator::Css(css)).await.unwrap();
        el.click().await.unwrap();
        el
    }

    /// The customer types into a field of their page (real key events).
    pub async fn customer_types(&self, css: &str, text: &str) {
        let el = self.customer_click(css).await;
        el.send_keys(text).await.unwrap();
    }

    /// Click a widget control (in its shadow root) with a real click.
    pub async fn widget_click(&self, role: &str) {
        let host = self
            .customer
            .client
            .find(Locator::Css("[data-cobrowse-widget]"))
            .await
            .unwrap();
        let root = host.shadow_root().await.unwrap();
        let sel = format!("[data-role=\"{role}\"]");
        root.find(Locator::Css(&sel))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    /// Wait for the consent dialog on the customer's page and press Allow or Refuse.
    pub async fn customer_answers_consent(&self, role: &str) {
        wait_for!("the consent dialog", {
            let hidden: bool = self
                .customer
                .try_eval(
                    "return document.querySelector('[data-cobrowse-widget]').shadowRoot\
                     .querySelector('[data-role=\"consent\"]').hidden;",
                )
                .await?;
            if !hidden {
                Ok(())
            } else {
                Err("dialog hidden".into())
            }
        });
        self.widget_click(role).await;
    }

    pub async fn agent_mode_try(&self) -> Result<String, String> {
        self.agent
            .try_eval("return document.getElementById('mode-pill').dataset.mode;")
            .await
    }

    pub async fn agent_mode(&self) -> String {
        self.agent_mode_try().await.unwrap()
    }

    /// One field of `window.cobrowse.session()` on the customer's page.
    pub async fn customer_session_field(&self, field: &str) -> String {
        let v: Value = self
            .customer
            .eval("return window.cobrowse.session();")
            .await;
        v[field].as_str().unwrap_or_default().to_string()
    }

    /// Close both browsers, then the rest is dropped (driver, server).
    pub async fn finish(self) {
        let Stage {
            customer,
            agent,
            _driver,
            _app,
            _gate,
            ..
        } = self;
        customer.close().await;
        agent.close().await;
    }
}
