//! Frame compression (protocol v1.4, `z=deflate-raw`) over real sockets: a
//! compressed snapshot is taken exactly like the same snapshot as text, a
//! decompression bomb gets `error {code:"too_large"}` and a resync without
//! harming other sessions, clients that did not negotiate see no change, and
//! the compressed frames a negotiated agent gets inflate to the text frames a
//! plain agent gets.

use crate::common::{sample_snapshot, spawn_app, TestApp, SOON};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// One frame as it arrived.
#[derive(Debug, Clone)]
struct Frame {
    json: Value,
    binary: bool,
}

/// A socket client that sees binary frames (inflating them) and can send
/// compressed ones.
struct ZClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    seen: Vec<Frame>,
}

fn deflate(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).expect("deflate");
    e.finish().expect("deflate")
}

fn inflate(bytes: &[u8]) -> String {
    let mut s = String::new();
    flate2::read::DeflateDecoder::new(bytes)
        .read_to_string(&mut s)
        .expect("the server sent valid raw DEFLATE");
    s
}

impl ZClient {
    async fn connect(url: &str, bearer: Option<&str>) -> ZClient {
        let mut req = url.into_client_request().expect("request");
        if let Some(b) = bearer {
            req.headers_mut().insert(
                "authorization",
                format!("Bearer {b}").parse().expect("header"),
            );
        }
        let (ws, _) = tokio_tungstenite::connect_async(req).await.expect("socket");
        ZClient {
            ws,
            seen: Vec::new(),
        }
    }

    async fn customer(app: &TestApp, id: &str, token: &str, z: bool) -> ZClient {
        let z = if z { "&z=deflate-raw" } else { "" };
        let url = format!("{}/ws/customer/{id}?token={token}{z}", app.ws_base);
        ZClient::connect(&url, None).await
    }

    async fn agent(app: &TestApp, id: &str, bearer: &str, z: bool) -> ZClient {
        let z = if z { "?z=deflate-raw" } else { "" };
        let url = format!("{}/ws/agent/{id}{z}", app.ws_base);
        ZClient::connect(&url, Some(bearer)).await
    }

    async fn send_text(&mut self, v: &Value) {
        let msg = Message::Text(v.to_string().into());
        self.ws.send(msg).await.expect("send");
    }

    async fn send_packed(&mut self, v: &Value) {
        let z = deflate(v.to_string().as_bytes());
        self.send_raw(z).await;
    }

    async fn send_raw(&mut self, b: Vec<u8>) {
        self.ws.send(Message::Binary(b.into())).await.expect("send");
    }

    /// The next JSON frame (text or inflated binary); `None` once closed.
    async fn recv(&mut self, within: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no frame within {within:?}; seen: {:#?}", self.seen));
            let frame = match next {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return None,
                Some(Ok(Message::Text(t))) => Frame {
                    json: serde_json::from_str(t.as_str()).expect("JSON"),
                    binary: false,
                },
                Some(Ok(Message::Binary(b))) => Frame {
                    json: serde_json::from_str(&inflate(&b)).expect("inflated JSON"),
                    binary: true,
                },
                Some(Ok(_)) => continue,
            };
            self.seen.push(frame.clone());
            return Some(frame);
        }
    }

    /// Read until a frame of type `t` (within [`SOON`]).
    async fn recv_type(&mut self, t: &str) -> Frame {
        let deadline = tokio::time::Instant::now() + SOON;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.recv(left).await {
                Some(f) if f.json["t"] == t => return f,
                Some(_) => continue,
                None => panic!("closed before a {t} frame; seen: {:#?}", self.seen),
            }
        }
    }
}

/// A checkout page large enough (well over 8 KiB of JSON) to be compressed:
/// `rows` list items, a password field with a value and a card field.
fn big_snapshot(rows: u64, marker: &str) -> Value {
    let items: Vec<Value> = (0..rows)
        .map(|i| {
            json!({"id": 100 + 2 * i, "type": "element", "tag": "li",
                "attrs": {"class": "item row", "data-sku": format!("SKU-{i:05}")},
                "children": [{"id": 101 + 2 * i, "type": "text", "text": format!("{marker} item number {i}")}]})
        })
        .collect();
    json!({
        "t": "snapshot",
        "epoch": 1,
        "url": "http://shop.test/checkout",
        "title": "Checkout",
        "viewport": {"w": 1280.0, "h": 800.0},
        "root": {"id": 1, "type": "document", "children": [
            {"id": 2, "type": "doctype", "name": "html"},
            {"id": 3, "type": "element", "tag": "html", "children": [
                {"id": 4, "type": "element", "tag": "body", "children": [
                    {"id": 5, "type": "element", "tag": "ul", "children": items},
                    {"id": 7, "type": "element", "tag": "input", "attrs": {"type": "text", "name": "q"}, "value": "shoes"},
                    {"id": 8, "type": "element", "tag": "input", "attrs": {"type": "password"}, "value": "hunter2-secret"}
                ]}
            ]}
        ]}
    })
}

/// A batch of `n` text ops on the list items of [`big_snapshot`].
fn big_batch(n: u64, marker: &str) -> Value {
    let ops: Vec<Value> = (0..n)
        .map(|i| json!({"op": "text", "id": 101 + 2 * i, "text": format!("{marker} changed {i}")}))
        .collect();
    json!({"t": "mutations", "epoch": 1, "ops": ops})
}

/// A session with the customer connected (`z` chosen) and past `rules`.
async fn customer_session(app: &TestApp, z: bool) -> (String, ZClient) {
    let (id, token) = app.create_session().await;
    let mut c = ZClient::customer(app, &id, &token, z).await;
    c.recv_type("rules").await;
    (id, c)
}

#[tokio::test]
async fn compressed_snapshot_is_taken_like_the_same_snapshot_as_text() {
    let app = spawn_app().await;
    let snap = big_snapshot(400, "plain");
    assert!(snap.to_string().len() > 16 * 1024);
    // Session A: the customer negotiated and sends the snapshot compressed;
    // session B: an old snippet sends it as text. Both agents are plain.
    let (id_a, mut ca) = customer_session(&app, true).await;
    let (id_b, mut cb) = customer_session(&app, false).await;
    ca.send_packed(&snap).await;
    cb.send_text(&snap).await;
    ca.recv_type("rules").await;
    cb.recv_type("rules").await;
    let mut aa = ZClient::agent(&app, &id_a, &app.agent_token, false).await;
    let mut ab = ZClient::agent(&app, &id_b, &app.agent2_token, false).await;
    let sa = aa.recv_type("snapshot").await;
    let sb = ab.recv_type("snapshot").await;
    assert!(!sa.binary && !sb.binary, "plain agents get text");
    assert_eq!(sa.json, sb.json);
    let text = sa.json.to_string();
    assert!(text.contains("plain item number 399"));
    assert!(
        !text.contains("hunter2-secret"),
        "the password stays masked"
    );
    // A compressed batch is applied like a text one, and small frames after
    // it (text) keep their order.
    let batch = big_batch(300, "next");
    assert!(batch.to_string().len() > 8 * 1024);
    ca.send_packed(&batch).await;
    ca.send_text(&json!({"t": "pointer", "x": 3.0, "y": 4.0}))
        .await;
    cb.send_text(&batch).await;
    let ma = aa.recv_type("mutations").await;
    let mb = ab.recv_type("mutations").await;
    assert_eq!(ma.json, mb.json);
    assert!(ma.json.to_string().contains("next changed 299"), "{ma:?}");
    assert_eq!(aa.recv_type("pointer").await.json["x"], 3.0);
    assert!(
        aa.seen.iter().all(|f| f.json["t"] != "resync"),
        "{:?}",
        aa.seen
    );
}

#[tokio::test]
async fn decompression_bomb_gets_an_error_and_a_resync_and_others_go_on() {
    let app = spawn_app().await;
    // A bystander session, active.
    let (id_o, mut co) = customer_session(&app, false).await;
    co.send_text(&sample_snapshot("bystander")).await;
    co.recv_type("rules").await;
    let mut ao = ZClient::agent(&app, &id_o, &app.agent2_token, false).await;
    ao.recv_type("snapshot").await;

    let (id, mut c) = customer_session(&app, true).await;
    c.send_packed(&big_snapshot(100, "first")).await;
    c.recv_type("rules").await;
    let mut a = ZClient::agent(&app, &id, &app.agent_token, true).await;
    a.recv_type("snapshot").await;

    // 100 MB of zeros, deflated: far over the 8 MiB frame limit once inflated.
    let bomb = {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..100 {
            e.write_all(&zeros).expect("deflate");
        }
        e.finish().expect("deflate")
    };
    assert!(bomb.len() < 1 << 20, "{} bytes on the wire", bomb.len());
    c.send_raw(bomb).await;
    let e = c.recv_type("error").await;
    assert_eq!(e.json["code"], "too_large");
    assert!(
        e.json["message"]
            .as_str()
            .unwrap_or("")
            .contains("inflates"),
        "{e:?}"
    );
    c.recv_type("resync").await;
    a.recv_type("resync").await;

    // Garbage that is not DEFLATE at all: `malformed`, and fail closed too.
    c.send_raw(vec![0xff; 64]).await;
    assert_eq!(c.recv_type("error").await.json["code"], "malformed");

    // The bystander session goes on, untouched.
    co.send_text(&json!({"t": "mutations", "epoch": 0, "ops": [{"op": "text", "id": 6, "text": "still here"}]}))
        .await;
    let m = ao.recv_type("mutations").await;
    assert_eq!(m.json["ops"][0]["text"], "still here");
    assert!(
        ao.seen.iter().all(|f| f.json["t"] != "resync"),
        "{:?}",
        ao.seen
    );

    // The bombed session recovers with a fresh (compressed) snapshot on the
    // same socket.
    let mut fresh = big_snapshot(100, "fresh");
    fresh["epoch"] = json!(2);
    c.send_packed(&fresh).await;
    let s = a.recv_type("snapshot").await;
    assert!(
        s.binary,
        "a negotiated agent gets the large snapshot compressed"
    );
    assert!(s.json.to_string().contains("fresh item number 99"));
    assert!(app.state.registry.info(&id).is_some());
}

#[tokio::test]
async fn clients_that_did_not_negotiate_are_unchanged() {
    let app = spawn_app().await;
    let (id, mut c) = customer_session(&app, false).await;
    // A binary frame from an old snippet: `error {code:"binary"}` and a
    // resync, exactly as before compression existed.
    c.send_packed(&big_snapshot(50, "packed")).await;
    assert_eq!(c.recv_type("error").await.json["code"], "binary");
    c.recv_type("resync").await;
    c.send_text(&big_snapshot(400, "text")).await;
    c.recv_type("rules").await;
    let mut a = ZClient::agent(&app, &id, &app.agent_token, false).await;
    let s = a.recv_type("snapshot").await;
    assert!(s.json.to_string().contains("text item number 399"));
    c.send_text(&big_batch(300, "again")).await;
    a.recv_type("mutations").await;
    // A plain agent never gets a binary frame, however large.
    assert!(a.seen.iter().all(|f| !f.binary), "{:?}", a.seen);
    assert!(c.seen.iter().all(|f| !f.binary), "{:?}", c.seen);
    // And a plain agent's binary frame is refused as before.
    a.send_raw(deflate(br#"{"t":"pointer","x":1,"y":1}"#)).await;
    assert_eq!(a.recv_type("error").await.json["code"], "binary");
}

#[tokio::test]
async fn compressed_frames_to_an_agent_inflate_to_the_text_frames() {
    let app = spawn_app().await;
    let snap = big_snapshot(400, "same");
    let (id_z, mut cz) = customer_session(&app, false).await;
    let (id_t, mut ct) = customer_session(&app, false).await;
    for c in [&mut cz, &mut ct] {
        c.send_text(&snap).await;
        c.recv_type("rules").await;
    }
    let mut az = ZClient::agent(&app, &id_z, &app.agent_token, true).await;
    let mut at = ZClient::agent(&app, &id_t, &app.agent2_token, false).await;
    let sz = az.recv_type("snapshot").await;
    let st = at.recv_type("snapshot").await;
    assert!(sz.binary && !st.binary);
    assert_eq!(sz.json, st.json);
    // A large batch goes compressed, a small one as text, in order.
    let small =
        json!({"t": "mutations", "epoch": 1, "ops": [{"op": "text", "id": 101, "text": "small"}]});
    for c in [&mut cz, &mut ct] {
        c.send_text(&big_batch(300, "big")).await;
        c.send_text(&small).await;
    }
    let bz = az.recv_type("mutations").await;
    let bt = at.recv_type("mutations").await;
    assert!(bz.binary && !bt.binary);
    assert_eq!(bz.json, bt.json);
    let sz = az.recv_type("mutations").await;
    let st = at.recv_type("mutations").await;
    assert!(!sz.binary, "small frames stay text");
    assert_eq!(sz.json, st.json);
    assert_eq!(sz.json["ops"][0]["text"], "small");
    // Small control frames were never compressed.
    assert!(
        az.seen
            .iter()
            .filter(|f| f.binary)
            .all(|f| f.json["t"] == "snapshot" || f.json["t"] == "mutations"),
        "{:?}",
        az.seen
    );
}
