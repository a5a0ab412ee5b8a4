//! Wire protocol v1 (v1.2 node kinds included): the JSON messages exchanged over the customer and agent
//! WebSockets (design §6), as serde types, plus the structural limits every
//! decoded message is checked against.
//!
//! This module owns the *shape* of messages only. It does not know about
//! sessions, rules or sockets; decoding a frame here never touches state.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A node id assigned by the snippet, unique within one page load.
pub type NodeId = u64;

/// One serialized DOM node. `type` is the tag field on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Node {
    /// The document root; its children are the doctype and the `<html>` element.
    Document {
        id: NodeId,
        #[serde(default)]
        children: Vec<Node>,
    },
    /// `<!DOCTYPE name>`.
    Doctype {
        id: NodeId,
        #[serde(default)]
        name: String,
    },
    /// An element with its attributes, children and (for form controls) live state.
    Element {
        id: NodeId,
        tag: String,
        /// `"svg"` or `"math"` for foreign elements; absent for HTML.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ns: Option<String>,
        #[serde(default)]
        attrs: BTreeMap<String, String>,
        #[serde(default)]
        children: Vec<Node>,
        /// Live `value` of an input/textarea/select (may differ from the attribute).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<String>,
        /// Live checked state of a checkbox/radio.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        checked: Option<bool>,
    },
    /// A text node.
    Text { id: NodeId, text: String },
    /// A comment node.
    Comment { id: NodeId, text: String },
    /// v1.2: the open shadow root of its parent element (the host), sent
    /// as the host's first child. Rules see through it: its content
    /// inherits the host's restrictions and selectors' ancestor walks pass
    /// from its top-level elements to the host.
    Shadow {
        id: NodeId,
        #[serde(default)]
        children: Vec<Node>,
    },
    /// v1.2: CSS rules the page built through the CSSOM (`insertRule`,
    /// `replaceSync`, `adoptedStyleSheets`). Under a `<style>` element: the
    /// rules of that element's sheet (they replace its text's rules). Under
    /// a document or a shadow root: one adopted stylesheet, in child order.
    Sheet { id: NodeId, css: String },
    /// v1.2: content the snippet cannot capture (a cross-origin frame, a
    /// closed shadow root, a canvas), as a child of the element it stands
    /// for: the viewer draws a neutral, labelled box of the element's
    /// border-box size `w` × `h` (CSS px).
    Placeholder {
        id: NodeId,
        kind: PlaceholderKind,
        #[serde(default)]
        w: f64,
        #[serde(default)]
        h: f64,
    },
}

/// What a [`Node::Placeholder`] stands for (v1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlaceholderKind {
    /// A frame whose document the snippet cannot read (another origin).
    Frame,
    /// A closed shadow root.
    Shadow,
    /// A `<canvas>` (its pixels are not captured).
    Canvas,
}

/// Largest placeholder side accepted, in CSS px (larger values are clamped).
pub const MAX_PLACEHOLDER_PX: f64 = 100_000.0;

impl PlaceholderKind {
    /// The placeholder's size made safe: finite, 0 ≤ side ≤ [`MAX_PLACEHOLDER_PX`].
    pub fn clamp(v: f64) -> f64 {
        if v.is_finite() {
            v.clamp(0.0, MAX_PLACEHOLDER_PX)
        } else {
            0.0
        }
    }
}

impl Node {
    /// The node's id, whatever its kind.
    pub fn id(&self) -> NodeId {
        match self {
            Node::Document { id, .. }
            | Node::Doctype { id, .. }
            | Node::Element { id, .. }
            | Node::Text { id, .. }
            | Node::Comment { id, .. }
            | Node::Shadow { id, .. }
            | Node::Sheet { id, .. }
            | Node::Placeholder { id, .. } => *id,
        }
    }

    /// Children of a document, element or shadow root; empty for other kinds.
    pub fn children(&self) -> &[Node] {
        match self {
            Node::Document { children, .. }
            | Node::Element { children, .. }
            | Node::Shadow { children, .. } => children,
            _ => &[],
        }
    }

    /// Mutable children of a document, element or shadow root (`None` for
    /// other kinds).
    pub fn children_mut(&mut self) -> Option<&mut Vec<Node>> {
        match self {
            Node::Document { children, .. }
            | Node::Element { children, .. }
            | Node::Shadow { children, .. } => Some(children),
            _ => None,
        }
    }
}

/// A viewport size in CSS pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Viewport {
    pub w: f64,
    pub h: f64,
}

/// A document epoch: chosen by the snippet for every page load and every
/// resync snapshot; every `mutations` frame names the epoch it applies to.
pub type Epoch = u32;

/// A full document snapshot (customer → server, and rewritten server → agent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The document epoch (customer → server only; 0 when an old snippet
    /// sends none). Never sent to the agent.
    #[serde(default, skip_serializing)]
    pub epoch: Epoch,
    pub url: String,
    #[serde(default)]
    pub title: String,
    pub viewport: Viewport,
    pub root: Node,
}

/// One mutation op; a batch is applied in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Op {
    /// Insert `node` (with its subtree) under `parent`, before `before` (or last).
    Insert {
        parent: NodeId,
        before: Option<NodeId>,
        node: Node,
    },
    /// Remove a node and its subtree.
    Remove { id: NodeId },
    /// Set (`Some`) or remove (`None`) an attribute.
    Attr {
        id: NodeId,
        name: String,
        value: Option<String>,
    },
    /// Replace the data of a text or comment node.
    Text { id: NodeId, text: String },
    /// Live form state of a control changed (typing, selection, checkbox).
    Value {
        id: NodeId,
        value: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        checked: Option<bool>,
    },
}

/// Session state as shown to both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionState {
    Waiting,
    Active,
    Ended,
}

/// Agent control mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Both sides see each other's pointer; the agent cannot act.
    Pointer,
    /// The customer approved: agent clicks, typing and scrolls are performed.
    Write,
}

/// Messages the customer's snippet sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "lowercase")]
pub enum CustomerMsg {
    Snapshot(Snapshot),
    Mutations {
        /// The epoch of the snapshot these ops apply to.
        #[serde(default)]
        epoch: Epoch,
        ops: Vec<Op>,
    },
    /// Same document, new URL and/or title (SPA navigation, title change).
    Navigate {
        #[serde(default)]
        epoch: Epoch,
        url: String,
        #[serde(default)]
        title: String,
    },
    Pointer {
        x: f64,
        y: f64,
    },
    Scroll {
        #[serde(default)]
        id: Option<NodeId>,
        x: f64,
        y: f64,
    },
    Viewport {
        w: f64,
        h: f64,
    },
    /// Answer to a write-mode request (`true` approves) or a revocation (`false`).
    Control {
        grant: bool,
    },
    /// v1.3: this tab is the one the customer looks at (it became visible
    /// or got focus): the agent is shown its document from its next snapshot.
    Front {},
    End {},
}

/// Messages the agent viewer sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "lowercase")]
pub enum AgentMsg {
    Pointer {
        x: f64,
        y: f64,
    },
    Control {
        request: bool,
    },
    Click {
        id: NodeId,
    },
    Input {
        id: NodeId,
        value: String,
    },
    Key {
        id: NodeId,
        key: String,
    },
    Scroll {
        #[serde(default)]
        id: Option<NodeId>,
        x: f64,
        y: f64,
    },
    /// v1.3: the viewer is closing (tab closed, navigated away, reloading):
    /// the agent is away from now on, without waiting for the socket to close.
    Away {},
    End {},
}

/// The selectors in force for the customer's current page, so the snippet can
/// show which fields are hidden from the agent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RulesCue {
    pub mask: Vec<String>,
    pub block: Vec<String>,
    pub disable: Vec<String>,
}

/// Messages the server sends to the agent viewer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "lowercase")]
pub enum ToAgent {
    Session {
        id: String,
        state: SessionState,
        mode: Mode,
    },
    Snapshot(Snapshot),
    Mutations {
        ops: Vec<Op>,
    },
    /// The customer's page URL/title changed without a new document
    /// (sanitised like the snapshot's).
    Page {
        url: String,
        title: String,
    },
    /// The server could not apply a customer frame: freeze the replica
    /// until the next `snapshot`.
    Resync {
        reason: String,
    },
    Pointer {
        x: f64,
        y: f64,
    },
    Scroll {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<NodeId>,
        x: f64,
        y: f64,
    },
    Viewport {
        w: f64,
        h: f64,
    },
    Mode {
        mode: Mode,
    },
    Denied {
        action: String,
        reason: String,
    },
    /// The customer's page is gone for now (navigating, reconnecting) or back.
    Presence {
        customer: Presence,
    },
    Ended {
        reason: String,
    },
    Error {
        code: String,
        message: String,
    },
}

/// Whether the other side is connected right now (sessions survive short gaps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Presence {
    Present,
    Away,
}

/// Messages the server sends to the customer's snippet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "lowercase")]
pub enum ToCustomer {
    Session {
        id: String,
        state: SessionState,
        mode: Mode,
    },
    Agent {
        name: String,
    },
    Pointer {
        x: f64,
        y: f64,
    },
    Control {
        request: bool,
    },
    Mode {
        mode: Mode,
    },
    Click {
        id: NodeId,
    },
    Input {
        id: NodeId,
        value: String,
    },
    Key {
        id: NodeId,
        key: String,
    },
    Scroll {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<NodeId>,
        x: f64,
        y: f64,
    },
    Rules(RulesCue),
    /// The server refused or could not apply a frame: send a fresh full
    /// snapshot with a new epoch.
    Resync {
        reason: String,
    },
    /// The agent's viewer closed or navigated away (grace timeout running), or came back.
    Presence {
        agent: Presence,
    },
    /// v1.3, only to tabs that connected with `tabs=1`: whether this tab is
    /// the one shown to the agent (`true`: send a fresh snapshot now; `false`:
    /// send no document, pointer, scroll or viewport frames).
    Tab {
        front: bool,
    },
    Ended {
        reason: String,
    },
    Error {
        code: String,
        message: String,
    },
}

/// Structural limits checked on every decoded customer message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Largest accepted WebSocket text frame, in bytes.
    pub max_message_bytes: usize,
    /// Most nodes in one document (mirror) or one batch.
    pub max_nodes: usize,
    /// Deepest nesting of a node tree.
    pub max_depth: usize,
    /// Most ops in one mutation batch.
    pub max_ops: usize,
    /// Most messages per second from one side of a session.
    pub max_messages_per_sec: u32,
    /// Longest time, in milliseconds, the rewrite of one customer frame may
    /// take: over it the session resyncs (and ends `overloaded` if even the
    /// fresh snapshot is over).
    #[serde(default = "default_rewrite_budget_ms")]
    pub rewrite_budget_ms: u64,
    /// Memory budget of one session's mirror (estimated bytes): a snapshot
    /// or batch that would take the mirror over it is refused (the session
    /// resyncs; the customer is told the page is too large).
    #[serde(default = "default_max_mirror_bytes")]
    pub max_mirror_bytes: usize,
}

fn default_max_mirror_bytes() -> usize {
    64 * 1024 * 1024
}

fn default_rewrite_budget_ms() -> u64 {
    2000
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 8 * 1024 * 1024,
            max_nodes: 200_000,
            max_depth: 256,
            max_ops: 10_000,
            max_messages_per_sec: 200,
            rewrite_budget_ms: default_rewrite_budget_ms(),
            max_mirror_bytes: default_max_mirror_bytes(),
        }
    }
}

/// Why a decoded message breaks the protocol's structural limits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The frame is not valid JSON for any known message.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// The frame is larger than `max_message_bytes`.
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    /// A tree nests deeper than `max_depth`.
    #[error("node tree deeper than the limit of {0}")]
    TooDeep(usize),
    /// A tree or batch has more nodes than `max_nodes`.
    #[error("more than {0} nodes in one message")]
    TooManyNodes(usize),
    /// A batch has more ops than `max_ops`.
    #[error("more than {0} ops in one batch")]
    TooManyOps(usize),
    /// A compressed (binary) frame inflates to more than `max_message_bytes`
    /// (inflation stops at the limit: nothing larger is ever allocated).
    #[error("compressed message inflates to more than the limit of {limit} bytes")]
    InflatesTooLarge { limit: usize },
}

impl ProtocolError {
    /// A short machine-readable code for the `error` frame.
    pub fn code(&self) -> &'static str {
        match self {
            ProtocolError::Malformed(_) => "malformed",
            ProtocolError::TooLarge { .. } | ProtocolError::InflatesTooLarge { .. } => "too_large",
            ProtocolError::TooDeep(_) => "too_deep",
            ProtocolError::TooManyNodes(_) => "too_many_nodes",
            ProtocolError::TooManyOps(_) => "too_many_ops",
        }
    }
}

/// The one compression the protocol knows (v1.4): raw DEFLATE (RFC 1951, no
/// zlib or gzip header), the browsers' `CompressionStream('deflate-raw')`.
/// A socket opened with `z=deflate-raw` in its query may send binary frames
/// holding one compressed JSON message each; an agent socket that asked for
/// it is sent its large frames that way.
pub const DEFLATE_RAW: &str = "deflate-raw";

/// Frames of at least this many bytes of JSON are sent compressed to a peer
/// that negotiated [`DEFLATE_RAW`] (the snippet uses the same threshold).
pub const COMPRESS_MIN_BYTES: usize = 8 * 1024;

/// Whether the value of a socket's `z` query parameter (a comma-separated
/// list) names [`DEFLATE_RAW`].
pub fn accepts_deflate_raw(z: &str) -> bool {
    z.split(',').any(|v| v.trim() == DEFLATE_RAW)
}

/// Inflate one binary (raw DEFLATE) frame into its JSON text, never
/// producing (or allocating) more than `max_message_bytes` (+1 byte of
/// look-ahead): a decompression bomb stops at the limit with
/// [`ProtocolError::InflatesTooLarge`]. Broken, truncated or non-UTF-8
/// input is [`ProtocolError::Malformed`]. Bytes after the end of the
/// DEFLATE stream are ignored.
pub fn inflate_frame(data: &[u8], limits: &Limits) -> Result<String, ProtocolError> {
    use flate2::{Decompress, FlushDecompress, Status};
    let cap = limits.max_message_bytes;
    let bad = |what: &str| ProtocolError::Malformed(format!("compressed frame: {what}"));
    let mut d = Decompress::new(false);
    // Start near the usual ratio of compressed JSON and grow by doubling,
    // never past the cap.
    let first = data.len().saturating_mul(8).max(4096).min(cap.max(1));
    let mut out: Vec<u8> = Vec::with_capacity(first);
    loop {
        if out.len() == out.capacity() {
            if out.len() >= cap {
                // Full at the cap: the frame fits only if the stream ends here.
                let mut probe = [0u8; 1];
                let input = data.get(d.total_in() as usize..).unwrap_or_default();
                let before = d.total_out();
                let status = d
                    .decompress(input, &mut probe, FlushDecompress::Finish)
                    .map_err(|e| bad(&e.to_string()))?;
                if d.total_out() > before {
                    return Err(ProtocolError::InflatesTooLarge { limit: cap });
                }
                if status == Status::StreamEnd {
                    break;
                }
                return Err(bad("truncated"));
            }
            let grow = out.len().max(4096).min(cap - out.len());
            out.reserve_exact(grow);
        }
        let input = data.get(d.total_in() as usize..).unwrap_or_default();
        let (in_before, out_before) = (d.total_in(), d.total_out());
        let status = d
            .decompress_vec(input, &mut out, FlushDecompress::None)
            .map_err(|e| bad(&e.to_string()))?;
        if status == Status::StreamEnd {
            break;
        }
        if d.total_in() == in_before && d.total_out() == out_before && out.len() < out.capacity() {
            // No progress with room left: the input ended mid-stream.
            return Err(bad("truncated"));
        }
    }
    String::from_utf8(out).map_err(|_| bad("not UTF-8"))
}

/// Compress one JSON frame as raw DEFLATE (the inverse of
/// [`inflate_frame`]).
pub fn deflate_frame(text: &str) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::DeflateEncoder::new(
        Vec::with_capacity(text.len() / 6 + 64),
        flate2::Compression::new(DEFLATE_LEVEL),
    );
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(text.as_bytes());
    enc.finish().unwrap_or_default()
}

/// The server's compression level for outbound frames (1 fastest … 9 best).
const DEFLATE_LEVEL: u32 = 6;

/// Decode one text frame with size and structure checks.
pub fn decode<T: serde::de::DeserializeOwned>(
    text: &str,
    limits: &Limits,
) -> Result<T, ProtocolError> {
    if text.len() > limits.max_message_bytes {
        return Err(ProtocolError::TooLarge {
            size: text.len(),
            limit: limits.max_message_bytes,
        });
    }
    // serde_json's own recursion limit (128) would reject deep trees with an
    // opaque message; disable it and check the depth ourselves on the raw
    // bytes before building values.
    check_json_depth(text, limits.max_depth.saturating_mul(2).saturating_add(8))?;
    let mut de = serde_json::Deserializer::from_str(text);
    de.disable_recursion_limit();
    T::deserialize(&mut de).map_err(|e| ProtocolError::Malformed(e.to_string()))
}

/// Reject JSON nesting deeper than `max` without allocating, so a hostile
/// frame cannot overflow the stack during deserialisation.
fn check_json_depth(text: &str, max: usize) -> Result<(), ProtocolError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for b in text.bytes() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return Err(ProtocolError::TooDeep(max / 2));
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Check a node tree against the depth and node-count limits; returns the node count.
pub fn check_tree(root: &Node, limits: &Limits) -> Result<usize, ProtocolError> {
    let mut count = 0usize;
    let mut stack: Vec<(&Node, usize)> = vec![(root, 1)];
    while let Some((node, depth)) = stack.pop() {
        if depth > limits.max_depth {
            return Err(ProtocolError::TooDeep(limits.max_depth));
        }
        count += 1;
        if count > limits.max_nodes {
            return Err(ProtocolError::TooManyNodes(limits.max_nodes));
        }
        for child in node.children() {
            stack.push((child, depth + 1));
        }
    }
    Ok(count)
}

/// The number of nodes in a tree (iterative).
pub fn count_nodes(root: &Node) -> usize {
    let mut count = 0usize;
    let mut stack = vec![root];
    while let Some(n) = stack.pop() {
        count += 1;
        stack.extend(n.children());
    }
    count
}

/// The number of nodes an op inserts (0 for other ops).
pub fn op_nodes(op: &Op) -> usize {
    match op {
        Op::Insert { node, .. } => count_nodes(node),
        _ => 0,
    }
}

/// Check a customer message against the limits (trees and batch sizes).
pub fn check_customer_msg(msg: &CustomerMsg, limits: &Limits) -> Result<(), ProtocolError> {
    match msg {
        CustomerMsg::Snapshot(s) => check_tree(&s.root, limits).map(|_| ()),
        CustomerMsg::Mutations { ops, .. } => {
            if ops.len() > limits.max_ops {
                return Err(ProtocolError::TooManyOps(limits.max_ops));
            }
            let mut total = 0usize;
            for op in ops {
                if let Op::Insert { node, .. } = op {
                    total += check_tree(node, limits)?;
                    if total > limits.max_nodes {
                        return Err(ProtocolError::TooManyNodes(limits.max_nodes));
                    }
                }
            }
            Ok(())
        }
        CustomerMsg::Navigate { url, title, .. } => {
            if url.len() > MAX_URL_BYTES || title.len() > MAX_URL_BYTES {
                return Err(ProtocolError::Malformed(format!(
                    "url and title must be at most {MAX_URL_BYTES} bytes"
                )));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Longest URL or title accepted in a `navigate` frame.
pub const MAX_URL_BYTES: usize = 8192;

/// Whether a customer frame that was refused before decoding (rate limit,
/// malformed) may have been a document frame (`snapshot`, `mutations`,
/// `navigate`): only frames shown to be pointer, scroll or viewport updates
/// (or control/end, which carry no document) are not.
pub fn may_be_document_frame(text: &str) -> bool {
    #[derive(Deserialize)]
    struct Tag<'a> {
        #[serde(borrow)]
        t: std::borrow::Cow<'a, str>,
    }
    // A look at the tag only; the rest is skipped under serde_json's own
    // recursion limit (a frame too deep to skip counts as a document frame).
    match serde_json::from_str::<Tag>(text) {
        Ok(tag) => !matches!(
            tag.t.as_ref(),
            "pointer" | "scroll" | "viewport" | "control" | "front" | "end"
        ),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inflate_round_trips_and_stops_at_the_cap() {
        let limits = Limits {
            max_message_bytes: 64 * 1024,
            ..Limits::default()
        };
        let text = format!(r#"{{"t":"snapshot","x":"{}"}}"#, "ab".repeat(20_000));
        let z = deflate_frame(&text);
        assert!(z.len() < text.len() / 10);
        assert_eq!(inflate_frame(&z, &limits).as_deref(), Ok(text.as_str()));
        // Exactly at the cap is fine; one byte over is not.
        let at = "x".repeat(64 * 1024);
        assert_eq!(inflate_frame(&deflate_frame(&at), &limits), Ok(at));
        let over = "x".repeat(64 * 1024 + 1);
        assert_eq!(
            inflate_frame(&deflate_frame(&over), &limits),
            Err(ProtocolError::InflatesTooLarge { limit: 64 * 1024 })
        );
        // Truncated, garbage and non-UTF-8 input are malformed.
        assert_eq!(
            inflate_frame(&z[..z.len() / 2], &limits).map_err(|e| e.code()),
            Err("malformed")
        );
        assert_eq!(
            inflate_frame(&[0xff; 16], &limits).map_err(|e| e.code()),
            Err("malformed")
        );
        let bytes = {
            use std::io::Write;
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&[0xc3, 0x28]).unwrap();
            e.finish().unwrap()
        };
        assert_eq!(
            inflate_frame(&bytes, &limits).map_err(|e| e.code()),
            Err("malformed")
        );
        assert!(accepts_deflate_raw("gzip, deflate-raw"));
        assert!(!accepts_deflate_raw("deflate"));
    }

    #[test]
    fn decodes_the_design_examples() {
        let l = Limits::default();
        let m: CustomerMsg = decode(
            r#"{"t":"mutations","ops":[{"op":"insert","parent":1,"before":null,"node":{"id":4,"type":"text","text":"hi"}},{"op":"attr","id":3,"name":"class","value":null},{"op":"value","id":3,"value":"x","checked":true}]}"#,
            &l,
        )
        .unwrap();
        match m {
            CustomerMsg::Mutations { ops, .. } => assert_eq!(ops.len(), 3),
            other => panic!("unexpected {other:?}"),
        }
        let a: AgentMsg = decode(r#"{"t":"click","id":7}"#, &l).unwrap();
        assert_eq!(a, AgentMsg::Click { id: 7 });
    }

    #[test]
    fn rejects_unknown_type_and_deep_trees() {
        let l = Limits {
            max_depth: 4,
            ..Limits::default()
        };
        assert!(matches!(
            decode::<AgentMsg>(r#"{"t":"fly"}"#, &l),
            Err(ProtocolError::Malformed(_))
        ));
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert!(matches!(
            decode::<AgentMsg>(&deep, &l),
            Err(ProtocolError::TooDeep(_))
        ));
    }

    #[test]
    fn serialises_with_type_tags() {
        let s = serde_json::to_string(&ToAgent::Mode { mode: Mode::Write }).unwrap();
        assert_eq!(s, r#"{"t":"mode","mode":"write"}"#);
    }
}
