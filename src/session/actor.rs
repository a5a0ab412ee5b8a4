//! The session actor: one tokio task per live session. It owns the state
//! machine (waiting → active → ended, pointer/write mode), the session's
//! [`Rewriter`] (the unmasked mirror never leaves this task), the timers, and
//! the two outboxes. Every customer→agent document message passes through
//! the rewriter; every agent action through [`policy::check`].

use super::outbox::{Outbox, Push};
use super::{AgentIdentity, EndReason, Event, Inner, SessionError, Status};
use crate::config::Timeouts;
use crate::policy::{self, Verdict};
use crate::protocol::{
    self, AgentMsg, CustomerMsg, Epoch, Limits, Mode, NodeId, Presence, SessionState, ToAgent,
    ToCustomer,
};
use crate::rewrite::Rewriter;
use crate::rules::CompiledRules;
use crate::store::history::EndCounts;
use serde::Serialize;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// Scroll positions kept for an agent that joins or returns: the page and
/// up to this many elements (the most recently scrolled).
const MAX_SCROLLS: usize = 32;

struct Peer {
    conn: u64,
    outbox: Arc<Outbox>,
}

/// One customer connection (a tab of the customer's browser).
struct Tab {
    peer: Peer,
    /// Connected with `tabs=1` (v1.3): told whether it is in front.
    tabs: bool,
}

/// Whether the mirror is known to match the customer's document (fail
/// closed: only in [`DocSync::Live`] is anything of the document applied
/// or relayed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DocSync {
    /// No snapshot on the current customer connection yet (first connect,
    /// reconnect, navigation): the snippet sends one unasked.
    Awaiting,
    /// In step: `mutations`/`navigate` frames of this epoch are applied.
    Live(Epoch),
    /// A frame was refused or could not be applied: the snippet was asked
    /// for a fresh snapshot; nothing else from the document is used.
    Resyncing {
        /// Refused snapshots since the request (for the retry back-off).
        attempts: u32,
        /// When to ask again (after a refused snapshot), if at all.
        retry_at: Option<Instant>,
    },
}

/// Back-off before asking again after the `attempts`-th refused resync
/// snapshot: 1 s, 2 s, 4 s … capped at 30 s.
fn resync_backoff(attempts: u32) -> Duration {
    Duration::from_secs(1u64 << attempts.min(5)).min(Duration::from_secs(30))
}

/// What became of rewrite work run off the async workers.
enum Offloaded<R> {
    /// Done within the time budget.
    Done(R),
    /// Done, but over the budget: the result is not used (fail closed).
    OverBudget,
    /// The work panicked: the mirror is not trusted any more.
    Failed,
}

/// Serialise a frame; our own types always serialise.
fn frame<T: Serialize>(msg: &T) -> String {
    match serde_json::to_string(msg) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot serialise a frame");
            String::from(r#"{"t":"error","code":"internal","message":"serialisation failed"}"#)
        }
    }
}

pub(super) struct Actor {
    id: String,
    history_id: i64,
    inner: Arc<Inner>,
    rx: mpsc::Receiver<Event>,
    status: watch::Sender<Status>,
    timeouts: Timeouts,
    state: SessionState,
    mode: Mode,
    control_pending: bool,
    /// The session's rewriter. Heavy work on it runs on the blocking pool
    /// ([`Actor::offload`]) so a hostile page cannot stall the async workers;
    /// the actor waits for it, so the lock is never contended.
    rewriter: Arc<Mutex<Rewriter>>,
    rewrite_budget: Duration,
    sync: DocSync,
    /// Every customer connection (tabs); only `front` feeds the document.
    customers: Vec<Tab>,
    /// The tab shown to the agent: the only one whose document, pointer,
    /// scroll and viewport frames are used (fail closed for the others).
    front: Option<u64>,
    agent: Option<Peer>,
    agent_id: Option<AgentIdentity>,
    created: Instant,
    last_activity: Instant,
    customer_gone_at: Option<Instant>,
    agent_gone_at: Option<Instant>,
    viewport: Option<(f64, f64)>,
    /// The customer's last scroll positions since the snapshot: the page
    /// (`None`) and up to [`MAX_SCROLLS`] elements, oldest first, replayed
    /// to an agent that joins or returns.
    scroll: Vec<(Option<NodeId>, f64, f64)>,
    denied: i64,
    masked_max: i64,
    blocked_max: i64,
}

impl Actor {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        id: String,
        history_id: i64,
        inner: Arc<Inner>,
        rx: mpsc::Receiver<Event>,
        status: watch::Sender<Status>,
        rules: Arc<CompiledRules>,
        proxy: Option<Arc<crate::rewrite::urls::ProxyLinks>>,
        timeouts: Timeouts,
        limits: Limits,
    ) -> Actor {
        let now = Instant::now();
        Actor {
            id,
            history_id,
            inner,
            rx,
            status,
            timeouts,
            state: SessionState::Waiting,
            mode: Mode::Pointer,
            control_pending: false,
            rewriter: Arc::new(Mutex::new(Rewriter::new(rules, limits).with_proxy(proxy))),
            rewrite_budget: Duration::from_millis(limits.rewrite_budget_ms),
            sync: DocSync::Awaiting,
            customers: Vec::new(),
            front: None,
            agent: None,
            agent_id: None,
            created: now,
            last_activity: now,
            // The customer has not connected yet: the waiting timeout covers that.
            customer_gone_at: None,
            agent_gone_at: None,
            viewport: None,
            scroll: Vec::new(),
            denied: 0,
            masked_max: 0,
            blocked_max: 0,
        }
    }

    /// Run until the session ends.
    pub(super) async fn run(mut self) {
        loop {
            let deadline = self.next_deadline();
            let timer = async move {
                match deadline {
                    Some((at, _)) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending::<()>().await,
                }
            };
            let retry_at = match self.sync {
                DocSync::Resyncing {
                    retry_at: Some(at), ..
                } => Some(at),
                _ => None,
            };
            let retry = async move {
                match retry_at {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending::<()>().await,
                }
            };
            let outcome = tokio::select! {
                ev = self.rx.recv() => match ev {
                    Some(ev) => self.handle(ev).await,
                    None => Some(EndReason::ServerShutdown),
                },
                () = timer => deadline.map(|(_, reason)| reason),
                () = retry => {
                    self.ask_for_snapshot("retry");
                    None
                }
            };
            if let Some(reason) = outcome {
                self.end(reason).await;
                return;
            }
        }
    }

    fn next_deadline(&self) -> Option<(Instant, EndReason)> {
        let t = &self.timeouts;
        let mut candidates: Vec<(Instant, EndReason)> = Vec::with_capacity(3);
        match self.state {
            SessionState::Waiting => {
                candidates.push((self.created + t.waiting, EndReason::WaitingTimeout))
            }
            SessionState::Active => {
                candidates.push((
                    self.last_activity + t.inactivity,
                    EndReason::InactivityTimeout,
                ));
                if let (None, Some(gone)) = (&self.agent, self.agent_gone_at) {
                    candidates.push((gone + t.agent_away, EndReason::AgentAwayTimeout));
                }
            }
            SessionState::Ended => return None,
        }
        if let (None, Some(gone)) = (self.front, self.customer_gone_at) {
            candidates.push((gone + t.customer_away, EndReason::CustomerAwayTimeout));
        }
        candidates.into_iter().min_by_key(|(at, _)| *at)
    }

    /// The rewriter, for quick reads (cue, restriction lookups).
    fn rw(&self) -> MutexGuard<'_, Rewriter> {
        // A panic in earlier work is handled where it happened (resync);
        // the data stays usable.
        self.rewriter.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Run rewrite work under the frame time budget: on the blocking pool
    /// when it may be heavy (see [`Rewriter::is_heavy`] for `frame_nodes`;
    /// `None` = the whole document), else right here.
    async fn offload<R, F>(&self, frame_nodes: Option<usize>, work: F) -> Offloaded<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Rewriter) -> R + Send + 'static,
    {
        let heavy = match frame_nodes {
            Some(n) => self.rw().is_heavy(n),
            None => true,
        };
        if !heavy {
            let started = Instant::now();
            let r = work(&mut self.rw());
            return if started.elapsed() > self.rewrite_budget {
                Offloaded::OverBudget
            } else {
                Offloaded::Done(r)
            };
        }
        let rw = Arc::clone(&self.rewriter);
        // The budget is for the rewrite itself, timed where it runs (not the
        // wait for a blocking thread or for this task to be polled again).
        let joined = tokio::task::spawn_blocking(move || {
            let mut guard = rw.lock().unwrap_or_else(|e| e.into_inner());
            let started = Instant::now();
            let r = work(&mut guard);
            (r, started.elapsed())
        })
        .await;
        match joined {
            Ok((_, took)) if took > self.rewrite_budget => {
                tracing::warn!(session = %self.id, ms = took.as_millis() as u64, "rewrite over its time budget");
                Offloaded::OverBudget
            }
            Ok((r, _)) => Offloaded::Done(r),
            Err(e) => {
                tracing::error!(session = %self.id, error = %e, "rewrite task failed");
                Offloaded::Failed
            }
        }
    }

    fn to_agent(&self, msg: &ToAgent) {
        if let Some(peer) = &self.agent {
            if peer.outbox.push(frame(msg)) == Push::Overflowed {
                tracing::warn!(session = %self.id, "agent queue overflowed; will resync");
            }
        }
    }

    /// The front tab's connection.
    fn front_peer(&self) -> Option<&Peer> {
        let front = self.front?;
        self.customers
            .iter()
            .map(|t| &t.peer)
            .find(|p| p.conn == front)
    }

    fn push_customer(&self, peer: &Peer, msg: &ToCustomer) {
        if peer.outbox.push(frame(msg)) == Push::Overflowed {
            tracing::warn!(session = %self.id, "customer queue overflowed; will resync");
        }
    }

    /// To the front tab only (document business: resync, agent actions, pointer).
    fn to_customer(&self, msg: &ToCustomer) {
        if let Some(peer) = self.front_peer() {
            self.push_customer(peer, msg);
        }
    }

    /// To every tab of the customer (session state, mode, presence, rules).
    fn to_customers(&self, msg: &ToCustomer) {
        for t in &self.customers {
            self.push_customer(&t.peer, msg);
        }
    }

    /// To one customer connection.
    fn to_conn(&self, conn: u64, msg: &ToCustomer) {
        if let Some(t) = self.customers.iter().find(|t| t.peer.conn == conn) {
            self.push_customer(&t.peer, msg);
        }
    }

    /// Tell a v1.3 tab whether it is in front.
    fn tell_tab(&self, conn: u64) {
        if let Some(t) = self
            .customers
            .iter()
            .find(|t| t.peer.conn == conn && t.tabs)
        {
            self.push_customer(
                &t.peer,
                &ToCustomer::Tab {
                    front: self.front == Some(conn),
                },
            );
        }
    }

    /// Show the agent another tab of the customer: nothing of the old
    /// front's document is used any more; the new front's next snapshot
    /// (new epoch, new connection) replaces the mirror.
    async fn switch_front(&mut self, conn: u64) {
        // Most recently in front last: the next in line if this one goes.
        if let Some(i) = self.customers.iter().position(|t| t.peer.conn == conn) {
            let t = self.customers.remove(i);
            self.customers.push(t);
        }
        let old = self.front.replace(conn);
        if let Some(old) = old {
            self.tell_tab(old);
        }
        if !matches!(self.sync, DocSync::Awaiting) {
            self.sync = DocSync::Awaiting;
            self.rw().discard_document();
        }
        self.scroll.clear();
        if self.customer_gone_at.take().is_some() {
            self.to_agent(&ToAgent::Presence {
                customer: Presence::Present,
            });
        }
        self.tell_tab(conn);
        self.history("customer_tab", "another tab of the customer is in front")
            .await;
    }

    fn session_for_agent(&self) -> ToAgent {
        ToAgent::Session {
            id: self.id.clone(),
            state: self.state,
            mode: self.mode,
        }
    }

    fn session_for_customer(&self) -> ToCustomer {
        ToCustomer::Session {
            id: self.id.clone(),
            state: self.state,
            mode: self.mode,
        }
    }

    fn publish_status(&self) {
        let _ = self.status.send(Status {
            state: self.state,
            mode: self.mode,
        });
    }

    async fn history(&self, kind: &str, detail: &str) {
        if let Err(e) = self
            .inner
            .store()
            .history_event(self.history_id, kind, detail)
            .await
        {
            tracing::error!(session = %self.id, error = %e, "cannot write session history");
        }
    }

    /// The full state for the agent: session, rewritten snapshot, viewport, scroll.
    async fn send_agent_state(&self) {
        self.to_agent(&self.session_for_agent());
        match self.sync {
            DocSync::Live(_) => {
                if let Offloaded::Done(Some(snap)) =
                    self.offload(None, |rw| rw.agent_snapshot()).await
                {
                    self.to_agent(&ToAgent::Snapshot(snap));
                }
            }
            DocSync::Resyncing { .. } => self.to_agent(&ToAgent::Resync {
                reason: "resynchronising with the customer's page".into(),
            }),
            // A page is loading: its snapshot follows.
            DocSync::Awaiting => {}
        }
        if let Some((w, h)) = self.viewport {
            self.to_agent(&ToAgent::Viewport { w, h });
        }
        for &(id, x, y) in &self.scroll {
            self.to_agent(&ToAgent::Scroll { id, x, y });
        }
        if self.front.is_none() && self.customer_gone_at.is_some() {
            self.to_agent(&ToAgent::Presence {
                customer: Presence::Away,
            });
        }
    }

    /// Fail closed: the mirror may no longer match the customer's page.
    /// Freeze the agent's view, drop the document's frames until a fresh
    /// snapshot arrives, and ask the snippet for one.
    async fn enter_resync(&mut self, reason: &str) {
        if let DocSync::Resyncing { attempts, retry_at } = &mut self.sync {
            // Refused again while waiting (perhaps the fresh snapshot
            // itself): ask again after a back-off, not in a tight loop.
            if retry_at.is_none() {
                *attempts = attempts.saturating_add(1);
                *retry_at = Some(Instant::now() + resync_backoff(*attempts));
            }
            return;
        }
        self.sync = DocSync::Resyncing {
            attempts: 0,
            retry_at: None,
        };
        self.rw().discard_document();
        tracing::info!(session = %self.id, reason, "resynchronising");
        if self.state == SessionState::Active {
            self.to_agent(&ToAgent::Resync {
                reason: reason.to_owned(),
            });
        }
        self.ask_for_snapshot(reason);
        self.history("resync", reason).await;
    }

    /// Ask the snippet for a fresh snapshot (while resynchronising).
    fn ask_for_snapshot(&mut self, reason: &str) {
        if let DocSync::Resyncing { retry_at, .. } = &mut self.sync {
            *retry_at = None;
            self.to_customer(&ToCustomer::Resync {
                reason: reason.to_owned(),
            });
        }
    }

    fn update_stats(&mut self) {
        let s = self.rw().stats();
        self.masked_max = self.masked_max.max(s.masked as i64);
        self.blocked_max = self.blocked_max.max(s.blocked as i64);
    }

    async fn set_mode(&mut self, mode: Mode) {
        let changed = self.mode != mode;
        self.mode = mode;
        self.to_agent(&ToAgent::Mode { mode });
        self.to_customers(&ToCustomer::Mode { mode });
        if changed {
            self.publish_status();
            self.history(
                "mode",
                if mode == Mode::Write {
                    "write"
                } else {
                    "pointer"
                },
            )
            .await;
        }
    }

    /// The agent's viewer is gone (socket closed, or `away`): the customer
    /// is told, the away grace starts, and write mode ends.
    async fn agent_away(&mut self, conn: u64) {
        if self.agent.as_ref().is_some_and(|p| p.conn == conn) {
            self.agent = None;
            self.agent_gone_at = Some(Instant::now());
            self.to_customers(&ToCustomer::Presence {
                agent: Presence::Away,
            });
            self.history("agent_away", "").await;
            // Control is never left with an absent agent: back to
            // pointer mode; a returning agent must ask again.
            self.control_pending = false;
            if self.mode == Mode::Write {
                self.set_mode(Mode::Pointer).await;
            }
        }
    }

    /// Handle one event; `Some(reason)` ends the session.
    async fn handle(&mut self, ev: Event) -> Option<EndReason> {
        match ev {
            Event::CustomerConnect {
                conn,
                outbox,
                tabs,
                reply,
            } => {
                if !tabs {
                    // A v1 snippet: one connection per session, the newest wins.
                    for old in self.customers.drain(..) {
                        old.peer.outbox.push_final(Some(frame(&ToCustomer::Error {
                            code: "replaced".into(),
                            message: "the session continues in another page".into(),
                        })));
                    }
                    self.front = None;
                }
                self.customers.push(Tab {
                    peer: Peer { conn, outbox },
                    tabs,
                });
                // A tab in the back waits; with no tab in front, this one is.
                let front = self.front.is_none();
                if front {
                    self.front = Some(conn);
                    // Frames of the old connection may be lost: nothing more
                    // is applied until this connection's snapshot (the snippet
                    // sends one on connect; a pending resync asks again below).
                    if let DocSync::Live(_) = self.sync {
                        self.sync = DocSync::Awaiting;
                    }
                }
                let was_away = front && self.customer_gone_at.take().is_some();
                self.last_activity = Instant::now();
                self.to_conn(conn, &self.session_for_customer());
                self.tell_tab(conn);
                if let Some(agent) = &self.agent_id {
                    self.to_conn(
                        conn,
                        &ToCustomer::Agent {
                            name: agent.name.clone(),
                        },
                    );
                    if self.agent.is_none() {
                        self.to_conn(
                            conn,
                            &ToCustomer::Presence {
                                agent: Presence::Away,
                            },
                        );
                    }
                }
                self.to_conn(conn, &ToCustomer::Rules(self.rw().cue()));
                if front {
                    self.ask_for_snapshot("reconnected");
                }
                if was_away {
                    self.to_agent(&ToAgent::Presence {
                        customer: Presence::Present,
                    });
                }
                let _ = reply.send(Ok(()));
                None
            }
            Event::CustomerGone { conn } => {
                self.customers.retain(|t| t.peer.conn != conn);
                if self.front == Some(conn) {
                    self.front = None;
                    // The tab that connected or came to the front last takes
                    // over (the same tab's next page, or the one the customer
                    // sees now that the front one closed); with none, the
                    // agent waits for the page.
                    let next = self.customers.iter().rev().find(|t| t.tabs);
                    match next.map(|t| t.peer.conn) {
                        Some(next) => self.switch_front(next).await,
                        None => {
                            self.customer_gone_at = Some(Instant::now());
                            self.to_agent(&ToAgent::Presence {
                                customer: Presence::Away,
                            });
                        }
                    }
                }
                None
            }
            Event::Customer { conn, msg } => {
                if !self.customers.iter().any(|t| t.peer.conn == conn) {
                    return None;
                }
                if self.front != Some(conn) {
                    // Fail closed: a tab in the back never feeds the agent's
                    // view; it may only come to the front, answer or revoke
                    // write mode, or end the session.
                    match msg {
                        CustomerMsg::Front {} => {
                            self.last_activity = Instant::now();
                            self.switch_front(conn).await;
                            return None;
                        }
                        CustomerMsg::Control { .. } | CustomerMsg::End {} => {}
                        _ => return None,
                    }
                }
                self.last_activity = Instant::now();
                self.on_customer(conn, msg).await
            }
            Event::CustomerRefused { conn, reason } => {
                if self.front == Some(conn) {
                    self.enter_resync(&reason).await;
                }
                None
            }
            Event::AgentConnect {
                conn,
                outbox,
                agent,
                reply,
            } => {
                if let Some(current) = &self.agent_id {
                    if current.user_id != agent.user_id {
                        let _ = reply.send(Err(SessionError::SessionTaken));
                        return None;
                    }
                }
                if let Some(old) = self.agent.take() {
                    old.outbox.push_final(Some(frame(&ToAgent::Error {
                        code: "replaced".into(),
                        message: "the session continues in another window".into(),
                    })));
                }
                self.agent = Some(Peer { conn, outbox });
                self.last_activity = Instant::now();
                let first_join = self.agent_id.is_none();
                if first_join {
                    self.agent_id = Some(agent.clone());
                    self.state = SessionState::Active;
                    self.publish_status();
                    if let Err(e) = self
                        .inner
                        .store()
                        .history_join(self.history_id, &agent.name)
                        .await
                    {
                        tracing::error!(session = %self.id, error = %e, "cannot write session history");
                    }
                    self.to_customers(&ToCustomer::Agent { name: agent.name });
                    self.to_customers(&self.session_for_customer());
                    tracing::info!(session = %self.id, "agent joined");
                } else {
                    self.agent_gone_at = None;
                    self.to_customers(&ToCustomer::Presence {
                        agent: Presence::Present,
                    });
                    self.history("agent_back", "").await;
                }
                self.send_agent_state().await;
                let _ = reply.send(Ok(()));
                None
            }
            Event::AgentGone { conn } => {
                self.agent_away(conn).await;
                None
            }
            Event::Agent { conn, msg } => {
                if self.agent.as_ref().is_none_or(|p| p.conn != conn) {
                    return None;
                }
                if let AgentMsg::Away {} = msg {
                    // The viewer is closing: away now, not when the socket
                    // closes; this socket is done.
                    if let Some(p) = &self.agent {
                        p.outbox.push_final(None);
                    }
                    self.agent_away(conn).await;
                    return None;
                }
                self.last_activity = Instant::now();
                self.on_agent(msg).await
            }
            Event::Drained { conn } => {
                if let Some(peer) = self.agent.as_ref().filter(|p| p.conn == conn) {
                    peer.outbox.resynced();
                    self.send_agent_state().await;
                } else if let Some(t) = self.customers.iter().find(|t| t.peer.conn == conn) {
                    t.peer.outbox.resynced();
                    self.to_conn(conn, &self.session_for_customer());
                    self.tell_tab(conn);
                    self.to_conn(conn, &ToCustomer::Rules(self.rw().cue()));
                    // a resync request may have been among the dropped frames
                    if self.front == Some(conn) {
                        self.ask_for_snapshot("resync");
                    }
                }
                None
            }
            Event::Rules(rules) => {
                match self.offload(None, move |rw| rw.set_rules(rules)).await {
                    Offloaded::Done(ops) => {
                        let live = matches!(self.sync, DocSync::Live(_));
                        if live && !ops.is_empty() && self.state == SessionState::Active {
                            self.to_agent(&ToAgent::Mutations { ops });
                        }
                    }
                    Offloaded::OverBudget | Offloaded::Failed => {
                        self.enter_resync("over_budget").await;
                    }
                }
                self.to_customers(&ToCustomer::Rules(self.rw().cue()));
                self.update_stats();
                self.history("rules", "published rules applied").await;
                None
            }
            Event::End(reason) => Some(reason),
        }
    }

    async fn on_customer(&mut self, conn: u64, msg: CustomerMsg) -> Option<EndReason> {
        let active = self.state == SessionState::Active;
        match msg {
            CustomerMsg::Snapshot(snap) => {
                let vp = snap.viewport;
                let epoch = snap.epoch;
                let nodes = protocol::count_nodes(&snap.root);
                match self.offload(Some(nodes), move |rw| rw.snapshot(snap)).await {
                    Offloaded::Done(Ok(out)) => {
                        self.sync = DocSync::Live(epoch);
                        self.viewport = Some((vp.w, vp.h));
                        self.scroll.clear();
                        if active {
                            self.to_agent(&ToAgent::Snapshot(out));
                        }
                        self.update_stats();
                    }
                    Offloaded::Done(Err(e)) => {
                        self.report_rewrite_error(&e.to_string());
                        self.enter_resync("snapshot_refused").await;
                    }
                    Offloaded::Failed => {
                        self.rw().discard_document();
                        self.enter_resync("internal").await;
                    }
                    Offloaded::OverBudget => {
                        // Even a fresh snapshot cannot be rewritten in time:
                        // the page is too heavy for the rules in force.
                        self.rw().discard_document();
                        return Some(EndReason::Overloaded);
                    }
                }
                // The URL may have changed: tell the customer which rules apply now.
                self.to_customer(&ToCustomer::Rules(self.rw().cue()));
            }
            CustomerMsg::Mutations { epoch, ops } => match self.sync {
                DocSync::Live(current) if current == epoch => {
                    let nodes = ops.len() + ops.iter().map(protocol::op_nodes).sum::<usize>();
                    match self.offload(Some(nodes), move |rw| rw.apply(ops)).await {
                        Offloaded::Done(Ok(out)) => {
                            if active && !out.is_empty() {
                                self.to_agent(&ToAgent::Mutations { ops: out });
                            }
                        }
                        Offloaded::Done(Err(e)) => {
                            self.report_rewrite_error(&e.to_string());
                            self.enter_resync("rewrite").await;
                        }
                        Offloaded::OverBudget => self.enter_resync("over_budget").await,
                        Offloaded::Failed => self.enter_resync("internal").await,
                    }
                }
                // A batch for an older document: the current one replaced it.
                DocSync::Live(_) => {}
                // Out of step: mutations with no snapshot on this connection.
                DocSync::Awaiting => self.enter_resync("no_snapshot").await,
                DocSync::Resyncing { .. } => {}
            },
            CustomerMsg::Navigate { epoch, url, title } => {
                if self.sync == DocSync::Live(epoch) {
                    match self.offload(None, move |rw| rw.navigate(url, title)).await {
                        Offloaded::OverBudget => self.enter_resync("over_budget").await,
                        Offloaded::Failed => self.enter_resync("internal").await,
                        Offloaded::Done(Ok((page, ops))) => {
                            if active {
                                self.to_agent(&page);
                                if !ops.is_empty() {
                                    self.to_agent(&ToAgent::Mutations { ops });
                                }
                            }
                            self.to_customer(&ToCustomer::Rules(self.rw().cue()));
                            self.update_stats();
                        }
                        Offloaded::Done(Err(e)) => {
                            self.report_rewrite_error(&e.to_string());
                            self.enter_resync("rewrite").await;
                        }
                    }
                } else if self.sync == DocSync::Awaiting {
                    self.enter_resync("no_snapshot").await;
                }
            }
            CustomerMsg::Pointer { x, y } => {
                if active {
                    self.to_agent(&ToAgent::Pointer { x, y });
                }
            }
            CustomerMsg::Scroll { id, x, y } => {
                self.scroll.retain(|s| s.0 != id);
                if self.scroll.len() > MAX_SCROLLS {
                    // the oldest element goes; the page's own position stays
                    if let Some(i) = self.scroll.iter().position(|s| s.0.is_some()) {
                        self.scroll.remove(i);
                    }
                }
                self.scroll.push((id, x, y));
                if active {
                    self.to_agent(&ToAgent::Scroll { id, x, y });
                }
            }
            CustomerMsg::Viewport { w, h } => {
                self.viewport = Some((w, h));
                if active {
                    self.to_agent(&ToAgent::Viewport { w, h });
                }
            }
            // Already in front: nothing changes.
            CustomerMsg::Front {} => {}
            CustomerMsg::Control { grant } => {
                if !active {
                    self.to_conn(
                        conn,
                        &ToCustomer::Error {
                            code: "not_active".into(),
                            message: "no agent has joined this session".into(),
                        },
                    );
                } else if grant {
                    self.control_pending = false;
                    self.set_mode(Mode::Write).await;
                } else {
                    if self.control_pending {
                        self.control_pending = false;
                        self.to_agent(&ToAgent::Denied {
                            action: "control".into(),
                            reason: "refused".into(),
                        });
                        self.history("control_refused", "").await;
                    }
                    self.set_mode(Mode::Pointer).await;
                }
            }
            CustomerMsg::End {} => return Some(EndReason::CustomerExit),
        }
        None
    }

    fn report_rewrite_error(&self, message: &str) {
        self.to_customer(&ToCustomer::Error {
            code: "rewrite".into(),
            message: message.to_owned(),
        });
    }

    async fn on_agent(&mut self, msg: AgentMsg) -> Option<EndReason> {
        match msg {
            AgentMsg::End {} => return Some(EndReason::AgentExit),
            // Handled in `handle` (needs the connection).
            AgentMsg::Away {} => {}
            AgentMsg::Pointer { x, y } => self.to_customer(&ToCustomer::Pointer { x, y }),
            AgentMsg::Control { request: true } => {
                if self.mode == Mode::Write {
                    self.to_agent(&ToAgent::Mode { mode: Mode::Write });
                } else {
                    self.control_pending = true;
                    self.to_customer(&ToCustomer::Control { request: true });
                    self.history("control_request", "").await;
                }
            }
            AgentMsg::Control { request: false } => {
                self.control_pending = false;
                self.set_mode(Mode::Pointer).await;
            }
            action @ (AgentMsg::Click { .. }
            | AgentMsg::Input { .. }
            | AgentMsg::Key { .. }
            | AgentMsg::Scroll { .. }) => {
                if !matches!(self.sync, DocSync::Live(_)) {
                    // When in doubt, deny: the page may not be what the agent sees.
                    self.denied += 1;
                    self.to_agent(&ToAgent::Denied {
                        action: agent_action_name(&action).to_owned(),
                        reason: "resyncing".into(),
                    });
                    return None;
                }
                let verdict = policy::check(&action, self.state, self.mode, &self.rw());
                match verdict {
                    Verdict::Forward(out) => self.to_customer(&out),
                    Verdict::Deny { action, reason } => {
                        self.denied += 1;
                        self.to_agent(&ToAgent::Denied {
                            action: action.to_owned(),
                            reason,
                        });
                    }
                }
            }
        }
        None
    }

    async fn end(&mut self, reason: EndReason) {
        self.state = SessionState::Ended;
        self.publish_status();
        // Remove first, so that a re-join right after `ended` sees the reason.
        self.inner.remove(&self.id, reason);
        let r = reason.as_str().to_owned();
        if let Some(p) = self.agent.take() {
            p.outbox
                .push_final(Some(frame(&ToAgent::Ended { reason: r.clone() })));
        }
        self.front = None;
        for t in self.customers.drain(..) {
            t.peer
                .outbox
                .push_final(Some(frame(&ToCustomer::Ended { reason: r.clone() })));
        }
        self.update_stats();
        let counts = EndCounts {
            masked: self.masked_max,
            blocked: self.blocked_max,
            denied: self.denied,
        };
        if let Err(e) = self
            .inner
            .store()
            .history_end(self.history_id, &r, counts)
            .await
        {
            tracing::error!(session = %self.id, error = %e, "cannot write session history");
        }
        tracing::info!(session = %self.id, reason = %r, "session ended");
        // Refuse anything still queued (late connects get a clear answer).
        self.rx.close();
        while let Ok(ev) = self.rx.try_recv() {
            match ev {
                Event::CustomerConnect { reply, .. } | Event::AgentConnect { reply, .. } => {
                    let _ = reply.send(Err(SessionError::Ended(r.clone())));
                }
                _ => {}
            }
        }
    }
}

/// The action name of an agent message, as in `denied` frames.
fn agent_action_name(msg: &AgentMsg) -> &'static str {
    match msg {
        AgentMsg::Click { .. } => "click",
        AgentMsg::Input { .. } => "input",
        AgentMsg::Key { .. } => "key",
        AgentMsg::Scroll { .. } => "scroll",
        AgentMsg::Pointer { .. } => "pointer",
        AgentMsg::Control { .. } => "control",
        AgentMsg::Away {} => "away",
        AgentMsg::End {} => "end",
    }
}
