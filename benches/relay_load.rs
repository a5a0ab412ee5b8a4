//! Load generator for the relay: runs the real server in-process on loopback,
//! opens `SESSIONS` live sessions (customer + agent WebSocket each, real
//! tokio-tungstenite clients), and has every customer send `BATCHES` mutation
//! batches of 10 ops through the session actor and rewrite engine to its agent.
//! Reports customer→agent latency percentiles and total throughput, plus the
//! agent→customer pointer latency. Bounded in count and time; loopback only.
//!
//! In the same run, the same clients drive the reference: a plain axum
//! WebSocket echo that forwards each customer frame to its paired agent
//! socket untouched (no parsing, no rewrite), with the same frames and
//! pacing; the ratios relay/echo are printed last.
//!
//! Run: `cargo bench --bench relay_load` (env `SESSIONS`, `BATCHES`, `ITEMS`,
//! `RATE` = batches per second per session, 0 = unpaced).

use cobrowse::config::{Config, QueueLimits, Timeouts};
use cobrowse::protocol::Limits;
use cobrowse::store::Role;
use cobrowse::web;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The allocator the server binary uses (src/main.rs).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Longest wait for any one frame before the run is declared failed.
const DEADLINE: Duration = Duration::from_secs(120);

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A page of `n` list items plus a password field, so the rewrite does real work.
fn snapshot(n: u64) -> Value {
    let mut items = Vec::new();
    for i in 0..n {
        let id = 100 + i * 2;
        items.push(
            json!({"id": id, "type": "element", "tag": "li", "attrs": {"class": "item"},
            "children": [{"id": id + 1, "type": "text", "text": format!("item {i}")}]}),
        );
    }
    json!({"t": "snapshot", "url": "http://127.0.0.1/demo/checkout", "title": "load",
    "viewport": {"w": 1280.0, "h": 800.0},
    "root": {"id": 1, "type": "document", "children": [
        {"id": 2, "type": "element", "tag": "html", "children": [
            {"id": 3, "type": "element", "tag": "body", "children": [
                {"id": 4, "type": "element", "tag": "ul", "children": items},
                {"id": 5, "type": "element", "tag": "input", "attrs": {"type": "password"}, "value": "secret"}
            ]}]}]}})
}

async fn connect(url: &str, bearer: Option<&str>) -> Ws {
    let mut req = url.into_client_request().expect("request");
    if let Some(b) = bearer {
        req.headers_mut().insert(
            "authorization",
            format!("Bearer {b}").parse().expect("header"),
        );
    }
    tokio_tungstenite::connect_async(req)
        .await
        .expect("connect")
        .0
}

async fn recv_type(ws: &mut Ws, t: &str) -> Value {
    loop {
        match tokio::time::timeout(DEADLINE, ws.next()).await {
            Ok(Some(Ok(Message::Text(s)))) => {
                let v: Value = serde_json::from_str(s.as_str()).expect("json");
                if v["t"] == t {
                    return v;
                }
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("socket ended waiting for {t}: {other:?}"),
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn main() {
    // `cargo test --benches` passes `--bench`-less args; keep that run tiny.
    let quick = !std::env::args().any(|a| a == "--bench");
    let sessions = env_usize("SESSIONS", if quick { 2 } else { 50 });
    let batches = env_usize("BATCHES", if quick { 5 } else { 200 });
    let items = env_usize("ITEMS", if quick { 50 } else { 1000 }) as u64;
    // Batches per second per session; 0 sends as fast as the socket takes them.
    let rate = env_usize("RATE", 0) as u64;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let relay = run(sessions, batches, items, rate).await;
        let echo = run_echo(sessions, batches, items, rate).await;
        println!("reference (axum WebSocket echo, same frames and pacing):");
        echo.print();
        println!(
            "ratios relay/echo: p50 {:.1}x  p99 {:.1}x  throughput {:.2}x",
            relay.p50().as_secs_f64() / echo.p50().as_secs_f64().max(1e-9),
            relay.p99().as_secs_f64() / echo.p99().as_secs_f64().max(1e-9),
            relay.throughput() / echo.throughput().max(1e-9),
        );
    });
}

/// Latencies of one run.
struct Stats {
    lat: Vec<Duration>,
    pointers: Vec<Duration>,
    elapsed: Duration,
}

impl Stats {
    fn p50(&self) -> Duration {
        percentile(&self.lat, 0.5)
    }
    fn p99(&self) -> Duration {
        percentile(&self.lat, 0.99)
    }
    fn throughput(&self) -> f64 {
        self.lat.len() as f64 / self.elapsed.as_secs_f64()
    }
    fn print(&self) {
        let (all, pointers, elapsed) = (&self.lat, &self.pointers, self.elapsed);
        let total = all.len();
        println!(
            "  batches delivered: {total} in {:.2?} -> {:.0} batches/s, {:.0} ops/s",
            elapsed,
            total as f64 / elapsed.as_secs_f64(),
            total as f64 * 10.0 / elapsed.as_secs_f64()
        );
        println!(
            "  customer->agent latency: p50 {:.2?}  p90 {:.2?}  p99 {:.2?}  max {:.2?}",
            percentile(all, 0.5),
            percentile(all, 0.9),
            percentile(all, 0.99),
            percentile(all, 1.0)
        );
        println!(
            "  agent->customer pointer: p50 {:.2?}  max {:.2?}",
            percentile(pointers, 0.5),
            percentile(pointers, 1.0)
        );
    }
}

/// The reference server: `/echo/{id}/{c|a}`; each frame from one side is
/// forwarded as is to the other side of the same id.
async fn echo_server(listener: tokio::net::TcpListener) {
    use axum::extract::ws::{Message as AxMessage, WebSocketUpgrade};
    use axum::extract::{Path, State};
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    type Peers =
        Arc<Mutex<HashMap<(String, String), tokio::sync::mpsc::UnboundedSender<AxMessage>>>>;
    async fn handler(
        ws: WebSocketUpgrade,
        Path((id, side)): Path<(String, String)>,
        State(peers): State<Peers>,
    ) -> axum::response::Response {
        ws.on_upgrade(move |socket| async move {
            let (mut tx, mut rx) = socket.split();
            let (out_tx, mut out_rx) = tokio::sync::mpsc::unbounded_channel();
            let other = if side == "c" { "a" } else { "c" }.to_string();
            if let Ok(mut p) = peers.lock() {
                p.insert((id.clone(), side.clone()), out_tx);
            }
            let writer = tokio::spawn(async move {
                while let Some(m) = out_rx.recv().await {
                    if tx.send(m).await.is_err() {
                        break;
                    }
                }
            });
            while let Some(Ok(m)) = rx.next().await {
                if let AxMessage::Text(_) = m {
                    let peer = peers
                        .lock()
                        .ok()
                        .and_then(|p| p.get(&(id.clone(), other.clone())).cloned());
                    if let Some(peer) = peer {
                        let _ = peer.send(m);
                    }
                }
            }
            writer.abort();
        })
    }
    let peers: Peers = Arc::default();
    let app = axum::Router::new()
        .route("/echo/{id}/{side}", axum::routing::get(handler))
        .with_state(peers);
    let _ = axum::serve(listener, app).await;
}

async fn run_echo(sessions: usize, batches: usize, items: u64, rate: u64) -> Stats {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(echo_server(listener));
    let mut pairs = Vec::new();
    for i in 0..sessions {
        let mut a = connect(&format!("ws://{addr}/echo/{i}/a"), None).await;
        let mut c = connect(&format!("ws://{addr}/echo/{i}/c"), None).await;
        // Both registered: the snapshot reaches the agent.
        c.send(Message::Text(snapshot(items).to_string().into()))
            .await
            .expect("send");
        recv_type(&mut a, "snapshot").await;
        pairs.push((c, a));
    }
    let stats = drive(pairs, batches, items, rate).await;
    server.abort();
    stats
}

async fn run(sessions: usize, batches: usize, items: u64, rate: u64) -> Stats {
    let dir = tempfile::tempdir().expect("temp dir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let long = Duration::from_secs(600);
    let config = Config {
        listen: addr,
        db: dir.path().join("load.db"),
        public_url: format!("http://{addr}"),
        timeouts: Timeouts {
            waiting: long,
            inactivity: long,
            agent_away: long,
            customer_away: long,
        },
        limits: Limits {
            max_messages_per_sec: 100_000,
            ..Limits::default()
        },
        queues: QueueLimits::default(),
        // A load test is one address starting many sessions.
        server: cobrowse::config::ServerLimits {
            sessions_per_minute: u32::MAX,
            live_sessions: usize::MAX,
            live_sessions_per_site: usize::MAX,
            ..Default::default()
        },
        ..Config::default()
    };
    let (state, _boot) = web::build_state(config).await.expect("state");
    let mut tokens = Vec::new();
    for i in 0..sessions {
        let name = format!("load-agent-{i}");
        state
            .store
            .create_user(&name, Role::Agent, "load-password-1")
            .await
            .expect("user");
        tokens.push(
            state
                .store
                .create_token(&name, "load")
                .await
                .expect("token"),
        );
    }
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(web::serve(listener, state, async move {
        let _ = stop_rx.await;
    }));
    let http = reqwest::Client::new();
    let base = format!("http://{addr}");

    // Set up every session before measuring.
    let mut pairs = Vec::new();
    for token in &tokens {
        let v: Value = http
            .post(format!("{base}/api/v1/sessions"))
            .json(&json!({"site": "demo", "url": format!("{base}/demo/checkout")}))
            .send()
            .await
            .expect("create")
            .json()
            .await
            .expect("json");
        let id = v["id"].as_str().expect("id").to_owned();
        let ctoken = v["token"].as_str().expect("token").to_owned();
        let mut c = connect(
            &format!("ws://{addr}/ws/customer/{id}?token={ctoken}"),
            None,
        )
        .await;
        recv_type(&mut c, "rules").await;
        c.send(Message::Text(snapshot(items).to_string().into()))
            .await
            .expect("send");
        let mut a = connect(&format!("ws://{addr}/ws/agent/{id}"), Some(token)).await;
        recv_type(&mut a, "snapshot").await;
        pairs.push((c, a));
    }

    println!(
        "relay load: {sessions} sessions x {batches} batches of 10 ops, page of {items} items, rate {}",
        if rate == 0 { "unpaced".to_string() } else { format!("{rate}/s per session") }
    );
    let stats = drive(pairs, batches, items, rate).await;
    stats.print();
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(30), server).await;
    stats
}

/// Every customer sends its batches (paced by `rate`), every agent waits
/// for them; the customer->agent latency of each batch and one agent->customer
/// pointer per pair.
async fn drive(pairs: Vec<(Ws, Ws)>, batches: usize, items: u64, rate: u64) -> Stats {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (mut c, mut a) in pairs {
        tasks.push(tokio::spawn(async move {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
            let sender = tokio::spawn(async move {
                let mut tick = (rate > 0)
                    .then(|| tokio::time::interval(Duration::from_micros(1_000_000 / rate)));
                for b in 0..batches as u64 {
                    if let Some(t) = tick.as_mut() {
                        t.tick().await;
                    }
                    let ops: Vec<Value> = (0..10u64)
                        .map(|k| {
                            json!({"op": "text", "id": 101 + ((b * 10 + k) % items) * 2,
                                "text": format!("v{b}-{k}")})
                        })
                        .collect();
                    let msg = json!({"t": "mutations", "ops": ops}).to_string();
                    let _ = tx.send(Instant::now());
                    c.send(Message::Text(msg.into())).await.expect("send batch");
                }
                c
            });
            let mut lat = Vec::with_capacity(batches);
            while lat.len() < batches {
                recv_type(&mut a, "mutations").await;
                let sent = rx.recv().await.expect("send time");
                lat.push(sent.elapsed());
            }
            let mut c = sender.await.expect("sender");
            // Pointer agent → customer.
            let t0 = Instant::now();
            a.send(Message::Text(
                json!({"t": "pointer", "x": 10.0, "y": 20.0})
                    .to_string()
                    .into(),
            ))
            .await
            .expect("pointer");
            recv_type(&mut c, "pointer").await;
            (lat, t0.elapsed())
        }));
    }
    let mut all = Vec::new();
    let mut pointers = Vec::new();
    for t in tasks {
        let (lat, p) = t.await.expect("session task");
        all.extend(lat);
        pointers.push(p);
    }
    let elapsed = started.elapsed();
    all.sort();
    pointers.sort();
    Stats {
        lat: all,
        pointers,
        elapsed,
    }
}
