//! WebSocket upgrade endpoints: authentication, origin checks and the
//! session-ID guessing throttle happen here, before the socket loops (which
//! live in `relay`) start.

use super::auth::{current_user, AuthKind};
use super::idle::IdleTimeout;
use super::{own_origins, AppState, WebError, DEMO_SITE};
use crate::relay::{self, RelayConfig};
use crate::session::AgentIdentity;
use crate::store::normalize_origin;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::Response;
use serde::Deserialize;
use tower_sessions::Session;

/// The `error {code:"idle_timeout"}` frame for one side.
fn farewell<T: serde::Serialize>(make: impl FnOnce(String, String) -> T) -> String {
    serde_json::to_string(&make(
        "idle_timeout".into(),
        "nothing was received on this socket for too long; reconnect".into(),
    ))
    .unwrap_or_default()
}

fn relay_config(state: &AppState) -> RelayConfig {
    RelayConfig {
        limits: state.config.limits,
        queues: state.config.queues,
        compression: relay::Compression::None,
    }
}

/// Frames up to twice the protocol limit reach our own check (which answers
/// with an `error` frame); anything larger is cut by the WebSocket layer.
fn ws_cap(state: &AppState) -> usize {
    state
        .config
        .limits
        .max_message_bytes
        .saturating_mul(2)
        .max(1 << 16)
}

/// `GET /ws/customer/{id}?token=…[&tabs=1][&z=deflate-raw]`.
#[derive(Debug, Deserialize)]
pub struct CustomerQuery {
    #[serde(default)]
    token: String,
    /// v1.3 snippet: this connection is one of the customer's tabs (it does
    /// not replace the others; the server says which tab is in front).
    #[serde(default)]
    tabs: Option<String>,
    /// v1.4: the compressions the snippet can write
    /// (`deflate-raw`): it may send large frames as binary raw DEFLATE.
    #[serde(default)]
    z: Option<String>,
}

/// `GET /ws/agent/{id}[?leave=1]`, `GET /ws/agent/{id}?z=deflate-raw`.
#[derive(Debug, Deserialize)]
pub struct AgentQuery {
    /// v1.3: end the session this agent left (`agent_left`) instead of
    /// joining it.
    #[serde(default)]
    leave: Option<String>,
    /// v1.4: the compressions the viewer can read (`deflate-raw`): its large
    /// frames are sent as binary raw DEFLATE.
    #[serde(default)]
    z: Option<String>,
}

/// The socket read buffer: tungstenite's default (128 KiB) is zero-filled
/// at every read and held per connection; most frames are small (pointer,
/// one keystroke) and big ones are read in several chunks. The write side
/// writes each frame at once (no coalescing buffer): the outbox already
/// batches what a slow reader has not taken.
const READ_BUFFER: usize = 8 * 1024;

/// A query flag: present and not `0`/`false`.
fn flag(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|v| v != "0" && v != "false")
}

pub async fn customer(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<CustomerQuery>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // The demo pages are served by this server itself, at whatever host name
    // it was reached by: same-origin is allowed for the demo site.
    let same_origin = origin
        .as_deref()
        .and_then(|o| normalize_origin(o).ok())
        .is_some_and(|o| own_origins(&state.config, &headers).contains(&o));
    let origin = if same_origin && state.registry.site_key_of(&id).as_deref() == Some(DEMO_SITE) {
        None
    } else {
        origin
    };
    let registry = state.registry.clone();
    let mut cfg = relay_config(&state);
    cfg.compression = relay::Compression::from_query(q.z.as_deref());
    let cap = ws_cap(&state);
    let idle = state.config.server.ws_idle_timeout;
    ws.max_message_size(cap)
        .max_frame_size(cap)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .on_upgrade(move |socket| {
            let farewell =
                farewell(|code, message| crate::protocol::ToCustomer::Error { code, message });
            let socket = IdleTimeout::new(socket, idle, farewell);
            let tabs = flag(&q.tabs);
            relay::run_customer(registry, cfg, socket, id, q.token, origin, tabs)
        })
}

/// A cookie-authenticated socket must come from our own pages (no
/// cross-site WebSocket hijacking).
fn check_own_origin(state: &AppState, headers: &HeaderMap) -> Result<(), WebError> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let origin = normalize_origin(origin).map_err(|e| WebError::Forbidden(e.to_string()))?;
    if own_origins(&state.config, headers).contains(&origin) {
        Ok(())
    } else {
        Err(WebError::Forbidden(format!(
            "origin {origin} may not open agent sockets"
        )))
    }
}

/// Refuse an upgraded socket with one `error` frame, then close it.
async fn refuse(mut socket: WebSocket, code: &str, message: String) {
    let frame = serde_json::to_string(&crate::protocol::ToAgent::Error {
        code: code.into(),
        message,
    })
    .unwrap_or_default();
    let _ = socket.send(Message::Text(frame.into())).await;
    let _ = socket.send(Message::Close(None)).await;
}

/// `GET /ws/agent/{id}` (signed-in agent or admin, or `Authorization: Bearer`);
/// with `?leave=1` the agent ends the session they left instead of joining.
/// Joins of ids that are not live count as misses for the ID-guessing
/// back-off (per agent and per address); while in back-off every join is
/// refused with `error {code: "throttled"}`.
pub async fn agent(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<AgentQuery>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    session: Session,
    ws: WebSocketUpgrade,
) -> Result<Response, WebError> {
    let (user, kind, credential) =
        current_user(&state, &headers, &session)
            .await?
            .ok_or_else(|| {
                WebError::Unauthorized("sign in or send `Authorization: Bearer TOKEN`".into())
            })?;
    if kind == AuthKind::Cookie {
        check_own_origin(&state, &headers)?;
    }
    let address = super::throttle::client_key(&state.config, &headers, &extensions);
    if let Err(wait) = super::throttle::check_id_guessing(&state.throttles, user.id, &address) {
        let secs = super::throttle::wait_secs(wait);
        let message = format!("too many joins of unknown sessions; try again in {secs} second(s)");
        return Ok(ws.on_upgrade(move |socket| refuse(socket, "throttled", message)));
    }
    if !state.registry.is_live(&id) {
        super::throttle::id_miss(&state, &user, &address).await;
    }
    let registry = state.registry.clone();
    let mut cfg = relay_config(&state);
    cfg.compression = relay::Compression::from_query(q.z.as_deref());
    let cap = ws_cap(&state);
    let identity = AgentIdentity {
        user_id: user.id,
        name: user.name,
        credential,
    };
    if flag(&q.leave) {
        return Ok(ws.on_upgrade(move |socket| relay::leave_agent(registry, socket, id, identity)));
    }
    let idle = state.config.server.ws_idle_timeout;
    Ok(ws
        .max_message_size(cap)
        .max_frame_size(cap)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .on_upgrade(move |socket| {
            let farewell =
                farewell(|code, message| crate::protocol::ToAgent::Error { code, message });
            let socket = IdleTimeout::new(socket, idle, farewell);
            relay::run_agent(registry, cfg, socket, id, identity)
        }))
}
