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
    AgentMsg, CustomerMsg, Limits, Mode, NodeId, Presence, SessionState, ToAgent, ToCustomer,
};
use crate::rewrite::Rewriter;
use crate::rules::CompiledRules;
use crate::store::history::EndCounts;
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, watch};

struct Peer {
    conn: u64,
    outbox: Arc<Outbox>,
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
    rewriter: Rewriter,
    customer: Option<Peer>,
    agent: Option<Peer>,
    agent_id: Option<AgentIdentity>,
    created: Instant,
    last_activity: Instant,
    customer_gone_at: Option<Instant>,
    agent_gone_at: Option<Instant>,
    viewport: Option<(f64, f64)>,
    scroll: Option<(Option<NodeId>, f64, f64)>,
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
            rewriter: Rewriter::new(rules, limits),
            customer: None,
            agent: None,
            agent_id: None,
            created: now,
            last_activity: now,
            // The customer has not connected yet: the waiting timeout covers that.
            customer_gone_at: None,
            agent_gone_at: None,
            viewport: None,
            scroll: None,
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
            let outcome = tokio::select! {
                ev = self.rx.recv() => match ev {
                    Some(ev) => self.handle(ev).await,
                    None => Some(EndReason::ServerShutdown),
                },
                () = timer => deadline.map(|(_, reason)| reason),
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
        if let (None, Some(gone)) = (&self.customer, self.customer_gone_at) {
            candidates.push((gone + t.customer_away, EndReason::CustomerAwayTimeout));
        }
        candidates.into_iter().min_by_key(|(at, _)| *at)
    }

    fn to_agent(&self, msg: &ToAgent) {
        if let Some(peer) = &self.agent {
            if peer.outbox.push(frame(msg)) == Push::Overflowed {
                tracing::warn!(session = %self.id, "agent queue overflowed; will resync");
            }
        }
    }

    fn to_customer(&self, msg: &ToCustomer) {
        if let Some(peer) = &self.customer {
            if peer.outbox.push(frame(msg)) == Push::Overflowed {
                tracing::warn!(session = %self.id, "customer queue overflowed; will resync");
            }
        }
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
    fn send_agent_state(&self) {
        self.to_agent(&self.session_for_agent());
        if let Some(snap) = self.rewriter.agent_snapshot() {
            self.to_agent(&ToAgent::Snapshot(snap));
        }
        if let Some((w, h)) = self.viewport {
            self.to_agent(&ToAgent::Viewport { w, h });
        }
        if let Some((id, x, y)) = self.scroll {
            self.to_agent(&ToAgent::Scroll { id, x, y });
        }
        if self.customer.is_none() && self.customer_gone_at.is_some() {
            self.to_agent(&ToAgent::Presence {
                customer: Presence::Away,
            });
        }
    }

    /// The agent's copy may be out of step (rewrite error): resend the snapshot.
    fn resync_agent_document(&self) {
        if let Some(snap) = self.rewriter.agent_snapshot() {
            self.to_agent(&ToAgent::Snapshot(snap));
        }
    }

    fn update_stats(&mut self) {
        let s = self.rewriter.stats();
        self.masked_max = self.masked_max.max(s.masked as i64);
        self.blocked_max = self.blocked_max.max(s.blocked as i64);
    }

    async fn set_mode(&mut self, mode: Mode) {
        let changed = self.mode != mode;
        self.mode = mode;
        self.to_agent(&ToAgent::Mode { mode });
        self.to_customer(&ToCustomer::Mode { mode });
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

    /// Handle one event; `Some(reason)` ends the session.
    async fn handle(&mut self, ev: Event) -> Option<EndReason> {
        match ev {
            Event::CustomerConnect {
                conn,
                outbox,
                reply,
            } => {
                if let Some(old) = self.customer.take() {
                    old.outbox.push_final(Some(frame(&ToCustomer::Error {
                        code: "replaced".into(),
                        message: "the session continues in another page".into(),
                    })));
                }
                self.customer = Some(Peer { conn, outbox });
                let was_away = self.customer_gone_at.take().is_some();
                self.last_activity = Instant::now();
                self.to_customer(&self.session_for_customer());
                if let Some(agent) = &self.agent_id {
                    self.to_customer(&ToCustomer::Agent {
                        name: agent.name.clone(),
                    });
                    if self.agent.is_none() {
                        self.to_customer(&ToCustomer::Presence {
                            agent: Presence::Away,
                        });
                    }
                }
                self.to_customer(&ToCustomer::Rules(self.rewriter.cue()));
                if was_away {
                    self.to_agent(&ToAgent::Presence {
                        customer: Presence::Present,
                    });
                }
                let _ = reply.send(Ok(()));
                None
            }
            Event::CustomerGone { conn } => {
                if self.customer.as_ref().is_some_and(|p| p.conn == conn) {
                    self.customer = None;
                    self.customer_gone_at = Some(Instant::now());
                    self.to_agent(&ToAgent::Presence {
                        customer: Presence::Away,
                    });
                }
                None
            }
            Event::Customer { conn, msg } => {
                if self.customer.as_ref().is_none_or(|p| p.conn != conn) {
                    return None;
                }
                self.last_activity = Instant::now();
                self.on_customer(msg).await
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
                    self.to_customer(&ToCustomer::Agent { name: agent.name });
                    self.to_customer(&self.session_for_customer());
                    tracing::info!(session = %self.id, "agent joined");
                } else {
                    self.agent_gone_at = None;
                    self.to_customer(&ToCustomer::Presence {
                        agent: Presence::Present,
                    });
                    self.history("agent_back", "").await;
                }
                self.send_agent_state();
                let _ = reply.send(Ok(()));
                None
            }
            Event::AgentGone { conn } => {
                if self.agent.as_ref().is_some_and(|p| p.conn == conn) {
                    self.agent = None;
                    self.agent_gone_at = Some(Instant::now());
                    self.to_customer(&ToCustomer::Presence {
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
                None
            }
            Event::Agent { conn, msg } => {
                if self.agent.as_ref().is_none_or(|p| p.conn != conn) {
                    return None;
                }
                self.last_activity = Instant::now();
                self.on_agent(msg).await
            }
            Event::Drained { conn } => {
                if let Some(peer) = self.agent.as_ref().filter(|p| p.conn == conn) {
                    peer.outbox.resynced();
                    self.send_agent_state();
                } else if let Some(peer) = self.customer.as_ref().filter(|p| p.conn == conn) {
                    peer.outbox.resynced();
                    self.to_customer(&self.session_for_customer());
                    self.to_customer(&ToCustomer::Rules(self.rewriter.cue()));
                }
                None
            }
            Event::Rules(rules) => {
                let ops = self.rewriter.set_rules(rules);
                if !ops.is_empty() && self.state == SessionState::Active {
                    self.to_agent(&ToAgent::Mutations { ops });
                }
                self.to_customer(&ToCustomer::Rules(self.rewriter.cue()));
                self.update_stats();
                self.history("rules", "published rules applied").await;
                None
            }
            Event::End(reason) => Some(reason),
        }
    }

    async fn on_customer(&mut self, msg: CustomerMsg) -> Option<EndReason> {
        let active = self.state == SessionState::Active;
        match msg {
            CustomerMsg::Snapshot(snap) => {
                let vp = snap.viewport;
                match self.rewriter.snapshot(snap) {
                    Ok(out) => {
                        self.viewport = Some((vp.w, vp.h));
                        self.scroll = None;
                        if active {
                            self.to_agent(&ToAgent::Snapshot(out));
                        }
                        self.update_stats();
                    }
                    Err(e) => self.rewrite_failed(&e.to_string()),
                }
                // The URL may have changed: tell the customer which rules apply now.
                self.to_customer(&ToCustomer::Rules(self.rewriter.cue()));
            }
            CustomerMsg::Mutations { ops } => match self.rewriter.apply(ops) {
                Ok(out) => {
                    if active && !out.is_empty() {
                        self.to_agent(&ToAgent::Mutations { ops: out });
                    }
                }
                Err(e) => self.rewrite_failed(&e.to_string()),
            },
            CustomerMsg::Pointer { x, y } => {
                if active {
                    self.to_agent(&ToAgent::Pointer { x, y });
                }
            }
            CustomerMsg::Scroll { id, x, y } => {
                self.scroll = Some((id, x, y));
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
            CustomerMsg::Control { grant } => {
                if !active {
                    self.to_customer(&ToCustomer::Error {
                        code: "not_active".into(),
                        message: "no agent has joined this session".into(),
                    });
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

    fn rewrite_failed(&self, message: &str) {
        self.to_customer(&ToCustomer::Error {
            code: "rewrite".into(),
            message: message.to_owned(),
        });
        if self.state == SessionState::Active {
            self.resync_agent_document();
        }
    }

    async fn on_agent(&mut self, msg: AgentMsg) -> Option<EndReason> {
        match msg {
            AgentMsg::End {} => return Some(EndReason::AgentExit),
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
                match policy::check(&action, self.state, self.mode, &self.rewriter) {
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
        if let Some(p) = self.customer.take() {
            p.outbox
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
