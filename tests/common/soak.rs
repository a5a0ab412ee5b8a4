//! The soak harness shared by `tests/relay/soak.rs` (a short run in the test
//! suite) and `benches/soak.rs` (1,000 sessions for a bounded time); both
//! include this file with `#[path]`.
//!
//! It runs the real server in-process on 127.0.0.1 (port 0), publishes the
//! `demo` site's default rule pack plus one class rule (`.secret` → mask),
//! and opens `sessions` live sessions, each a synthetic customer and a
//! synthetic agent on real tokio-tungstenite sockets (the agent with its own
//! account and bearer token, as one agent can only be in one session).
//!
//! - Every customer sends a snapshot of a checkout page full of secrets
//!   (a password value, card numbers in `autocomplete=cc-number` and
//!   `name=cardnumber` fields, a CVC, `.secret` text, a card number in plain
//!   text and in a plain text field), then random mutation batches (text
//!   changes, typing passwords and card numbers key by key, class toggles
//!   that mask and unmask boxes, inserts and removes), keeping its own copy
//!   of the page (a real [`Dom`]). Every batch also sets the text of a
//!   public sequence node (`seq N`), which is how the agent side recognises
//!   each batch, measures its latency and notices a lost one. A `resync`
//!   from the server is answered with a fresh snapshot (new epoch), as the
//!   snippet does.
//! - Every agent keeps its copy by applying what it receives (`snapshot`
//!   replaces it; `resync` veils it until the next snapshot) and checks
//!   every frame for privacy: no secret marker, no card prefix longer than
//!   six digits, and the always-masked fields carry only mask characters.
//! - Sessions stop sending after `batches` or at `duration`, then wait for
//!   quiescence (the agent has the last batch, or a snapshot at least as
//!   new) with a stall deadline, never a sleep; then every agent copy is
//!   compared with `oracle(rules in force, customer copy)`, every session
//!   must still be live, and the sessions are ended.
//!
//! Figures: batches sent/delivered, throughput, customer→agent latency
//! percentiles, process RSS (before the sessions, with them live, after they
//! end) and CPU time (process, and the client runtime's threads when the
//! server runs on its own runtime) over the batch phase.

use cobrowse::config::{Config, QueueLimits, ServerLimits, Timeouts};
use cobrowse::dom::Dom;
use cobrowse::protocol::{Limits, Node, NodeId, Op, Presence, Snapshot, ToAgent, Viewport};
use cobrowse::rewrite::oracle;
use cobrowse::rules::{Action, CompiledRules, Rule};
use cobrowse::store::Role;
use cobrowse::web::{self, AppState};
use futures_util::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::time::{Instant, Interval, MissedTickBehavior, Sleep};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Name of the threads of the client runtime (the bench runs the server on
/// another runtime, so the two sides' CPU time can be told apart).
pub const CLIENT_THREAD: &str = "soak-client";

/// Every secret string the customers send contains this marker (upper case;
/// public text is lower case, so it can only reach an agent by a leak).
pub const MARKER: &str = "SECRET";

/// Test card numbers (all Luhn-valid). No agent frame may contain more than
/// the first six digits of any of them.
pub const CARDS: [&str; 4] = [
    "4111111111111111",
    "5555555555554444",
    "4012888888881881",
    "6011111111111117",
];

/// Characters the card-number rule allows between digits (see
/// `rules::detect::SEPARATORS`); removed before looking for card prefixes.
const SEPARATORS: [char; 7] = [' ', '-', '.', '\u{a0}', '\u{2009}', '\u{202f}', '\u{2007}'];

// Node ids of the page's fixed part.
const SEQ_TEXT: NodeId = 9;
const PW: NodeId = 11;
const CC_AUTO: NodeId = 12;
const CC_NAME: NodeId = 13;
const CVC: NodeId = 14;
const NOTES: NodeId = 15;
const NOTE_TEXT: NodeId = 17;
const LIST: NodeId = 18;
const BOXES: NodeId = 19;
/// Fields the default rule pack always masks: the agent may see only mask
/// characters in their values.
const MASKED_FIELDS: [NodeId; 4] = [PW, CC_AUTO, CC_NAME, CVC];

/// What to run.
#[derive(Debug, Clone)]
pub struct SoakConfig {
    pub sessions: usize,
    /// Batches per session (stop after this many), if bounded by count.
    pub batches: Option<u64>,
    /// Length of the batch phase, if bounded by time.
    pub duration: Option<Duration>,
    /// Batches per second per session; 0 = closed loop (the next batch
    /// leaves when the agent has the previous one).
    pub rate: u64,
    /// Seed of the customers' random generators (session `i` uses `seed + i`).
    pub seed: u64,
    /// A session whose agent makes no progress for this long while a batch
    /// is outstanding is declared lost (a deadline, not a sleep).
    pub stall: Duration,
    /// Sessions set up at once.
    pub setup_concurrency: usize,
}

/// The server under test.
pub struct SoakServer {
    pub addr: SocketAddr,
    pub state: AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl SoakServer {
    /// Start the real server on 127.0.0.1:0 on `rt`, with its connection and
    /// session caps raised for `sessions` sessions (2 sockets each) and the
    /// per-address session rate lifted (every client is 127.0.0.1). Every
    /// other limit (message rate, sizes, queues, rewrite budget, WebSocket
    /// idle timeout) stays at its production default; the away and
    /// inactivity timeouts are long so none fires during a run.
    pub async fn start(sessions: usize, rt: &Handle) -> SoakServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let long = Duration::from_secs(3600);
        let config = Config {
            listen: addr,
            db: dir.path().join("soak.db"),
            public_url: format!("http://{addr}"),
            timeouts: Timeouts {
                waiting: long,
                inactivity: long,
                agent_away: long,
                customer_away: long,
            },
            limits: Limits::default(),
            queues: QueueLimits::default(),
            server: ServerLimits {
                sessions_per_minute: u32::MAX,
                live_sessions: sessions + 16,
                live_sessions_per_site: sessions + 16,
                max_connections: 2 * sessions + 64,
                ..ServerLimits::default()
            },
            ..Config::default()
        };
        let (state, _boot) = rt
            .spawn(web::build_state(config))
            .await
            .expect("build_state task")
            .expect("server state");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = rt.spawn(web::serve(listener, state.clone(), async move {
            let _ = stopped.await;
        }));
        SoakServer {
            addr,
            state,
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
        }
    }

    /// Publish the demo site's current rules (the default pack) plus
    /// `.secret` → mask, as the editor's publish does; returns the compiled
    /// rules the server now has in force.
    pub async fn publish_rules(&self) -> Arc<CompiledRules> {
        let store = &self.state.store;
        let site = store.site_by_key("demo").await.unwrap().expect("demo site");
        let current = store
            .published(site.id)
            .await
            .unwrap()
            .expect("the demo site has a published version");
        let mut rules = current.rules.clone();
        rules.push(Rule {
            selector: ".secret".into(),
            action: Action::Mask,
            url: None,
            description: "soak: class-masked text".into(),
            enabled: true,
        });
        store
            .save_draft(site.id, &rules, current.settings, "soak")
            .await
            .unwrap();
        store
            .publish_draft(site.id, "soak", "soak rules")
            .await
            .unwrap();
        self.rules_in_force().await
    }

    /// The compiled rules the server uses for the demo site right now.
    pub async fn rules_in_force(&self) -> Arc<CompiledRules> {
        let site = self
            .state
            .store
            .site_by_key("demo")
            .await
            .unwrap()
            .expect("demo site");
        let rules = self.state.registry.rules_for(site.id).await.unwrap();
        self.state
            .registry
            .publish_rules(site.id, rules.clone())
            .await;
        rules
    }

    /// `n` agent accounts with one bearer token each.
    pub async fn agent_tokens(&self, n: usize) -> Vec<String> {
        let store = self.state.store.clone();
        futures_util::stream::iter(0..n)
            .map(|i| {
                let store = store.clone();
                async move {
                    let name = format!("soak-agent-{i}");
                    store
                        .create_user(&name, Role::Agent, "soak-password-1")
                        .await
                        .expect("create agent");
                    store.create_token(&name, "soak").await.expect("token")
                }
            })
            .buffered(4)
            .collect()
            .await
    }

    /// Graceful shutdown.
    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
        }
    }
}

/// The outcome of a run.
#[derive(Debug, Default)]
pub struct Report {
    pub sessions: usize,
    pub rate: u64,
    /// Setting up every session (create, both sockets, first snapshot).
    pub setup: Duration,
    /// The batch phase: start signal to the last session's quiescence.
    pub elapsed: Duration,
    pub batches_sent: u64,
    pub ops_sent: u64,
    /// Batches the agents received as `mutations` (the rest were covered by
    /// a snapshot after a resync).
    pub batches_delivered: u64,
    /// Customer→agent latency of every delivered batch, sorted.
    pub latencies: Vec<Duration>,
    /// `resync` frames the agents received.
    pub agent_resyncs: u64,
    /// Snapshots the customers sent in answer to a `resync`.
    pub customer_resyncs: u64,
    /// Snapshots the agents received during the batch phase.
    pub agent_snapshots: u64,
    /// Frames the agents received in total (all phases).
    pub agent_frames: u64,
    /// Privacy violations (count, and the first few described).
    pub violations: u64,
    pub violation_samples: Vec<String>,
    /// Agent copies that differ from the oracle.
    pub mismatches: Vec<String>,
    /// Sessions that ended, lost a socket, stalled or lost a batch.
    pub lost: Vec<String>,
    /// VmRSS in KiB with the server started, before the agent accounts are
    /// created (Argon2 hashing grows the heap).
    pub rss_start: u64,
    /// VmRSS in KiB: before the sessions, with them set up, at the end of
    /// the batch phase (still live), after they ended.
    pub rss_before: u64,
    pub rss_idle: u64,
    pub rss_live: u64,
    pub rss_after: u64,
    /// CPU time of the whole process over the batch phase.
    pub cpu_process: Duration,
    /// CPU time of the client runtime's threads over the batch phase (only
    /// when they are named [`CLIENT_THREAD`]).
    pub cpu_client: Option<Duration>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

impl Report {
    pub fn p50(&self) -> Duration {
        percentile(&self.latencies, 0.5)
    }

    pub fn p99(&self) -> Duration {
        percentile(&self.latencies, 0.99)
    }

    /// Everything that makes the run fail.
    pub fn failures(&self) -> Vec<String> {
        let mut f = Vec::new();
        if self.violations > 0 {
            f.push(format!(
                "{} privacy violations, e.g. {:?}",
                self.violations, self.violation_samples
            ));
        }
        if !self.mismatches.is_empty() {
            f.push(format!(
                "{} agent copies differ from the oracle, e.g. {}",
                self.mismatches.len(),
                self.mismatches[0]
            ));
        }
        if !self.lost.is_empty() {
            f.push(format!(
                "{} sessions lost, e.g. {:?}",
                self.lost.len(),
                &self.lost[..self.lost.len().min(5)]
            ));
        }
        if self.batches_sent == 0 {
            f.push("no batch was sent".into());
        }
        f
    }

    /// The figures, human-readable.
    pub fn print(&self) {
        let n = self.sessions.max(1) as f64;
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let per_batch = |d: Duration| d.as_secs_f64() * 1e6 / self.batches_sent.max(1) as f64;
        println!(
            "soak: {} sessions, rate {}, setup {:.1?}",
            self.sessions,
            if self.rate == 0 {
                "closed loop".to_string()
            } else {
                format!("{}/s per session", self.rate)
            },
            self.setup
        );
        println!(
            "  batches sent {} ({} ops), delivered as mutations {}, covered by resync {}; \
             batch phase {:.2?} -> {:.0} batches/s delivered",
            self.batches_sent,
            self.ops_sent,
            self.batches_delivered,
            self.batches_sent.saturating_sub(self.batches_delivered),
            self.elapsed,
            self.batches_delivered as f64 / secs
        );
        println!(
            "  customer->agent latency: p50 {:.2?}  p90 {:.2?}  p99 {:.2?}  max {:.2?}",
            self.p50(),
            percentile(&self.latencies, 0.9),
            self.p99(),
            percentile(&self.latencies, 1.0)
        );
        println!(
            "  resyncs: {} to agents, {} customer snapshots in answer; {} agent snapshots in the batch phase; {} agent frames checked",
            self.agent_resyncs, self.customer_resyncs, self.agent_snapshots, self.agent_frames
        );
        println!(
            "  RSS (server + clients): server started {:.1} MiB, accounts created (before the sessions) {:.1} MiB, sessions set up {:.1} MiB, end of batches {:.1} MiB, after end {:.1} MiB",
            self.rss_start as f64 / 1024.0,
            self.rss_before as f64 / 1024.0,
            self.rss_idle as f64 / 1024.0,
            self.rss_live as f64 / 1024.0,
            self.rss_after as f64 / 1024.0
        );
        println!(
            "  per session: {:.1} KiB set up, {:.1} KiB after the batches; after end {:.1} KiB/session still held ({:.0}% of the live growth returned)",
            (self.rss_idle as f64 - self.rss_before as f64) / n,
            (self.rss_live as f64 - self.rss_before as f64) / n,
            (self.rss_after as f64 - self.rss_before as f64) / n,
            100.0 * (self.rss_live as f64 - self.rss_after as f64)
                / (self.rss_live as f64 - self.rss_before as f64).max(1.0)
        );
        match self.cpu_client {
            Some(client) => {
                let server = self.cpu_process.saturating_sub(client);
                println!(
                    "  CPU over the batch phase: process {:.2?} = {:.0} us/batch; server (not the client runtime) {:.2?} = {:.0} us/batch; clients {:.2?} = {:.0} us/batch",
                    self.cpu_process,
                    per_batch(self.cpu_process),
                    server,
                    per_batch(server),
                    client,
                    per_batch(client)
                );
            }
            None => println!(
                "  CPU over the batch phase: process {:.2?} = {:.0} us/batch (server + clients)",
                self.cpu_process,
                per_batch(self.cpu_process)
            ),
        }
        println!(
            "  privacy violations {}, oracle mismatches {}, lost sessions {}",
            self.violations,
            self.mismatches.len(),
            self.lost.len()
        );
    }
}

/// VmRSS of this process in KiB.
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// utime + stime of a `/proc/.../stat` line, in clock ticks.
fn stat_ticks(stat: &str) -> u64 {
    // The command name (field 2) may contain spaces; fields after it are plain.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14, stime field 15.
    let get = |i: usize| {
        f.get(i - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    get(14) + get(15)
}

/// Clock ticks per second of `/proc` CPU times (USER_HZ, 100 on Linux).
const TICKS_PER_SEC: u64 = 100;

fn ticks(t: u64) -> Duration {
    Duration::from_millis(t * 1000 / TICKS_PER_SEC)
}

/// CPU time of the whole process (all threads, live and exited).
pub fn cpu_process() -> Duration {
    ticks(
        std::fs::read_to_string("/proc/self/stat")
            .map(|s| stat_ticks(&s))
            .unwrap_or(0),
    )
}

/// CPU time of this process's live threads named `name`.
pub fn cpu_threads(name: &str) -> Duration {
    let mut total = 0;
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for t in dir.flatten() {
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            if comm.trim_end() == name {
                total += std::fs::read_to_string(t.path().join("stat"))
                    .map(|s| stat_ticks(&s))
                    .unwrap_or(0);
            }
        }
    }
    ticks(total)
}

/// The soft limit on open files, if `/proc/self/limits` says.
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

fn unlimited() -> Limits {
    Limits {
        max_nodes: usize::MAX,
        max_depth: usize::MAX,
        max_ops: usize::MAX,
        ..Limits::default()
    }
}

/// Apply one op to a copy, as the snippet (customer) or viewer (agent) does.
fn apply_op(dom: &mut Dom, op: &Op) -> Result<(), String> {
    let l = unlimited();
    let r = match op {
        Op::Insert {
            parent,
            before,
            node,
        } => dom.insert(*parent, *before, node, &l).map(|_| ()),
        Op::Remove { id } => dom.remove(*id).map(|_| ()),
        Op::Attr { id, name, value } => dom.set_attr(*id, name, value.as_deref()).map(|_| ()),
        Op::Text { id, text } => dom.set_text(*id, text).map(|_| ()),
        Op::Value { id, value, checked } => dom.set_value(*id, value, *checked).map(|_| ()),
    };
    r.map_err(|e| format!("{op:?}: {e}"))
}

fn root_node(dom: &Dom) -> Option<Node> {
    dom.root().map(|r| dom.to_node(r))
}

fn el(id: NodeId, tag: &str, attrs: &[(&str, &str)], children: Vec<Node>) -> Node {
    Node::Element {
        id,
        tag: tag.into(),
        ns: None,
        attrs: attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        children,
        value: None,
        checked: None,
    }
}

fn input(id: NodeId, attrs: &[(&str, &str)], value: &str) -> Node {
    let mut n = el(id, "input", attrs, Vec::new());
    if let Node::Element { value: v, .. } = &mut n {
        *v = Some(value.to_string());
    }
    n
}

fn text(id: NodeId, t: &str) -> Node {
    Node::Text { id, text: t.into() }
}

/// A card number in groups of four, as a page prints it.
fn grouped(card: &str) -> String {
    card.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap_or(""))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Lower-case letters only: public text never carries the marker or digits.
fn word(rng: &mut StdRng) -> String {
    let n = rng.random_range(3..9);
    (0..n)
        .map(|_| (b'a' + rng.random_range(0..26u8)) as char)
        .collect()
}

/// A field the customer types into, key by key.
struct Field {
    id: NodeId,
    /// What is being typed.
    target: String,
    /// Characters typed so far.
    typed: usize,
}

struct Item {
    id: NodeId,
    text_id: NodeId,
    secret: bool,
}

struct BoxEl {
    id: NodeId,
    text_id: NodeId,
    masked: bool,
}

/// The customer's model of its page, to generate valid random batches.
struct Model {
    tag: String,
    fields: Vec<Field>,
    items: Vec<Item>,
    boxes: Vec<BoxEl>,
    next_id: NodeId,
}

impl Model {
    fn secret(&self, rng: &mut StdRng) -> String {
        format!("{MARKER}-{}-{}", self.tag, word(rng))
    }

    fn card(rng: &mut StdRng) -> &'static str {
        CARDS[rng.random_range(0..CARDS.len())]
    }

    /// A fresh value to type into `id`.
    fn target_for(&self, id: NodeId, rng: &mut StdRng) -> String {
        match id {
            PW => self.secret(rng),
            CVC => format!("{}", rng.random_range(100..1000)),
            _ => Model::card(rng).to_string(),
        }
    }

    /// Public text, sometimes with a (Luhn-valid) card number in it.
    fn public_text(rng: &mut StdRng) -> String {
        if rng.random_range(0..5) == 0 {
            format!("paid with {}", grouped(Model::card(rng)))
        } else {
            format!("item {} {}", word(rng), word(rng))
        }
    }

    /// The initial page; returns the document node.
    fn new(idx: usize, rng: &mut StdRng) -> (Model, Node) {
        // The session's tag in letters (no digits in secrets but the cards).
        let mut tag = String::new();
        let mut k = idx;
        loop {
            tag.push((b'a' + (k % 26) as u8) as char);
            k /= 26;
            if k == 0 {
                break;
            }
        }
        let mut m = Model {
            tag,
            fields: Vec::new(),
            items: Vec::new(),
            boxes: Vec::new(),
            next_id: 1000,
        };
        for id in [PW, CC_AUTO, CC_NAME, CVC, NOTES] {
            let target = m.target_for(id, rng);
            m.fields.push(Field {
                id,
                typed: target.len(),
                target,
            });
        }
        let value = |m: &Model, id: NodeId| {
            m.fields
                .iter()
                .find(|f| f.id == id)
                .map(|f| f.target.clone())
                .unwrap_or_default()
        };
        let mut items = Vec::new();
        for i in 0..12u64 {
            let (id, text_id) = (100 + 2 * i, 101 + 2 * i);
            let secret = i % 5 == 1;
            let (class, t) = if secret {
                ("secret", m.secret(rng))
            } else if i == 3 {
                ("item", format!("paid with {}", grouped(CARDS[0])))
            } else {
                ("item", Model::public_text(rng))
            };
            m.items.push(Item {
                id,
                text_id,
                secret,
            });
            items.push(el(id, "li", &[("class", class)], vec![text(text_id, &t)]));
        }
        let mut boxes = Vec::new();
        for i in 0..8u64 {
            let (id, text_id) = (300 + 2 * i, 301 + 2 * i);
            let masked = i % 2 == 0;
            let (class, t) = if masked {
                ("box secret", m.secret(rng))
            } else {
                ("box", format!("box {}", word(rng)))
            };
            m.boxes.push(BoxEl {
                id,
                text_id,
                masked,
            });
            boxes.push(el(id, "div", &[("class", class)], vec![text(text_id, &t)]));
        }
        let note = m.secret(rng);
        let root = Node::Document {
            id: 1,
            children: vec![
                Node::Doctype {
                    id: 2,
                    name: "html".into(),
                },
                el(
                    3,
                    "html",
                    &[],
                    vec![
                        el(
                            4,
                            "head",
                            &[],
                            vec![el(5, "title", &[], vec![text(6, "Checkout")])],
                        ),
                        el(
                            7,
                            "body",
                            &[],
                            vec![
                                el(8, "p", &[("id", "seq")], vec![text(SEQ_TEXT, "seq 0")]),
                                el(
                                    10,
                                    "form",
                                    &[],
                                    vec![
                                        input(
                                            PW,
                                            &[("type", "password"), ("name", "password")],
                                            &value(&m, PW),
                                        ),
                                        input(
                                            CC_AUTO,
                                            &[
                                                ("type", "text"),
                                                ("name", "pan"),
                                                ("autocomplete", "cc-number"),
                                            ],
                                            &value(&m, CC_AUTO),
                                        ),
                                        input(
                                            CC_NAME,
                                            &[("type", "text"), ("name", "cardnumber")],
                                            &value(&m, CC_NAME),
                                        ),
                                        input(
                                            CVC,
                                            &[("type", "text"), ("name", "cvc")],
                                            &value(&m, CVC),
                                        ),
                                        input(
                                            NOTES,
                                            &[("type", "text"), ("name", "notes")],
                                            &value(&m, NOTES),
                                        ),
                                    ],
                                ),
                                el(
                                    16,
                                    "div",
                                    &[("class", "secret")],
                                    vec![text(NOTE_TEXT, &note)],
                                ),
                                el(LIST, "ul", &[("id", "items")], items),
                                el(BOXES, "div", &[("id", "boxes")], boxes),
                            ],
                        ),
                    ],
                ),
            ],
        };
        (m, root)
    }

    /// Type 1–3 keys into the field `fi` (or clear it and start over).
    fn type_keys(&mut self, fi: usize, rng: &mut StdRng, ops: &mut Vec<Op>) {
        let keys = rng.random_range(1..=3);
        for _ in 0..keys {
            let f = &self.fields[fi];
            if f.typed >= f.target.len() {
                let target = self.target_for(f.id, rng);
                let f = &mut self.fields[fi];
                f.target = target;
                f.typed = 0;
            }
            let f = &mut self.fields[fi];
            f.typed += 1;
            ops.push(Op::Value {
                id: f.id,
                value: f.target[..f.typed].to_string(),
                checked: None,
            });
        }
    }

    /// One random batch ending with (or containing) the sequence op.
    fn batch(&mut self, seq: u64, rng: &mut StdRng) -> Vec<Op> {
        let mut ops = Vec::new();
        let n = rng.random_range(1..=6);
        for _ in 0..n {
            match rng.random_range(0..10) {
                // Text change on a public item (sometimes a card number).
                0 => {
                    let public: Vec<usize> = (0..self.items.len())
                        .filter(|&i| !self.items[i].secret)
                        .collect();
                    if !public.is_empty() {
                        let i = public[rng.random_range(0..public.len())];
                        ops.push(Op::Text {
                            id: self.items[i].text_id,
                            text: Model::public_text(rng),
                        });
                    }
                }
                1 => self.type_keys(0, rng, &mut ops),
                2 => {
                    let fi = rng.random_range(1..=2);
                    self.type_keys(fi, rng, &mut ops)
                }
                3 => self.type_keys(4, rng, &mut ops),
                4 => self.type_keys(3, rng, &mut ops),
                // Mask or unmask a box: class and text change in one batch,
                // in random order (end-state masking).
                5 => {
                    let i = rng.random_range(0..self.boxes.len());
                    let masked = !self.boxes[i].masked;
                    let (class, t) = if masked {
                        ("box secret", self.secret(rng))
                    } else {
                        ("box", format!("box {}", word(rng)))
                    };
                    let b = &mut self.boxes[i];
                    b.masked = masked;
                    let attr = Op::Attr {
                        id: b.id,
                        name: "class".into(),
                        value: Some(class.into()),
                    };
                    let txt = Op::Text {
                        id: b.text_id,
                        text: t,
                    };
                    if rng.random_bool(0.5) {
                        ops.extend([attr, txt]);
                    } else {
                        ops.extend([txt, attr]);
                    }
                }
                // New secret text in a masked box or the secret note.
                6 => {
                    let masked: Vec<NodeId> = self
                        .boxes
                        .iter()
                        .filter(|b| b.masked)
                        .map(|b| b.text_id)
                        .chain([NOTE_TEXT])
                        .collect();
                    let id = masked[rng.random_range(0..masked.len())];
                    ops.push(Op::Text {
                        id,
                        text: self.secret(rng),
                    });
                }
                // Insert an item (public, secret or with a card number).
                7 if self.items.len() < 40 => {
                    let (id, text_id) = (self.next_id, self.next_id + 1);
                    self.next_id += 2;
                    let secret = rng.random_bool(0.3);
                    let (class, t) = if secret {
                        ("secret", self.secret(rng))
                    } else {
                        ("item", Model::public_text(rng))
                    };
                    let pos = rng.random_range(0..=self.items.len());
                    let before = self.items.get(pos).map(|it| it.id);
                    ops.push(Op::Insert {
                        parent: LIST,
                        before,
                        node: el(id, "li", &[("class", class)], vec![text(text_id, &t)]),
                    });
                    self.items.insert(
                        pos,
                        Item {
                            id,
                            text_id,
                            secret,
                        },
                    );
                }
                // Remove an item.
                8 if self.items.len() > 4 => {
                    let i = rng.random_range(0..self.items.len());
                    let it = self.items.remove(i);
                    ops.push(Op::Remove { id: it.id });
                }
                // A class toggle that does not change masking.
                _ => {
                    let public: Vec<usize> = (0..self.items.len())
                        .filter(|&i| !self.items[i].secret)
                        .collect();
                    if !public.is_empty() {
                        let i = public[rng.random_range(0..public.len())];
                        let class = if rng.random_bool(0.5) {
                            "item"
                        } else {
                            "item hl"
                        };
                        ops.push(Op::Attr {
                            id: self.items[i].id,
                            name: "class".into(),
                            value: Some(class.into()),
                        });
                    }
                }
            }
        }
        let at = rng.random_range(0..=ops.len());
        ops.insert(
            at,
            Op::Text {
                id: SEQ_TEXT,
                text: format!("seq {seq}"),
            },
        );
        ops
    }
}

/// The 7-digit prefixes no agent frame may contain (separators removed).
fn card_prefixes() -> Vec<String> {
    CARDS.iter().map(|c| c[..7].to_string()).collect()
}

fn masked_str(s: &str) -> bool {
    s.chars().all(|c| c == '•' || c.is_whitespace())
}

/// Checks on what one agent received.
struct Privacy {
    prefixes: Vec<String>,
    count: u64,
    samples: Vec<String>,
}

impl Privacy {
    fn violation(&mut self, what: String) {
        self.count += 1;
        if self.samples.len() < 5 {
            self.samples.push(what);
        }
    }

    /// The raw frame: no secret marker, no card prefix beyond six digits.
    fn raw(&mut self, frame: &str) {
        if frame.contains(MARKER) {
            self.violation(format!("secret marker in {frame}"));
        }
        let stripped: String = frame.chars().filter(|c| !SEPARATORS.contains(c)).collect();
        for p in &self.prefixes {
            if stripped.contains(p.as_str()) {
                self.violation(format!("card prefix {p} in {frame}"));
                break;
            }
        }
    }

    /// Nodes: the always-masked fields carry only mask characters.
    fn node(&mut self, n: &Node) {
        if let Node::Element {
            id, attrs, value, ..
        } = n
        {
            if MASKED_FIELDS.contains(id) {
                let bad_value = value.as_deref().is_some_and(|v| !masked_str(v));
                let bad_attr = attrs.get("value").is_some_and(|v| !masked_str(v));
                if bad_value || bad_attr {
                    self.violation(format!("masked field {id} shown: {n:?}"));
                }
            }
        }
        for c in n.children() {
            self.node(c);
        }
    }

    fn ops(&mut self, ops: &[Op]) {
        for op in ops {
            match op {
                Op::Value { id, value, .. } if MASKED_FIELDS.contains(id) && !masked_str(value) => {
                    self.violation(format!("masked field value shown: {op:?}"))
                }
                Op::Attr {
                    id,
                    name,
                    value: Some(v),
                } if MASKED_FIELDS.contains(id) && name == "value" && !masked_str(v) => {
                    self.violation(format!("masked field attribute shown: {op:?}"))
                }
                Op::Insert { node, .. } => self.node(node),
                _ => {}
            }
        }
    }
}

fn find_seq(n: &Node) -> Option<u64> {
    match n {
        Node::Text { id, text } if *id == SEQ_TEXT => text.strip_prefix("seq ")?.parse().ok(),
        _ => n.children().iter().find_map(find_seq),
    }
}

fn seq_of(ops: &[Op]) -> Option<u64> {
    ops.iter().rev().find_map(|op| match op {
        Op::Text { id, text } if *id == SEQ_TEXT => text.strip_prefix("seq ")?.parse().ok(),
        _ => None,
    })
}

async fn connect(url: &str, bearer: Option<&str>) -> Result<Ws, String> {
    let mut req = url.into_client_request().map_err(|e| e.to_string())?;
    if let Some(b) = bearer {
        req.headers_mut().insert(
            "authorization",
            format!("Bearer {b}").parse().map_err(|_| "header")?,
        );
    }
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
        .map_err(|e| format!("connect {url}: {e}"))
}

/// The next text frame, or why there is none.
async fn next_text(ws: &mut Ws, deadline: Instant) -> Result<String, String> {
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return Err("no frame before the deadline".into()),
            Ok(Some(Ok(Message::Text(t)))) => return Ok(t.as_str().to_owned()),
            Ok(Some(Ok(Message::Close(c)))) => return Err(format!("socket closed: {c:?}")),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => return Err(format!("socket error: {e}")),
            Ok(None) => return Err("socket closed".into()),
        }
    }
}

fn frame_type(text: &str) -> String {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v["t"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// One live session: both sockets, both copies, what was seen.
struct Sess {
    idx: usize,
    id: String,
    customer: Ws,
    agent: Ws,
    model: Model,
    rng: StdRng,
    ccopy: Dom,
    acopy: Dom,
    epoch: u32,
    url: String,
    /// Send time of batch `seq` at index `seq - 1`.
    sent: Vec<Instant>,
    ops_sent: u64,
    /// The newest batch the agent's copy holds.
    last_seq: u64,
    veiled: bool,
    delivered: u64,
    latencies: Vec<Duration>,
    agent_resyncs: u64,
    customer_resyncs: u64,
    agent_snapshots: u64,
    agent_frames: u64,
    privacy: Privacy,
    lost: Option<String>,
}

impl Sess {
    fn snapshot_frame(&self) -> Result<String, String> {
        let root = root_node(&self.ccopy).ok_or("empty customer copy")?;
        let snap = Snapshot {
            epoch: self.epoch,
            url: self.url.clone(),
            title: "Checkout".into(),
            viewport: Viewport {
                w: 1280.0,
                h: 800.0,
            },
            root,
        };
        // `epoch` is never serialised (the agent must not see it): add it.
        let mut v = serde_json::to_value(&snap).map_err(|e| e.to_string())?;
        v["t"] = json!("snapshot");
        v["epoch"] = json!(self.epoch);
        Ok(v.to_string())
    }

    /// Create the session, connect both sides, exchange the first snapshot.
    async fn setup(
        idx: usize,
        seed: u64,
        base: &str,
        http: &reqwest::Client,
        bearer: &str,
        prefixes: Vec<String>,
    ) -> Result<Sess, String> {
        let deadline = Instant::now() + Duration::from_secs(120);
        let url = format!("{base}/demo/checkout");
        let resp = http
            .post(format!("{base}/api/v1/sessions"))
            .json(&json!({"site": "demo", "url": url}))
            .send()
            .await
            .map_err(|e| format!("create: {e}"))?;
        if resp.status() != 201 {
            return Err(format!("create: {}", resp.status()));
        }
        let v: Value = resp.json().await.map_err(|e| e.to_string())?;
        let id = v["id"].as_str().ok_or("no id")?.to_owned();
        let token = v["token"].as_str().ok_or("no token")?.to_owned();
        let ws_base = base.replacen("http://", "ws://", 1);
        let mut customer =
            connect(&format!("{ws_base}/ws/customer/{id}?token={token}"), None).await?;
        while frame_type(&next_text(&mut customer, deadline).await?) != "rules" {}
        let mut rng = StdRng::seed_from_u64(seed.wrapping_add(idx as u64));
        let (model, root) = Model::new(idx, &mut rng);
        let ccopy = Dom::from_node(&root, &unlimited()).map_err(|e| e.to_string())?;
        // The agent joins before the first snapshot: it gets one when the
        // customer sends it.
        let agent = connect(&format!("{ws_base}/ws/agent/{id}"), Some(bearer)).await?;
        let empty = Node::Document {
            id: 1,
            children: Vec::new(),
        };
        let mut s = Sess {
            idx,
            id,
            customer,
            agent,
            model,
            rng,
            ccopy,
            acopy: Dom::from_node(&empty, &unlimited()).map_err(|e| e.to_string())?,
            epoch: 1,
            url,
            sent: Vec::new(),
            ops_sent: 0,
            last_seq: 0,
            veiled: true,
            delivered: 0,
            latencies: Vec::new(),
            agent_resyncs: 0,
            customer_resyncs: 0,
            agent_snapshots: 0,
            agent_frames: 0,
            privacy: Privacy {
                prefixes,
                count: 0,
                samples: Vec::new(),
            },
            lost: None,
        };
        let frame = s.snapshot_frame()?;
        s.customer
            .send(Message::Text(frame.into()))
            .await
            .map_err(|e| e.to_string())?;
        while s.veiled {
            let f = next_text(&mut s.agent, deadline).await?;
            s.on_agent_frame(&f, Instant::now());
            if let Some(l) = &s.lost {
                return Err(l.clone());
            }
        }
        s.agent_snapshots = 0;
        Ok(s)
    }

    /// Handle one agent frame: privacy checks, then apply it to the copy.
    fn on_agent_frame(&mut self, frame: &str, now: Instant) -> bool {
        self.agent_frames += 1;
        self.privacy.raw(frame);
        let msg: ToAgent = match serde_json::from_str(frame) {
            Ok(m) => m,
            Err(e) => {
                self.privacy
                    .violation(format!("unparseable agent frame ({e}): {frame}"));
                return false;
            }
        };
        match msg {
            ToAgent::Snapshot(snap) => {
                self.privacy.node(&snap.root);
                match Dom::from_node(&snap.root, &unlimited()) {
                    Ok(d) => self.acopy = d,
                    Err(e) => self.lose(format!("agent cannot load its snapshot: {e}")),
                }
                match find_seq(&snap.root) {
                    Some(s) => self.last_seq = s,
                    None => self.lose("snapshot without the sequence node".into()),
                }
                self.veiled = false;
                self.agent_snapshots += 1;
                true
            }
            ToAgent::Mutations { ops } => {
                self.privacy.ops(&ops);
                if self.veiled {
                    self.lose("mutations while resynchronising".into());
                }
                for op in &ops {
                    if let Err(e) = apply_op(&mut self.acopy, op) {
                        self.lose(format!("agent cannot apply {e}"));
                        return false;
                    }
                }
                match seq_of(&ops) {
                    Some(s) if s == self.last_seq + 1 => {
                        self.last_seq = s;
                        self.delivered += 1;
                        if let Some(t) = self.sent.get(s as usize - 1) {
                            self.latencies.push(now.duration_since(*t));
                        }
                    }
                    Some(s) => self.lose(format!(
                        "batch {s} arrived after {} (a batch lost without a resync)",
                        self.last_seq
                    )),
                    None => self.lose(format!("a batch without its sequence op: {ops:?}")),
                }
                true
            }
            ToAgent::Resync { .. } => {
                self.veiled = true;
                self.agent_resyncs += 1;
                false
            }
            ToAgent::Ended { reason } => {
                self.lose(format!("agent got ended {reason}"));
                false
            }
            ToAgent::Error { code, .. } => {
                self.lose(format!("agent got error {code}"));
                false
            }
            ToAgent::Presence {
                customer: Presence::Away,
            } => {
                self.lose("agent saw the customer away".into());
                false
            }
            _ => false,
        }
    }

    fn lose(&mut self, why: String) {
        if self.lost.is_none() {
            self.lost = Some(format!("session {} ({}): {why}", self.idx, self.id));
        }
    }

    /// Handle one customer frame; answers `resync` with a fresh snapshot.
    async fn on_customer_frame(&mut self, frame: &str) {
        match frame_type(frame).as_str() {
            "resync" => {
                self.customer_resyncs += 1;
                self.epoch += 1;
                let sent = match self.snapshot_frame() {
                    Ok(f) => self.customer.send(Message::Text(f.into())).await.is_ok(),
                    Err(_) => false,
                };
                if !sent {
                    self.lose("customer could not send its resync snapshot".into());
                }
            }
            "ended" | "error" => self.lose(format!("customer got {frame}")),
            _ => {}
        }
    }

    /// Send the next batch.
    async fn send_batch(&mut self) {
        let seq = self.sent.len() as u64 + 1;
        let ops = self.model.batch(seq, &mut self.rng);
        for op in &ops {
            if let Err(e) = apply_op(&mut self.ccopy, op) {
                self.lose(format!("generator bug, customer cannot apply {e}"));
                return;
            }
        }
        self.ops_sent += ops.len() as u64;
        let frame = json!({"t": "mutations", "epoch": self.epoch, "ops": ops}).to_string();
        self.sent.push(Instant::now());
        if let Err(e) = self.customer.send(Message::Text(frame.into())).await {
            self.lose(format!("customer send: {e}"));
        }
    }
}

/// Signals the main task once, when dropped at the latest (so a panicking
/// session cannot leave it waiting).
struct Signal(Option<mpsc::UnboundedSender<()>>);

impl Signal {
    fn fire(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for Signal {
    fn drop(&mut self) {
        self.fire();
    }
}

/// Wait for `n` signals (or every sender gone).
async fn wait_signals(rx: &mut mpsc::UnboundedReceiver<()>, n: usize) {
    let mut got = 0;
    while got < n {
        if rx.recv().await.is_none() {
            return;
        }
        got += 1;
    }
}

struct Plan {
    batches: Option<u64>,
    rate: u64,
    stall: Duration,
    sessions: usize,
}

async fn tick(t: &mut Option<Interval>) {
    if let Some(t) = t {
        t.tick().await;
    }
}

/// One session's life after setup: wait for the start, send batches, drain,
/// report quiet, keep reading until the finish.
async fn drive(
    mut s: Sess,
    mut start: watch::Receiver<Option<(Instant, Option<Instant>)>>,
    mut finish: watch::Receiver<bool>,
    mut quiet: Signal,
    plan: Arc<Plan>,
) -> Sess {
    #[derive(PartialEq)]
    enum Phase {
        Waiting,
        Sending,
        Draining,
        Quiet,
    }
    let mut phase = Phase::Waiting;
    let mut ticker: Option<Interval> = None;
    let mut stop_at = None;
    let mut stall: Pin<Box<Sleep>> = Box::pin(tokio::time::sleep(plan.stall));
    loop {
        let outstanding = s.last_seq < s.sent.len() as u64 || s.veiled;
        let can_send = phase == Phase::Sending && (plan.rate > 0 || !outstanding);
        tokio::select! {
            biased;
            _ = finish.changed(), if phase == Phase::Quiet => break,
            r = start.changed(), if phase == Phase::Waiting => {
                if r.is_err() {
                    s.lose("the run was abandoned before the start".into());
                    continue;
                }
                let Some((t0, stop)) = *start.borrow_and_update() else {
                    continue;
                };
                stop_at = stop;
                if plan.rate > 0 {
                    let period = Duration::from_secs_f64(1.0 / plan.rate as f64);
                    // Spread the sessions over one period.
                    let offset = period.mul_f64(s.idx as f64 / plan.sessions.max(1) as f64);
                    let mut t = tokio::time::interval_at(t0 + offset, period);
                    t.set_missed_tick_behavior(MissedTickBehavior::Delay);
                    ticker = Some(t);
                }
                phase = Phase::Sending;
            }
            f = next_text(&mut s.customer, Instant::now() + Duration::from_secs(86_400)) => match f {
                Ok(f) => s.on_customer_frame(&f).await,
                Err(e) => s.lose(format!("customer socket: {e}")),
            },
            f = next_text(&mut s.agent, Instant::now() + Duration::from_secs(86_400)) => match f {
                Ok(f) => {
                    if s.on_agent_frame(&f, Instant::now()) {
                        stall.as_mut().reset(Instant::now() + plan.stall);
                    }
                }
                Err(e) => s.lose(format!("agent socket: {e}")),
            },
            _ = &mut stall, if outstanding && phase != Phase::Waiting => {
                s.lose(format!(
                    "stalled: agent at batch {} of {} (veiled {}) for {:?}",
                    s.last_seq, s.sent.len(), s.veiled, plan.stall
                ));
            }
            _ = tick(&mut ticker), if can_send => {
                let done = plan.batches.is_some_and(|b| s.sent.len() as u64 >= b)
                    || stop_at.is_some_and(|t| Instant::now() >= t);
                if done {
                    phase = Phase::Draining;
                } else {
                    if !outstanding {
                        stall.as_mut().reset(Instant::now() + plan.stall);
                    }
                    s.send_batch().await;
                }
            }
        }
        if s.lost.is_some() && phase != Phase::Quiet {
            quiet.fire();
            // A lost session stops here; its sockets are not read any more.
            break;
        }
        let outstanding = s.last_seq < s.sent.len() as u64 || s.veiled;
        if phase == Phase::Draining && !outstanding {
            phase = Phase::Quiet;
            quiet.fire();
        }
    }
    s
}

/// Run the soak against `server` (already started, rules published).
pub async fn run(cfg: &SoakConfig, server: &SoakServer) -> Report {
    let mut report = Report {
        sessions: cfg.sessions,
        rate: cfg.rate,
        ..Report::default()
    };
    report.rss_start = rss_kib();
    let tokens = server.agent_tokens(cfg.sessions).await;
    let http = reqwest::Client::new();
    let base = format!("http://{}", server.addr);
    report.rss_before = rss_kib();

    let (start_tx, start_rx) = watch::channel(None);
    let (finish_tx, finish_rx) = watch::channel(false);
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    let (quiet_tx, mut quiet_rx) = mpsc::unbounded_channel();
    let plan = Arc::new(Plan {
        batches: cfg.batches,
        rate: cfg.rate,
        stall: cfg.stall,
        sessions: cfg.sessions,
    });
    let gate = Arc::new(Semaphore::new(cfg.setup_concurrency.max(1)));
    let setup_started = Instant::now();
    let mut tasks = Vec::new();
    for (idx, bearer) in tokens.into_iter().enumerate() {
        let (http, base, gate, plan) = (http.clone(), base.clone(), gate.clone(), plan.clone());
        let (start, finish) = (start_rx.clone(), finish_rx.clone());
        let mut ready = Signal(Some(ready_tx.clone()));
        let quiet = Signal(Some(quiet_tx.clone()));
        let seed = cfg.seed;
        tasks.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await;
            let s = Sess::setup(idx, seed, &base, &http, &bearer, card_prefixes()).await;
            drop(permit);
            ready.fire();
            match s {
                Ok(s) => Ok(drive(s, start, finish, quiet, plan).await),
                Err(e) => Err(format!("session {idx}: setup failed: {e}")),
            }
        }));
    }
    drop((ready_tx, quiet_tx));
    wait_signals(&mut ready_rx, cfg.sessions).await;
    report.setup = setup_started.elapsed();
    report.rss_idle = rss_kib();

    // The batch phase.
    let cpu0 = (cpu_process(), cpu_threads(CLIENT_THREAD));
    let t0 = Instant::now();
    let _ = start_tx.send(Some((t0, cfg.duration.map(|d| t0 + d))));
    wait_signals(&mut quiet_rx, cfg.sessions).await;
    report.elapsed = t0.elapsed();
    let cpu1 = (cpu_process(), cpu_threads(CLIENT_THREAD));
    report.cpu_process = cpu1.0.saturating_sub(cpu0.0);
    if !cpu1.1.is_zero() {
        report.cpu_client = Some(cpu1.1.saturating_sub(cpu0.1));
    }
    report.rss_live = rss_kib();
    let _ = finish_tx.send(true);

    let mut sessions = Vec::new();
    for t in tasks {
        match t.await {
            Ok(Ok(s)) => sessions.push(s),
            Ok(Err(e)) => report.lost.push(e),
            Err(e) => report.lost.push(format!("session task failed: {e}")),
        }
    }

    // The end state: rules in force, every session live, every agent copy
    // equal to the oracle's rewrite of its customer's copy.
    let rules = server.rules_in_force().await;
    let mut all = Vec::new();
    for s in &mut sessions {
        report.batches_sent += s.sent.len() as u64;
        report.ops_sent += s.ops_sent;
        report.batches_delivered += s.delivered;
        report.agent_resyncs += s.agent_resyncs;
        report.customer_resyncs += s.customer_resyncs;
        report.agent_snapshots += s.agent_snapshots;
        report.agent_frames += s.agent_frames;
        report.violations += s.privacy.count;
        for v in s.privacy.samples.drain(..) {
            if report.violation_samples.len() < 5 {
                report.violation_samples.push(v);
            }
        }
        all.append(&mut s.latencies);
        if let Some(l) = &s.lost {
            report.lost.push(l.clone());
            continue;
        }
        match server.state.registry.info(&s.id) {
            Some(i) if i.state == cobrowse::protocol::SessionState::Active => {}
            other => {
                report.lost.push(format!(
                    "session {} ({}) not live and active: {other:?}",
                    s.idx, s.id
                ));
                continue;
            }
        }
        let (Some(croot), Some(aroot)) = (root_node(&s.ccopy), root_node(&s.acopy)) else {
            report
                .mismatches
                .push(format!("session {}: empty copy", s.idx));
            continue;
        };
        let want = oracle(
            &rules,
            &Snapshot {
                epoch: 0,
                url: s.url.clone(),
                title: "Checkout".into(),
                viewport: Viewport {
                    w: 1280.0,
                    h: 800.0,
                },
                root: croot.clone(),
            },
        );
        if want.root != aroot {
            report.mismatches.push(format!(
                "session {}: agent copy {} != oracle {} (customer {})",
                s.idx,
                serde_json::to_string(&aroot).unwrap_or_default(),
                serde_json::to_string(&want.root).unwrap_or_default(),
                serde_json::to_string(&croot).unwrap_or_default()
            ));
        }
    }
    all.sort();
    report.latencies = all;

    // End every session from the customer side; both sides are told.
    let mut enders = Vec::new();
    for mut s in sessions {
        enders.push(tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut problems = Vec::new();
            if s.lost.is_some() {
                return (problems, 0);
            }
            if let Err(e) = s
                .customer
                .send(Message::Text(json!({"t": "end"}).to_string().into()))
                .await
            {
                problems.push(format!("session {}: end: {e}", s.idx));
            }
            for (side, ws) in [("customer", &mut s.customer), ("agent", &mut s.agent)] {
                loop {
                    match next_text(ws, deadline).await {
                        Ok(f) => {
                            if side == "agent" {
                                s.privacy.raw(&f);
                            }
                            if frame_type(&f) == "ended" {
                                if !f.contains("customer_exit") {
                                    problems.push(format!("session {}: {side} got {f}", s.idx));
                                }
                                break;
                            }
                        }
                        Err(e) => {
                            problems.push(format!("session {}: {side} before ended: {e}", s.idx));
                            break;
                        }
                    }
                }
                let _ = ws.close(None).await;
                while let Ok(Some(Ok(_))) = tokio::time::timeout_at(deadline, ws.next()).await {}
            }
            (problems, s.privacy.count)
        }));
    }
    for e in enders {
        match e.await {
            Ok((problems, violations)) => {
                report.lost.extend(problems);
                report.violations += violations;
            }
            Err(e) => report.lost.push(format!("end task failed: {e}")),
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.state.registry.live_count() > 0 && Instant::now() < deadline {
        // Polling with a deadline: the registry offers no notification.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if server.state.registry.live_count() > 0 {
        report.lost.push(format!(
            "{} sessions still live after every customer ended",
            server.state.registry.live_count()
        ));
    }
    report.rss_after = rss_kib();
    report
}
