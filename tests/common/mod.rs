//! Shared test harness: `spawn_app()` runs the real server in-process on
//! 127.0.0.1:0 with a temporary SQLite database and caller-chosen timeouts,
//! creates agent accounts and bearer tokens, and offers WebSocket clients
//! (tokio-tungstenite) with `recv_until(predicate, deadline)` polling.
#![allow(dead_code)]

use cobrowse::config::{Config, QueueLimits, ServerLimits, Timeouts};
use cobrowse::protocol::Limits;
use cobrowse::store::Role;
use cobrowse::web::{self, AppState};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Generous deadline for things that should happen promptly.
pub const SOON: Duration = Duration::from_secs(10);

/// Password of the test agents.
pub const AGENT_PASSWORD: &str = "agent-password-1";

/// What to run the server with.
#[derive(Debug, Clone)]
pub struct TestOptions {
    pub timeouts: Timeouts,
    pub limits: Limits,
    pub queues: QueueLimits,
    /// Server limits; the default lifts the per-address session rate (every
    /// test client is 127.0.0.1) and keeps the rest at production defaults.
    pub server: ServerLimits,
    /// Peers whose `X-Forwarded-For` is believed (none by default).
    pub trusted_proxies: Vec<cobrowse::config::IpNet>,
    /// The resource proxy's limits (production defaults).
    pub proxy: cobrowse::config::ProxyLimits,
}

impl Default for TestOptions {
    fn default() -> Self {
        // Long enough never to fire by accident during a test.
        let long = Duration::from_secs(120);
        TestOptions {
            timeouts: Timeouts {
                waiting: long,
                inactivity: long,
                agent_away: long,
                customer_away: long,
            },
            limits: Limits::default(),
            queues: QueueLimits::default(),
            server: ServerLimits {
                sessions_per_minute: 100_000,
                ..ServerLimits::default()
            },
            trusted_proxies: Vec::new(),
            proxy: cobrowse::config::ProxyLimits::default(),
        }
    }
}

/// A running server and its credentials.
pub struct TestApp {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// `ws://127.0.0.1:PORT`
    pub ws_base: String,
    pub state: AppState,
    /// Bearer token of agent `agent1`.
    pub agent_token: String,
    /// Bearer token of agent `agent2`.
    pub agent2_token: String,
    /// Bearer token of a third agent `agent3`.
    pub agent3_token: String,
    /// The generated password of `admin`.
    pub admin_password: String,
    /// The integration API key of the `demo` site.
    pub demo_api_key: String,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

/// Start a server with default (long) timeouts.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(TestOptions::default()).await
}

/// Start a server with the given options.
pub async fn spawn_app_with(opts: TestOptions) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let base = format!("http://{addr}");
    let config = Config {
        listen: addr,
        db: dir.path().join("test.db"),
        public_url: base.clone(),
        timeouts: opts.timeouts,
        limits: opts.limits,
        queues: opts.queues,
        server: opts.server,
        trusted_proxies: opts.trusted_proxies,
        proxy: opts.proxy,
        ..Config::default()
    };
    let (state, boot) = web::build_state(config).await.expect("state");
    let mut tokens = Vec::new();
    for name in ["agent1", "agent2", "agent3"] {
        state
            .store
            .create_user(name, Role::Agent, AGENT_PASSWORD)
            .await
            .expect("create agent");
        tokens.push(state.store.create_token(name, "test").await.expect("token"));
    }
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(web::serve(listener, state.clone(), async move {
        let _ = rx.await;
    }));
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client");
    TestApp {
        addr,
        ws_base: format!("ws://{addr}"),
        base,
        state,
        agent_token: tokens[0].clone(),
        agent2_token: tokens[1].clone(),
        agent3_token: tokens[2].clone(),
        admin_password: boot.admin_password.expect("admin password on first start"),
        demo_api_key: boot.demo_api_key.expect("demo key on first start"),
        http,
        dir,
        shutdown: Some(tx),
        server: Some(server),
    }
}

impl TestApp {
    /// Save `rules` + `settings` as the demo site's draft, publish it and
    /// push it to live sessions (as the editor's publish does).
    pub async fn publish_demo_rules(
        &self,
        rules: &[(&str, cobrowse::rules::Action, Option<&str>)],
        settings: cobrowse::rules::SiteSettings,
    ) {
        let site = self.state.store.site_by_key("demo").await.unwrap().unwrap();
        let rules: Vec<cobrowse::rules::Rule> = rules
            .iter()
            .map(|(selector, action, url)| cobrowse::rules::Rule {
                selector: (*selector).into(),
                action: *action,
                url: url.map(str::to_string),
                description: String::new(),
                enabled: true,
            })
            .collect();
        self.state
            .store
            .save_draft(site.id, &rules, settings, "test")
            .await
            .unwrap();
        self.state
            .store
            .publish_draft(site.id, "test", "test rules")
            .await
            .unwrap();
        let compiled = self.state.registry.rules_for(site.id).await.unwrap();
        self.state.registry.publish_rules(site.id, compiled).await;
    }

    /// `base` + path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Trigger graceful shutdown and wait for the server to stop.
    pub async fn shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(30), server)
                .await
                .expect("server stops within 30s")
                .expect("server task")
                .expect("server result");
        }
    }

    /// `POST /api/v1/sessions` with a JSON body.
    pub async fn post_session(&self, body: Value) -> reqwest::Response {
        self.http
            .post(self.url("/api/v1/sessions"))
            .json(&body)
            .send()
            .await
            .expect("POST /api/v1/sessions")
    }

    /// Start a session on the demo site; returns (id, token).
    pub async fn create_session(&self) -> (String, String) {
        self.create_session_with(json!({"site": "demo", "url": format!("{}/demo/", self.base)}))
            .await
    }

    /// Start a session with a custom body; returns (id, token).
    pub async fn create_session_with(&self, body: Value) -> (String, String) {
        let resp = self.post_session(body).await;
        assert_eq!(resp.status(), 201, "session create failed");
        let v: Value = resp.json().await.expect("json");
        (
            v["id"].as_str().expect("id").to_owned(),
            v["token"].as_str().expect("token").to_owned(),
        )
    }

    /// Open the customer socket.
    pub async fn customer(&self, id: &str, token: &str) -> WsClient {
        WsClient::connect(
            &format!("{}/ws/customer/{id}?token={token}", self.ws_base),
            None,
        )
        .await
        .expect("customer socket")
    }

    /// Open an agent socket with a bearer token.
    pub async fn agent_with(&self, id: &str, bearer: &str) -> WsClient {
        WsClient::connect(&format!("{}/ws/agent/{id}", self.ws_base), Some(bearer))
            .await
            .expect("agent socket")
    }

    /// Open the socket of `agent1`.
    pub async fn agent(&self, id: &str) -> WsClient {
        self.agent_with(id, &self.agent_token).await
    }

    /// A session with the customer connected (session + rules consumed) and
    /// `agent1` joined (session, snapshot, viewport consumed on both sides).
    pub async fn active_session(&self) -> (String, String, WsClient, WsClient) {
        let (id, token) = self.create_session().await;
        let mut c = self.customer(&id, &token).await;
        c.recv_type("session").await;
        c.recv_type("rules").await;
        c.send(sample_snapshot("hello")).await;
        c.recv_type("rules").await;
        let mut a = self.agent(&id).await;
        a.recv_type("snapshot").await;
        c.recv_until(|m| m["t"] == "session" && m["state"] == "active", SOON)
            .await;
        (id, token, c, a)
    }

    /// Poll the history table until a row for `id` has an end reason.
    pub async fn ended_history(&self, id: &str) -> cobrowse::store::HistoryRow {
        let deadline = tokio::time::Instant::now() + SOON;
        loop {
            let rows = self.state.store.history_of(id).await.expect("history");
            if let Some(row) = rows.into_iter().find(|r| r.end_reason.is_some()) {
                return row;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no ended history row for {id}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A small customer document with one text node `text` and a password field.
pub fn sample_snapshot(text: &str) -> Value {
    json!({
        "t": "snapshot",
        "url": "http://shop.test/checkout",
        "title": "Checkout",
        "viewport": {"w": 1280.0, "h": 800.0},
        "root": {"id": 1, "type": "document", "children": [
            {"id": 2, "type": "doctype", "name": "html"},
            {"id": 3, "type": "element", "tag": "html", "children": [
                {"id": 4, "type": "element", "tag": "body", "children": [
                    {"id": 5, "type": "element", "tag": "p", "children": [
                        {"id": 6, "type": "text", "text": text}
                    ]},
                    {"id": 7, "type": "element", "tag": "input", "attrs": {"type": "text", "name": "q"}},
                    {"id": 8, "type": "element", "tag": "input", "attrs": {"type": "password"}}
                ]}
            ]}
        ]}
    })
}

/// A WebSocket test client.
pub struct WsClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Every JSON frame received so far (for failure messages).
    pub seen: Vec<Value>,
}

impl WsClient {
    /// Connect, optionally with `Authorization: Bearer`.
    pub async fn connect(
        url: &str,
        bearer: Option<&str>,
    ) -> Result<WsClient, tokio_tungstenite::tungstenite::Error> {
        let mut req = url.into_client_request()?;
        if let Some(b) = bearer {
            req.headers_mut().insert(
                "authorization",
                format!("Bearer {b}").parse().expect("header"),
            );
        }
        let (ws, _) = tokio_tungstenite::connect_async(req).await?;
        Ok(WsClient {
            ws,
            seen: Vec::new(),
        })
    }

    /// Wrap an already connected stream.
    pub fn from_stream(ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> WsClient {
        WsClient {
            ws,
            seen: Vec::new(),
        }
    }

    /// Send a JSON message.
    pub async fn send(&mut self, v: Value) {
        self.send_text(v.to_string()).await;
    }

    /// Send a raw text frame.
    pub async fn send_text(&mut self, s: String) {
        self.ws.send(Message::Text(s.into())).await.expect("send");
    }

    /// Send a raw binary frame.
    pub async fn send_binary(&mut self, b: Vec<u8>) {
        self.ws.send(Message::Binary(b.into())).await.expect("send");
    }

    /// The next JSON text frame within `within`; `None` if the socket closed.
    /// Panics on timeout.
    pub async fn recv(&mut self, within: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| {
                    panic!("no frame within {within:?}; seen so far: {:#?}", self.seen)
                });
            match next {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return None,
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(t.as_str()).expect("server sent JSON");
                    self.seen.push(v.clone());
                    return Some(v);
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Read frames until one matches `pred` (within `within`); panics otherwise.
    pub async fn recv_until(&mut self, pred: impl Fn(&Value) -> bool, within: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.recv(left).await {
                Some(v) if pred(&v) => return v,
                Some(_) => continue,
                None => panic!(
                    "socket closed before the expected frame; seen: {:#?}",
                    self.seen
                ),
            }
        }
    }

    /// Read until a frame of type `t`.
    pub async fn recv_type(&mut self, t: &str) -> Value {
        self.recv_until(|m| m["t"] == t, SOON).await
    }

    /// Read until the `ended` frame; returns its reason.
    pub async fn recv_ended(&mut self) -> String {
        let m = self.recv_type("ended").await;
        m["reason"].as_str().expect("reason").to_owned()
    }

    /// Expect the socket to close (after any remaining frames) within `within`.
    pub async fn expect_closed(&mut self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if self.recv(left).await.is_none() {
                return;
            }
        }
    }

    /// The first frame after connecting, expected to be an `error`; returns its code.
    pub async fn recv_error_code(&mut self) -> String {
        let m = self.recv_type("error").await;
        m["code"].as_str().expect("code").to_owned()
    }

    /// Close the socket from our side.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
        // Drain until the server's close arrives so the server sees a clean close.
        let _ = tokio::time::timeout(SOON, async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }
}
