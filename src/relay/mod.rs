//! The WebSocket relay: the customer and agent socket loops.
//!
//! A connection first attaches to its session (registry), then runs two
//! halves side by side: the reader decodes frames (`protocol::decode`, size,
//! depth and count limits, a per-connection rate limit) and hands them to the
//! session actor; the writer drains the connection's bounded
//! [`Outbox`]. Bad frames get an `error` frame and the socket stays open;
//! it is closed only for an oversized frame or repeated abuse. A socket that
//! negotiated compression (`z=deflate-raw`, see [`Compression`]) may also
//! send binary frames of raw-DEFLATE JSON, inflated under the frame size cap;
//! an agent socket that negotiated it is sent its large frames compressed.
//! The loops are
//! generic over `Sink`/`Stream` of axum WebSocket messages. Authentication
//! happens before the upgrade, in `web`.

use crate::config::QueueLimits;
use crate::protocol::{self, AgentMsg, CustomerMsg, Limits, ProtocolError, ToAgent, ToCustomer};
use crate::session::outbox::{Next, Outbox};
use crate::session::{AgentIdentity, Link, SessionError, SessionRegistry};
use axum::extract::ws::Message;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bad frames in a row after which the socket is closed.
pub const MAX_STRIKES: u32 = 50;

/// Settings of one connection.
#[derive(Debug, Clone, Copy)]
pub struct RelayConfig {
    pub limits: Limits,
    pub queues: QueueLimits,
    /// What the peer negotiated on its socket URL.
    pub compression: Compression,
}

/// Frame compression negotiated by one peer (`z=deflate-raw` on its socket
/// URL). Without it binary frames are refused and everything is sent as text,
/// exactly as before compression existed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Compression {
    /// Plain JSON text frames only.
    #[default]
    None,
    /// Binary frames from the peer are raw-DEFLATE JSON; frames of at least
    /// [`protocol::COMPRESS_MIN_BYTES`] to an agent are sent that way.
    DeflateRaw,
}

impl Compression {
    /// From the `z` query parameter of a socket URL.
    pub fn from_query(z: Option<&str>) -> Compression {
        if z.is_some_and(protocol::accepts_deflate_raw) {
            Compression::DeflateRaw
        } else {
            Compression::None
        }
    }
}

/// Frames at least this large are compressed off the async workers.
const DEFLATE_BLOCKING_BYTES: usize = 256 * 1024;

/// One outbound frame as it goes on the wire: text, or (for a peer that
/// negotiated compression, when large enough) a binary raw-DEFLATE frame.
async fn wire_frame(frame: String, compression: Compression) -> Message {
    if compression != Compression::DeflateRaw || frame.len() < protocol::COMPRESS_MIN_BYTES {
        return Message::Text(frame.into());
    }
    if frame.len() < DEFLATE_BLOCKING_BYTES {
        return Message::Binary(protocol::deflate_frame(&frame).into());
    }
    match tokio::task::spawn_blocking(move || {
        let z = protocol::deflate_frame(&frame);
        (z, frame)
    })
    .await
    {
        Ok((z, _)) => Message::Binary(z.into()),
        // The blocking pool is shutting down: nothing left to send it on.
        Err(_) => Message::Close(None),
    }
}

/// A one-second fixed-window message counter.
#[derive(Debug)]
struct RateLimit {
    per_sec: u32,
    window: Instant,
    count: u32,
    warned: bool,
}

impl RateLimit {
    fn new(per_sec: u32) -> Self {
        RateLimit {
            per_sec,
            window: Instant::now(),
            count: 0,
            warned: false,
        }
    }

    /// `Ok(())` to accept; `Err(first)` to drop, `first` once per window.
    fn check(&mut self) -> Result<(), bool> {
        let now = Instant::now();
        if now.duration_since(self.window) >= Duration::from_secs(1) {
            self.window = now;
            self.count = 0;
            self.warned = false;
        }
        self.count += 1;
        if self.count <= self.per_sec {
            Ok(())
        } else {
            let first = !self.warned;
            self.warned = true;
            Err(first)
        }
    }
}

fn json<T: serde::Serialize>(msg: &T) -> String {
    serde_json::to_string(msg).unwrap_or_default()
}

fn customer_error(code: &str, message: &str) -> String {
    json(&ToCustomer::Error {
        code: code.into(),
        message: message.into(),
    })
}

fn agent_error(code: &str, message: &str) -> String {
    json(&ToAgent::Error {
        code: code.into(),
        message: message.into(),
    })
}

/// The refusal of an agent join; `agent_busy` also names (v1.3 field
/// `session`) the session the agent is in, so the viewer can offer to
/// resume it or end it.
fn agent_refusal(e: &SessionError) -> String {
    let message = refusal_message(e);
    match e {
        SessionError::AgentBusy(other) => json(&serde_json::json!({
            "t": "error",
            "code": e.code(),
            "message": message,
            "session": other,
        })),
        _ => agent_error(e.code(), &message),
    }
}

/// How a reader stopped.
enum ReaderEnd {
    /// The peer closed or the session is gone.
    Closed,
    /// We refused the peer (final error queued): let the writer flush.
    Fatal,
}

/// The per-side parts of the reader.
trait SideSpec {
    type Msg: serde::de::DeserializeOwned;
    fn check(msg: &Self::Msg, limits: &Limits) -> Result<(), ProtocolError>;
    fn error(code: &str, message: &str) -> String;
    async fn deliver(link: &Link, msg: Self::Msg) -> bool;
    /// A frame was refused before delivery (`text` is `None` for a binary
    /// frame); `false` once the session is gone.
    async fn refused(link: &Link, text: Option<&str>, reason: &str) -> bool;
    /// How frames to this side go out, given what it negotiated.
    fn outbound(negotiated: Compression) -> Compression;
}

struct CustomerSide;
impl SideSpec for CustomerSide {
    type Msg = CustomerMsg;
    fn check(msg: &CustomerMsg, limits: &Limits) -> Result<(), ProtocolError> {
        protocol::check_customer_msg(msg, limits)
    }
    fn error(code: &str, message: &str) -> String {
        customer_error(code, message)
    }
    async fn deliver(link: &Link, msg: CustomerMsg) -> bool {
        link.customer(msg).await
    }
    /// Fail closed: a refused frame that may have changed the document puts
    /// the session into resync. Only pointer/scroll/viewport (and control,
    /// end) frames may be dropped without one.
    async fn refused(link: &Link, text: Option<&str>, reason: &str) -> bool {
        if text.is_none_or(protocol::may_be_document_frame) {
            link.customer_refused(reason).await
        } else {
            true
        }
    }
    /// Frames to the customer are small: always text.
    fn outbound(_: Compression) -> Compression {
        Compression::None
    }
}

struct AgentSide;
impl SideSpec for AgentSide {
    type Msg = AgentMsg;
    fn check(msg: &AgentMsg, limits: &Limits) -> Result<(), ProtocolError> {
        // Agent messages carry no trees; only strings need a bound.
        let len = match msg {
            AgentMsg::Input { value, .. } => value.len(),
            AgentMsg::Key { key, .. } => key.len(),
            _ => 0,
        };
        if len > limits.max_message_bytes {
            return Err(ProtocolError::TooLarge {
                size: len,
                limit: limits.max_message_bytes,
            });
        }
        Ok(())
    }
    fn error(code: &str, message: &str) -> String {
        agent_error(code, message)
    }
    async fn deliver(link: &Link, msg: AgentMsg) -> bool {
        link.agent(msg).await
    }
    async fn refused(_: &Link, _: Option<&str>, _: &str) -> bool {
        true
    }
    fn outbound(negotiated: Compression) -> Compression {
        negotiated
    }
}

async fn read_loop<S, E, P>(
    mut stream: S,
    link: &Link,
    outbox: &Outbox,
    cfg: RelayConfig,
) -> ReaderEnd
where
    S: Stream<Item = Result<Message, E>> + Unpin,
    P: SideSpec,
{
    let limits = cfg.limits;
    let mut rate = RateLimit::new(limits.max_messages_per_sec);
    let mut strikes = 0u32;
    while let Some(item) = stream.next().await {
        let Ok(msg) = item else {
            return ReaderEnd::Closed;
        };
        let (text, packed) = match msg {
            Message::Text(t) => (Some(t), None),
            Message::Binary(b) if cfg.compression == Compression::DeflateRaw => (None, Some(b)),
            Message::Binary(_) => {
                strikes += 1;
                outbox.push(P::error(
                    "binary",
                    "binary frames are not supported; send JSON text",
                ));
                if !P::refused(link, None, "binary").await {
                    return ReaderEnd::Closed;
                }
                if strikes > MAX_STRIKES {
                    outbox.push_final(Some(P::error("abuse", "too many bad frames")));
                    return ReaderEnd::Fatal;
                }
                continue;
            }
            Message::Close(_) => return ReaderEnd::Closed,
            Message::Ping(_) | Message::Pong(_) => continue,
        };
        let wire_len =
            text.as_ref().map_or(0, |t| t.len()) + packed.as_ref().map_or(0, |b| b.len());
        if wire_len > limits.max_message_bytes {
            let e = ProtocolError::TooLarge {
                size: wire_len,
                limit: limits.max_message_bytes,
            };
            outbox.push_final(Some(P::error(e.code(), &e.to_string())));
            return ReaderEnd::Fatal;
        }
        if let Err(first) = rate.check() {
            strikes += 1;
            if first {
                outbox.push(P::error(
                    "rate_limited",
                    &format!(
                        "more than {} messages per second; message dropped",
                        limits.max_messages_per_sec
                    ),
                ));
            }
            // A compressed frame is not inflated just to be dropped: it
            // counts as a document frame.
            if !P::refused(link, text.as_ref().map(|t| t.as_str()), "rate_limited").await {
                return ReaderEnd::Closed;
            }
            if strikes > MAX_STRIKES {
                outbox.push_final(Some(P::error("abuse", "too many messages")));
                return ReaderEnd::Fatal;
            }
            continue;
        }
        let text = match (text, packed) {
            (Some(t), _) => t,
            (None, packed) => {
                let packed = packed.unwrap_or_default();
                match protocol::inflate_frame(&packed, &limits) {
                    Ok(s) => s.into(),
                    Err(e) => {
                        // Unreadable or a bomb: what it held is unknown, so
                        // it counts as a document frame (fail closed).
                        strikes += 1;
                        outbox.push(P::error(e.code(), &e.to_string()));
                        if !P::refused(link, None, e.code()).await {
                            return ReaderEnd::Closed;
                        }
                        if strikes > MAX_STRIKES {
                            outbox.push_final(Some(P::error("abuse", "too many bad frames")));
                            return ReaderEnd::Fatal;
                        }
                        continue;
                    }
                }
            }
        };
        let decoded = protocol::decode::<P::Msg>(text.as_str(), &limits)
            .and_then(|m| P::check(&m, &limits).map(|()| m));
        match decoded {
            Ok(m) => {
                strikes = 0;
                if !P::deliver(link, m).await {
                    return ReaderEnd::Closed;
                }
            }
            Err(e) => {
                strikes += 1;
                outbox.push(P::error(e.code(), &e.to_string()));
                if !P::refused(link, Some(text.as_str()), e.code()).await {
                    return ReaderEnd::Closed;
                }
                if strikes > MAX_STRIKES {
                    outbox.push_final(Some(P::error("abuse", "too many bad frames")));
                    return ReaderEnd::Fatal;
                }
            }
        }
    }
    ReaderEnd::Closed
}

async fn write_loop<K>(mut sink: K, outbox: Arc<Outbox>, link: Link, compression: Compression)
where
    K: Sink<Message> + Unpin,
{
    loop {
        match outbox.next().await {
            Next::Frame(f) => {
                let msg = wire_frame(f, compression).await;
                let last = matches!(msg, Message::Close(_));
                if sink.send(msg).await.is_err() || last {
                    return;
                }
            }
            Next::Resync => {
                if !link.drained().await {
                    return;
                }
            }
            Next::Close => {
                let _ = sink.send(Message::Close(None)).await;
                let _ = sink.close().await;
                return;
            }
        }
    }
}

async fn run_linked<S, E, P>(socket: S, link: Link, outbox: Arc<Outbox>, cfg: RelayConfig)
where
    S: Stream<Item = Result<Message, E>> + Sink<Message> + Unpin,
    P: SideSpec,
{
    let (sink, stream) = socket.split();
    let writer = write_loop(
        sink,
        outbox.clone(),
        link.clone(),
        P::outbound(cfg.compression),
    );
    let reader = read_loop::<_, E, P>(stream, &link, &outbox, cfg);
    tokio::pin!(writer);
    tokio::pin!(reader);
    let reader_end = tokio::select! {
        end = &mut reader => Some(end),
        () = &mut writer => None,
    };
    if let Some(ReaderEnd::Fatal) = reader_end {
        let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    }
    link.gone().await;
}

/// Refuse a connection: one `error` frame, then close.
async fn refuse<S>(mut socket: S, frame: String)
where
    S: Sink<Message> + Unpin,
{
    let _ = socket.send(Message::Text(frame.into())).await;
    let _ = socket.send(Message::Close(None)).await;
    let _ = socket.close().await;
}

fn refusal_message(e: &SessionError) -> String {
    if matches!(e, SessionError::Store(_)) {
        tracing::error!(error = %e, "session store failure on connect");
        return "internal error".into();
    }
    e.to_string()
}

/// Run a customer socket until it closes.
pub async fn run_customer<S, E>(
    registry: SessionRegistry,
    cfg: RelayConfig,
    socket: S,
    id: String,
    token: String,
    origin: Option<String>,
    tabs: bool,
) where
    S: Stream<Item = Result<Message, E>> + Sink<Message> + Unpin,
{
    let _guard = registry.conn_guard();
    let outbox = Outbox::new(cfg.queues);
    match registry
        .connect_customer(&id, &token, origin.as_deref(), tabs, outbox.clone())
        .await
    {
        Ok(link) => run_linked::<_, E, CustomerSide>(socket, link, outbox, cfg).await,
        Err(e) => refuse(socket, customer_error(e.code(), &refusal_message(&e))).await,
    }
}

/// Run an (already authenticated) agent socket until it closes.
pub async fn run_agent<S, E>(
    registry: SessionRegistry,
    cfg: RelayConfig,
    socket: S,
    id: String,
    agent: AgentIdentity,
) where
    S: Stream<Item = Result<Message, E>> + Sink<Message> + Unpin,
{
    let _guard = registry.conn_guard();
    let outbox = Outbox::new(cfg.queues);
    match registry.join_agent(&id, agent, outbox.clone()).await {
        Ok(link) => run_linked::<_, E, AgentSide>(socket, link, outbox, cfg).await,
        Err(e) => refuse(socket, agent_refusal(&e)).await,
    }
}

/// An (already authenticated) agent socket that ends the session the agent
/// left instead of joining it (`?leave=1`): `ended {reason:"agent_left"}`
/// when done (the agent is free to join another session at once), else an
/// `error` frame; then the socket closes.
pub async fn leave_agent<S, E>(
    registry: SessionRegistry,
    socket: S,
    id: String,
    agent: AgentIdentity,
) where
    S: Stream<Item = Result<Message, E>> + Sink<Message> + Unpin,
{
    let _guard = registry.conn_guard();
    let frame = match registry.leave_agent(&id, agent.user_id).await {
        Ok(()) => json(&ToAgent::Ended {
            reason: crate::session::EndReason::AgentLeft.as_str().into(),
        }),
        Err(e) => agent_error(e.code(), &refusal_message(&e)),
    };
    refuse(socket, frame).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::store::Store;
    use std::convert::Infallible;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio::sync::mpsc;

    /// A "socket" made of two channels, to drive the loops without a network.
    struct ChanSocket {
        rx: mpsc::UnboundedReceiver<Message>,
        tx: mpsc::UnboundedSender<Message>,
    }

    impl Stream for ChanSocket {
        type Item = Result<Message, Infallible>;
        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            self.rx.poll_recv(cx).map(|m| m.map(Ok))
        }
    }

    impl Sink<Message> for ChanSocket {
        type Error = Infallible;
        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }
        fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Infallible> {
            let _ = self.tx.send(item);
            Ok(())
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }
    }

    async fn next_json(rx: &mut mpsc::UnboundedReceiver<Message>) -> serde_json::Value {
        match rx.recv().await {
            Some(Message::Text(t)) => serde_json::from_str(t.as_str()).unwrap(),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn customer_loop_runs_over_channels() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        store.bootstrap("http://127.0.0.1:1").await.unwrap();
        let config = Config::default();
        let registry = SessionRegistry::new(store.clone(), &config);
        let site = store.site_by_key("demo").await.unwrap().unwrap();
        let created = registry
            .create(&site, "http://127.0.0.1:1/demo/", None)
            .await
            .unwrap();
        let (in_tx, in_rx) = mpsc::unbounded_channel();
        let (out_tx, mut out_rx) = mpsc::unbounded_channel();
        let cfg = RelayConfig {
            limits: config.limits,
            queues: config.queues,
            compression: Compression::None,
        };
        let task = tokio::spawn(run_customer(
            registry.clone(),
            cfg,
            ChanSocket {
                rx: in_rx,
                tx: out_tx,
            },
            created.id.clone(),
            created.token.clone(),
            None,
            false,
        ));
        assert_eq!(next_json(&mut out_rx).await["t"], "session");
        assert_eq!(next_json(&mut out_rx).await["t"], "rules");
        in_tx.send(Message::Text("{oops".into())).unwrap();
        assert_eq!(next_json(&mut out_rx).await["code"], "malformed");
        // A frame that cannot be shown not to carry document changes puts
        // the session into resync (fail closed).
        assert_eq!(next_json(&mut out_rx).await["t"], "resync");
        in_tx.send(Message::Text(r#"{"t":"end"}"#.into())).unwrap();
        assert_eq!(
            next_json(&mut out_rx).await,
            serde_json::json!({"t": "ended", "reason": "customer_exit"})
        );
        assert!(matches!(out_rx.recv().await, Some(Message::Close(_))));
        task.await.unwrap();
        assert!(registry.info(&created.id).is_none());
    }

    #[test]
    fn rate_limit_counts_per_window() {
        let mut r = RateLimit::new(2);
        assert_eq!(r.check(), Ok(()));
        assert_eq!(r.check(), Ok(()));
        assert_eq!(r.check(), Err(true));
        assert_eq!(r.check(), Err(false));
    }
}
