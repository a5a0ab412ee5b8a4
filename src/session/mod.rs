//! Co-browse sessions: the registry of live sessions and their lifecycle.
//!
//! Each live session is one tokio task (the actor, [`actor`]) that owns the
//! session's [`Rewriter`](crate::rewrite::Rewriter) and state machine
//! (waiting → active → ended) and is fed by a bounded channel of events. The
//! [`SessionRegistry`] hands out nine-digit ids, checks customer tokens and
//! the one-agent rules, routes connections and API requests to actors, fans
//! out rule publishes, and ends everything on shutdown. It does not speak
//! WebSocket (see `relay`) or HTTP (see `web`).

mod actor;
pub mod outbox;

use crate::config::{Config, Timeouts};
use crate::protocol::{AgentMsg, CustomerMsg, Limits, Mode, SessionState};
use crate::rules::{CompiledRules, RuleError};
use crate::store::{Credential, Site, Store, StoreError};
use outbox::Outbox;
use rand::Rng;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// Capacity of each actor's event channel.
const EVENT_CHANNEL: usize = 256;
/// How many ended session ids are remembered (to answer re-join attempts).
const ENDED_MEMORY: usize = 10_000;

/// Why a session operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// No live session has this id.
    #[error("no such session")]
    NotFound,
    /// The session has ended and can never be joined again.
    #[error("the session has ended ({0})")]
    Ended(String),
    /// The customer token does not match.
    #[error("wrong session token")]
    BadToken,
    /// The connecting page's origin is not allowed for the session's site.
    #[error("origin {0} is not allowed for this site")]
    OriginNotAllowed(String),
    /// Another agent already joined this session.
    #[error("another agent has joined this session")]
    SessionTaken,
    /// This agent is already in another live session.
    #[error("you are already in session {0}; end it first")]
    AgentBusy(String),
    /// The agent asked to leave a session that is not theirs.
    #[error("you are not the agent of this session")]
    NotYourSession,
    /// The server is shutting down; no new sessions or connections.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// A live-session limit is reached (the message says which).
    #[error("{0}")]
    Capacity(String),
    /// The site's published rules do not compile (fail closed).
    #[error("the site's published rules are invalid: {0}")]
    Rules(#[from] RuleError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SessionError {
    /// The machine-readable code used in `error` frames.
    pub fn code(&self) -> &'static str {
        match self {
            SessionError::NotFound => "not_found",
            SessionError::Ended(_) => "session_ended",
            SessionError::BadToken => "bad_token",
            SessionError::OriginNotAllowed(_) => "origin_not_allowed",
            SessionError::SessionTaken => "session_taken",
            SessionError::AgentBusy(_) => "agent_busy",
            SessionError::NotYourSession => "not_your_session",
            SessionError::ShuttingDown => "shutting_down",
            SessionError::Capacity(_) => "capacity",
            SessionError::Rules(_) => "rules_invalid",
            SessionError::Store(_) => "internal",
        }
    }
}

/// Why a session ended (the exact strings go to both sides and the history).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndReason {
    CustomerExit,
    AgentExit,
    WaitingTimeout,
    InactivityTimeout,
    AgentAwayTimeout,
    CustomerAwayTimeout,
    InteractionEnded,
    ApiEnded,
    ServerShutdown,
    /// The agent's credentials were revoked (token revoked, account
    /// disabled or password changed) while the session was live.
    AgentRevoked,
    /// The customer's page cannot be rewritten within the time budget, even
    /// from a fresh snapshot.
    Overloaded,
    /// The agent closed their viewer and then chose to end the session to
    /// take the next customer.
    AgentLeft,
}

impl EndReason {
    /// The wire and history name.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::CustomerExit => "customer_exit",
            EndReason::AgentExit => "agent_exit",
            EndReason::WaitingTimeout => "waiting_timeout",
            EndReason::InactivityTimeout => "inactivity_timeout",
            EndReason::AgentAwayTimeout => "agent_away_timeout",
            EndReason::CustomerAwayTimeout => "customer_away_timeout",
            EndReason::InteractionEnded => "interaction_ended",
            EndReason::ApiEnded => "api_ended",
            EndReason::ServerShutdown => "server_shutdown",
            EndReason::AgentRevoked => "agent_revoked",
            EndReason::Overloaded => "overloaded",
            EndReason::AgentLeft => "agent_left",
        }
    }
}

/// The agent joining a session (an authenticated user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentIdentity {
    pub user_id: i64,
    /// The account name: what the customer is shown in the `agent` message.
    pub name: String,
    /// What the socket was authenticated with, re-checked while the session
    /// lives (revocation ends the session with `agent_revoked`).
    pub credential: Credential,
}

/// The state and mode of a session as published by its actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub state: SessionState,
    pub mode: Mode,
}

/// A public view of one live session (for the API).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SessionInfo {
    pub id: String,
    pub state: SessionState,
    pub mode: Mode,
    pub site: String,
}

/// A newly created session: its id and the customer's secret token.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Created {
    pub id: String,
    pub token: String,
}

/// Events fed to a session actor.
#[derive(Debug)]
pub(crate) enum Event {
    CustomerConnect {
        conn: u64,
        outbox: Arc<Outbox>,
        /// v1.3 snippet (`tabs=1`): one of possibly several tabs of the
        /// customer; otherwise the connection replaces every other one.
        tabs: bool,
        reply: oneshot::Sender<Result<(), SessionError>>,
    },
    Customer {
        conn: u64,
        msg: CustomerMsg,
    },
    CustomerGone {
        conn: u64,
    },
    /// The relay refused a customer frame that may have carried document
    /// changes (rate limit, limits, malformed): the mirror may be out of step.
    CustomerRefused {
        conn: u64,
        reason: String,
    },
    AgentConnect {
        conn: u64,
        outbox: Arc<Outbox>,
        agent: AgentIdentity,
        reply: oneshot::Sender<Result<(), SessionError>>,
    },
    Agent {
        conn: u64,
        msg: AgentMsg,
    },
    AgentGone {
        conn: u64,
    },
    /// A connection's outbox overflowed and has drained: resend full state.
    Drained {
        conn: u64,
    },
    Rules(Arc<CompiledRules>),
    End(EndReason),
}

/// Which side of a session a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Customer,
    Agent,
}

/// A connection's link to its session actor (held by the relay).
#[derive(Debug, Clone)]
pub struct Link {
    conn: u64,
    side: Side,
    tx: mpsc::Sender<Event>,
}

impl Link {
    /// Deliver a customer message; `false` once the session is gone.
    pub async fn customer(&self, msg: CustomerMsg) -> bool {
        self.tx
            .send(Event::Customer {
                conn: self.conn,
                msg,
            })
            .await
            .is_ok()
    }

    /// Deliver an agent message; `false` once the session is gone.
    pub async fn agent(&self, msg: AgentMsg) -> bool {
        self.tx
            .send(Event::Agent {
                conn: self.conn,
                msg,
            })
            .await
            .is_ok()
    }

    /// Report a refused customer frame that may have changed the document;
    /// `false` once the session is gone.
    pub async fn customer_refused(&self, reason: &str) -> bool {
        self.tx
            .send(Event::CustomerRefused {
                conn: self.conn,
                reason: reason.to_owned(),
            })
            .await
            .is_ok()
    }

    /// Report that the outbox drained after an overflow; `false` once the session is gone.
    pub async fn drained(&self) -> bool {
        self.tx
            .send(Event::Drained { conn: self.conn })
            .await
            .is_ok()
    }

    /// Report that the socket is gone.
    pub async fn gone(&self) {
        let ev = match self.side {
            Side::Customer => Event::CustomerGone { conn: self.conn },
            Side::Agent => Event::AgentGone { conn: self.conn },
        };
        let _ = self.tx.send(ev).await;
    }
}

struct Handle {
    site_id: i64,
    site_key: String,
    token: String,
    origins: Vec<String>,
    interaction: Option<String>,
    tx: mpsc::Sender<Event>,
    status: watch::Receiver<Status>,
    task: Option<JoinHandle<()>>,
    /// The joined agent and the credential of their latest socket.
    agent: Option<(i64, Credential)>,
}

#[derive(Default)]
struct RegState {
    live: HashMap<String, Handle>,
    /// agent user id → the live session they are in (or joining).
    agents: HashMap<i64, String>,
    /// Recently ended ids and their reasons.
    ended: HashMap<String, (String, Instant)>,
    shutting_down: bool,
}

pub(crate) struct Inner {
    store: Store,
    timeouts: Timeouts,
    limits: Limits,
    server: crate::config::ServerLimits,
    state: Mutex<RegState>,
    next_conn: AtomicU64,
    conns: watch::Sender<usize>,
    rules_cache: Mutex<HashMap<i64, (i64, Arc<CompiledRules>)>>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, RegState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Called by an actor when its session ends.
    pub(crate) fn remove(&self, id: &str, reason: EndReason) {
        let mut st = self.lock();
        st.live.remove(id);
        st.agents.retain(|_, sid| sid != id);
        if st.ended.len() >= ENDED_MEMORY {
            if let Some(oldest) = st
                .ended
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| k.clone())
            {
                st.ended.remove(&oldest);
            }
        }
        st.ended
            .insert(id.to_owned(), (reason.as_str().to_owned(), Instant::now()));
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }
}

/// Decrements the live connection count when dropped.
pub struct ConnGuard {
    conns: watch::Sender<usize>,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.conns.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// The registry of live sessions; cheap to clone.
#[derive(Clone)]
pub struct SessionRegistry {
    inner: Arc<Inner>,
}

/// Compare two secrets in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl SessionRegistry {
    /// A registry using the store and the configured timeouts and limits.
    pub fn new(store: Store, config: &Config) -> SessionRegistry {
        let (conns, _) = watch::channel(0usize);
        SessionRegistry {
            inner: Arc::new(Inner {
                store,
                timeouts: config.timeouts,
                limits: config.limits,
                server: config.server,
                state: Mutex::new(RegState::default()),
                next_conn: AtomicU64::new(1),
                conns,
                rules_cache: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Count a WebSocket connection until the guard is dropped.
    pub fn conn_guard(&self) -> ConnGuard {
        self.inner.conns.send_modify(|n| *n += 1);
        ConnGuard {
            conns: self.inner.conns.clone(),
        }
    }

    /// The compiled published rules of a site (cached per version).
    pub async fn rules_for(&self, site_id: i64) -> Result<Arc<CompiledRules>, SessionError> {
        let store = &self.inner.store;
        let latest = store.latest_version_number(site_id).await?.unwrap_or(0);
        {
            let cache = self
                .inner
                .rules_cache
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some((v, rules)) = cache.get(&site_id) {
                if *v == latest {
                    return Ok(rules.clone());
                }
            }
        }
        let compiled = match store.published(site_id).await? {
            Some(p) => CompiledRules::compile(&p.rules, p.settings)?,
            None => CompiledRules::compile(&[], Default::default())?,
        };
        let compiled = Arc::new(compiled);
        self.inner
            .rules_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(site_id, (latest, compiled.clone()));
        Ok(compiled)
    }

    /// Start a session for a customer of `site` (design §3: only customers start sessions).
    pub async fn create(
        &self,
        site: &Site,
        url: &str,
        interaction: Option<String>,
    ) -> Result<Created, SessionError> {
        if self.inner.lock().shutting_down {
            return Err(SessionError::ShuttingDown);
        }
        let rules = self.rules_for(site.id).await?;
        // resource URLs of the replica go through the proxy (web::proxy)
        let proxy = Arc::new(crate::rewrite::urls::ProxyLinks::new(
            &site.key,
            site.origins.clone(),
            self.inner.store.picker_secret().await?,
        ));
        let token = crate::store::random_hex(32);
        let (tx, rx) = mpsc::channel(EVENT_CHANNEL);
        let (status_tx, status_rx) = watch::channel(Status {
            state: SessionState::Waiting,
            mode: Mode::Pointer,
        });
        let id = {
            let mut st = self.inner.lock();
            if st.shutting_down {
                return Err(SessionError::ShuttingDown);
            }
            let limits = &self.inner.server;
            if st.live.len() >= limits.live_sessions {
                return Err(SessionError::Capacity(format!(
                    "the server is at its limit of {} live sessions; try again later",
                    limits.live_sessions
                )));
            }
            let of_site = st.live.values().filter(|h| h.site_id == site.id).count();
            if of_site >= limits.live_sessions_per_site {
                return Err(SessionError::Capacity(format!(
                    "site `{}` is at its limit of {} live sessions; try again later",
                    site.key, limits.live_sessions_per_site
                )));
            }
            let mut rng = rand::rng();
            let id = loop {
                let candidate = rng.random_range(100_000_000u32..=999_999_999).to_string();
                if !st.live.contains_key(&candidate) {
                    break candidate;
                }
            };
            st.live.insert(
                id.clone(),
                Handle {
                    site_id: site.id,
                    site_key: site.key.clone(),
                    token: token.clone(),
                    origins: site.origins.clone(),
                    interaction: interaction.clone(),
                    tx,
                    status: status_rx,
                    task: None,
                    agent: None,
                },
            );
            id
        };
        let history_id = match self
            .inner
            .store
            .history_start(&id, site.id, &site.key, url, interaction.as_deref())
            .await
        {
            Ok(h) => h,
            Err(e) => {
                self.inner.lock().live.remove(&id);
                return Err(e.into());
            }
        };
        let actor = actor::Actor::new(
            id.clone(),
            history_id,
            self.inner.clone(),
            rx,
            status_tx,
            rules,
            Some(proxy),
            self.inner.timeouts,
            self.inner.limits,
        );
        let task = tokio::spawn(actor.run());
        if let Some(h) = self.inner.lock().live.get_mut(&id) {
            h.task = Some(task);
        }
        tracing::info!(session = %id, site = %site.key, "session created");
        Ok(Created { id, token })
    }

    fn next_conn(&self) -> u64 {
        self.inner.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    fn missing(&self, st: &RegState, id: &str) -> SessionError {
        match st.ended.get(id) {
            Some((reason, _)) => SessionError::Ended(reason.clone()),
            None => SessionError::NotFound,
        }
    }

    fn after_actor_gone(&self, id: &str) -> SessionError {
        let st = self.inner.lock();
        self.missing(&st, id)
    }

    /// Attach the customer's socket (first connect, a reconnect after
    /// navigation, or, with `tabs`, another tab of the customer).
    pub async fn connect_customer(
        &self,
        id: &str,
        token: &str,
        origin: Option<&str>,
        tabs: bool,
        outbox: Arc<Outbox>,
    ) -> Result<Link, SessionError> {
        let tx = {
            let st = self.inner.lock();
            if st.shutting_down {
                return Err(SessionError::ShuttingDown);
            }
            let h = st.live.get(id).ok_or_else(|| self.missing(&st, id))?;
            if !constant_time_eq(h.token.as_bytes(), token.as_bytes()) {
                return Err(SessionError::BadToken);
            }
            if let Some(origin) = origin {
                let ok = crate::store::normalize_origin(origin)
                    .map(|o| h.origins.contains(&o))
                    .unwrap_or(false);
                if !ok {
                    return Err(SessionError::OriginNotAllowed(origin.to_owned()));
                }
            }
            h.tx.clone()
        };
        let conn = self.next_conn();
        let (reply, rx) = oneshot::channel();
        if tx
            .send(Event::CustomerConnect {
                conn,
                outbox,
                tabs,
                reply,
            })
            .await
            .is_err()
        {
            return Err(self.after_actor_gone(id));
        }
        match rx.await {
            Ok(Ok(())) => Ok(Link {
                conn,
                side: Side::Customer,
                tx,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(self.after_actor_gone(id)),
        }
    }

    /// Attach an agent's socket: first join, or a return within the away grace.
    pub async fn join_agent(
        &self,
        id: &str,
        agent: AgentIdentity,
        outbox: Arc<Outbox>,
    ) -> Result<Link, SessionError> {
        let tx = {
            let mut st = self.inner.lock();
            if st.shutting_down {
                return Err(SessionError::ShuttingDown);
            }
            let tx = st
                .live
                .get(id)
                .ok_or_else(|| self.missing(&st, id))?
                .tx
                .clone();
            match st.agents.get(&agent.user_id) {
                Some(other) if other != id => return Err(SessionError::AgentBusy(other.clone())),
                _ => {}
            }
            st.agents.insert(agent.user_id, id.to_owned());
            tx
        };
        let conn = self.next_conn();
        let user_id = agent.user_id;
        let credential = agent.credential;
        let (reply, rx) = oneshot::channel();
        let result = if tx
            .send(Event::AgentConnect {
                conn,
                outbox,
                agent,
                reply,
            })
            .await
            .is_err()
        {
            Err(self.after_actor_gone(id))
        } else {
            match rx.await {
                Ok(r) => r,
                Err(_) => Err(self.after_actor_gone(id)),
            }
        };
        match result {
            Ok(()) => {
                if let Some(h) = self.inner.lock().live.get_mut(id) {
                    h.agent = Some((user_id, credential));
                }
                // A revocation that landed between authentication and now
                // was not seen by the watcher for this session: check once.
                if let Ok(false) = self.inner.store.credential_valid(user_id, credential).await {
                    self.end_session(id, EndReason::AgentRevoked).await;
                }
                Ok(Link {
                    conn,
                    side: Side::Agent,
                    tx,
                })
            }
            Err(e) => {
                // Refused (taken) or gone: this agent is not in `id`, so the
                // reservation must not make them look busy.
                let mut st = self.inner.lock();
                if st.agents.get(&user_id).map(String::as_str) == Some(id) {
                    st.agents.remove(&user_id);
                }
                Err(e)
            }
        }
    }

    /// The live session this agent has joined (connected or away), if any.
    pub fn agent_session(&self, user_id: i64) -> Option<String> {
        let st = self.inner.lock();
        st.live
            .iter()
            .find(|(_, h)| h.agent.is_some_and(|(u, _)| u == user_id))
            .map(|(id, _)| id.clone())
    }

    /// The agent of session `id` ends it with `agent_left` (they closed the
    /// viewer and now take the next customer). Only that session's agent may;
    /// when this returns `Ok` the agent is free to join another session.
    pub async fn leave_agent(&self, id: &str, user_id: i64) -> Result<(), SessionError> {
        let (tx, mut status) = {
            let mut st = self.inner.lock();
            let h = st.live.get(id).ok_or_else(|| self.missing(&st, id))?;
            if h.agent.is_none_or(|(u, _)| u != user_id) {
                return Err(SessionError::NotYourSession);
            }
            let pair = (h.tx.clone(), h.status.clone());
            // Free at once: the next join must not find them busy.
            if st.agents.get(&user_id).map(String::as_str) == Some(id) {
                st.agents.remove(&user_id);
            }
            pair
        };
        if tx.send(Event::End(EndReason::AgentLeft)).await.is_err() {
            return Err(self.after_actor_gone(id));
        }
        // Bounded: the actor publishes `ended` before it writes the history.
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            status.wait_for(|s| s.state == SessionState::Ended),
        )
        .await;
        Ok(())
    }

    /// The state of a live session.
    pub fn info(&self, id: &str) -> Option<SessionInfo> {
        let st = self.inner.lock();
        st.live.get(id).map(|h| {
            let s = *h.status.borrow();
            SessionInfo {
                id: id.to_owned(),
                state: s.state,
                mode: s.mode,
                site: h.site_key.clone(),
            }
        })
    }

    /// Whether a session with this id is live.
    pub fn is_live(&self, id: &str) -> bool {
        self.inner.lock().live.contains_key(id)
    }

    /// Re-check the credentials of every joined agent (connected or away);
    /// sessions whose agent's token was revoked, account disabled or
    /// password changed end with `agent_revoked`. Returns how many ended.
    pub async fn recheck_credentials(&self) -> usize {
        let joined: Vec<(String, i64, Credential)> = self
            .inner
            .lock()
            .live
            .iter()
            .filter_map(|(id, h)| h.agent.map(|(u, c)| (id.clone(), u, c)))
            .collect();
        let mut ended = 0;
        for (id, user_id, credential) in joined {
            match self.inner.store.credential_valid(user_id, credential).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::info!(session = %id, user_id, "agent credentials revoked: ending the session");
                    if self.end_session(&id, EndReason::AgentRevoked).await {
                        ended += 1;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot re-check agent credentials"),
            }
        }
        ended
    }

    /// Watch the store's credentials epoch (changed by password changes,
    /// disables and token revocations, from the editor or the CLI) and
    /// re-check every joined agent when it moves. Runs until aborted.
    pub async fn watch_credentials(self, every: Duration) {
        let mut seen = self.inner.store.credentials_epoch().await.ok();
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match self.inner.store.credentials_epoch().await {
                Ok(epoch) if seen != Some(epoch) => {
                    seen = Some(epoch);
                    self.recheck_credentials().await;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot read the credentials epoch"),
            }
        }
    }

    /// The site id of a live session.
    pub fn site_of(&self, id: &str) -> Option<i64> {
        self.inner.lock().live.get(id).map(|h| h.site_id)
    }

    /// The site key of a live session.
    pub fn site_key_of(&self, id: &str) -> Option<String> {
        self.inner.lock().live.get(id).map(|h| h.site_key.clone())
    }

    /// Number of live sessions.
    pub fn live_count(&self) -> usize {
        self.inner.lock().live.len()
    }

    /// End a live session; `false` if there is none with that id.
    pub async fn end_session(&self, id: &str, reason: EndReason) -> bool {
        let tx = self.inner.lock().live.get(id).map(|h| h.tx.clone());
        match tx {
            Some(tx) => tx.send(Event::End(reason)).await.is_ok(),
            None => false,
        }
    }

    /// End every live session linked to an interaction id (optionally only of
    /// one site); returns how many were ended.
    pub async fn end_interaction(
        &self,
        interaction: &str,
        site_id: Option<i64>,
        reason: EndReason,
    ) -> usize {
        let txs: Vec<_> = self
            .inner
            .lock()
            .live
            .values()
            .filter(|h| h.interaction.as_deref() == Some(interaction))
            .filter(|h| site_id.is_none_or(|s| s == h.site_id))
            .map(|h| h.tx.clone())
            .collect();
        let mut n = 0;
        for tx in txs {
            if tx.send(Event::End(reason)).await.is_ok() {
                n += 1;
            }
        }
        n
    }

    /// A new rule set was published for a site: every live session of that
    /// site switches to it at once.
    pub async fn publish_rules(&self, site_id: i64, rules: Arc<CompiledRules>) {
        self.inner
            .rules_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&site_id);
        let txs: Vec<_> = self
            .inner
            .lock()
            .live
            .values()
            .filter(|h| h.site_id == site_id)
            .map(|h| h.tx.clone())
            .collect();
        for tx in txs {
            let _ = tx.send(Event::Rules(rules.clone())).await;
        }
    }

    /// Watch the store for versions published by another process (the CLI's
    /// `rules import --publish`) and switch the live sessions of that site, so
    /// every publish reaches live sessions, not only the editor's. Checks every
    /// `every` while sessions are live; runs until the task is aborted.
    pub async fn watch_published(self, every: Duration) {
        let mut seen: HashMap<i64, i64> = HashMap::new();
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let sites: std::collections::BTreeSet<i64> =
                self.inner.lock().live.values().map(|h| h.site_id).collect();
            seen.retain(|site, _| sites.contains(site));
            for site_id in sites {
                let latest = match self.inner.store.latest_version_number(site_id).await {
                    Ok(v) => v.unwrap_or(0),
                    Err(e) => {
                        tracing::warn!(site_id, error = %e, "cannot read the published rule version");
                        continue;
                    }
                };
                // First look at a site: compare with the version its sessions
                // were started with (kept by `rules_for`).
                let before = seen.insert(site_id, latest).or_else(|| {
                    self.inner
                        .rules_cache
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get(&site_id)
                        .map(|(v, _)| *v)
                });
                if before.is_some_and(|v| v != latest) {
                    match self.rules_for(site_id).await {
                        Ok(rules) => {
                            tracing::info!(
                                site_id,
                                version = latest,
                                "published rules picked up by live sessions"
                            );
                            self.publish_rules(site_id, rules).await;
                        }
                        Err(e) => {
                            tracing::warn!(site_id, error = %e, "cannot compile newly published rules")
                        }
                    }
                }
            }
        }
    }

    /// End every live session with `server_shutdown` (both sides told, history
    /// written), refuse new ones, and wait (bounded) for sockets to flush.
    pub async fn shutdown(&self) {
        let handles: Vec<Handle> = {
            let mut st = self.inner.lock();
            st.shutting_down = true;
            st.live.drain().map(|(_, h)| h).collect()
        };
        let count = handles.len();
        for h in &handles {
            let _ = h.tx.send(Event::End(EndReason::ServerShutdown)).await;
        }
        for h in handles {
            if let Some(task) = h.task {
                if tokio::time::timeout(Duration::from_secs(10), task)
                    .await
                    .is_err()
                {
                    tracing::warn!("a session actor did not stop within 10s");
                }
            }
        }
        let mut rx = self.inner.conns.subscribe();
        if tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|n| *n == 0))
            .await
            .is_err()
        {
            tracing::warn!("some WebSocket connections were still open at shutdown");
        }
        tracing::info!(sessions = count, "all sessions ended for shutdown");
    }
}
