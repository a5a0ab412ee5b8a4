//! Compressed frames in real browsers (issue 10 item 3, protocol v1.4): the
//! snippet and the viewer negotiate `z=deflate-raw`, large frames cross both
//! sockets as binary raw DEFLATE, the replica shows the page (masked data
//! still masked, a large batch applied in order) and the bytes on the wire
//! are recorded for docs/performance.md ("Bytes on the wire"): snapshot bytes
//! vs the page's HTML, for the demo checkout and the corpus's
//! 30,000-element page. The test prints the figures; it asserts only that
//! compression happened and what the replica shows.

use super::corpus::{replica_shows, Corpus};
use super::stage::{Stage, REPLICA};
use crate::wait_for;
use fantoccini::Locator;
use serde::Deserialize;
use serde_json::{json, Value};

/// Record every frame the page's sockets send (before the snippet connects).
const SEND_HOOK: &str = "if (!window.__wireOut) { window.__wireOut = []; \
    var send = WebSocket.prototype.send; \
    WebSocket.prototype.send = function (d) { window.__wireOut.push(d); return send.apply(this, arguments); }; } \
    return null;";

/// Record every frame the page's sockets receive (before the viewer joins).
const RECV_HOOK: &str = "if (!window.__wireIn) { window.__wireIn = []; \
    var desc = Object.getOwnPropertyDescriptor(WebSocket.prototype, 'onmessage'); \
    Object.defineProperty(WebSocket.prototype, 'onmessage', { configurable: true, \
      get: function () { return desc.get.call(this); }, \
      set: function (fn) { desc.set.call(this, function (e) { window.__wireIn.push(e.data); return fn.apply(this, arguments); }); } }); } \
    return null;";

/// Summarise the recorded frames of `window[NAME]`: type, binary or not,
/// bytes on the wire, bytes of JSON, and whether `LEAK` occurs in it.
fn summarise(name: &str, leaks: &[&str]) -> String {
    format!(
        "var done = arguments[arguments.length - 1]; var leaks = {leaks}; \
         Promise.all(window.{name}.map(function (d) {{ \
           var bin = typeof d !== 'string'; \
           var blob = bin ? (d instanceof Blob ? d : new Blob([d])) : null; \
           var text = bin ? new Response(blob.stream().pipeThrough(new DecompressionStream('deflate-raw'))).text() \
                          : Promise.resolve(d); \
           return text.then(function (s) {{ var t = null; try {{ t = JSON.parse(s).t; }} catch (_) {{}} \
             return {{ t: t, binary: bin, wire: bin ? blob.size : new Blob([s]).size, json: new Blob([s]).size, \
                       leak: leaks.some(function (l) {{ return s.indexOf(l) >= 0; }}) }}; }}); \
         }})).then(done, function (e) {{ done(String(e)); }});",
        leaks = json!(leaks)
    )
}

#[derive(Deserialize, Debug, Clone)]
struct Wire {
    t: Option<String>,
    binary: bool,
    wire: u64,
    json: u64,
    leak: bool,
}

async fn frames(b: &super::browser::Browser, name: &str, leaks: &[&str]) -> Vec<Wire> {
    let v: Value = b.eval_async(&summarise(name, leaks)).await;
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{e}: {v}"))
}

/// The customer opens `url`, the hooks go in, the session starts and the
/// agent joins (as `Stage::start_and_join`, with the hooks installed before
/// either socket opens). `before_start` runs on the customer's page first.
async fn start_with_hooks(s: &Stage, url: &str, before_start: &str) {
    s.customer.client.goto(url).await.unwrap();
    wait_for!("the snippet on the customer's page", {
        let ok: bool = s
            .customer
            .try_eval("return !!(window.cobrowse && window.cobrowse.start);")
            .await?;
        if ok {
            Ok(())
        } else {
            Err("no window.cobrowse".into())
        }
    });
    let supported: bool = s
        .customer
        .eval("return typeof CompressionStream === 'function';")
        .await;
    assert!(supported, "this Chromium has no CompressionStream");
    s.customer.eval::<Value>(SEND_HOOK).await;
    s.customer.eval::<Value>(before_start).await;
    s.agent.eval::<Value>(RECV_HOOK).await;
    let started: Value = s
        .customer
        .eval_async(
            "var done = arguments[arguments.length - 1]; \
             window.cobrowse.start().then(done, function (e) { done({ error: String(e) }); });",
        )
        .await;
    let id = started["id"]
        .as_str()
        .unwrap_or_else(|| panic!("start() failed: {started}"))
        .to_string();
    let input = s
        .agent
        .client
        .find(Locator::Id("session-id"))
        .await
        .unwrap();
    input.send_keys(&id).await.unwrap();
    s.agent
        .client
        .find(Locator::Id("join-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for!("the replica of the customer's page", {
        let ok: bool = s
            .agent
            .try_eval(&format!(
                "{REPLICA} return !!(d && d.body && d.body.childElementCount);"
            ))
            .await?;
        if ok {
            Ok(())
        } else {
            Err("empty replica".into())
        }
    });
}

/// The page's HTML: the bytes served, and the serialised DOM the snapshot
/// is taken from (`outerHTML` with the doctype).
async fn html_sizes(s: &Stage) -> (u64, u64) {
    let v: Value = s
        .customer
        .eval_async(
            "var done = arguments[arguments.length - 1]; \
             var dom = new Blob(['<!DOCTYPE html>' + document.documentElement.outerHTML]).size; \
             fetch(location.href).then(function (r) { return r.arrayBuffer(); }) \
               .then(function (b) { done([b.byteLength, dom]); }, function (e) { done(String(e)); });",
        )
        .await;
    (v[0].as_u64().unwrap(), v[1].as_u64().unwrap())
}

/// The first snapshot each side saw; both must have gone compressed.
fn snapshot_of(frames: &[Wire], side: &str) -> Wire {
    let snap = frames
        .iter()
        .find(|f| f.t.as_deref() == Some("snapshot"))
        .unwrap_or_else(|| panic!("no snapshot {side}: {frames:?}"))
        .clone();
    assert!(
        snap.binary,
        "the snapshot {side} was not compressed: {snap:?}"
    );
    snap
}

fn report(page: &str, served: u64, dom: u64, up: &Wire, down: &Wire) {
    println!(
        "wire {page}: HTML served {served} B, DOM {dom} B; customer->server snapshot {} B compressed \
         ({} B JSON, {:.2}x DOM -> {:.2}x DOM); server->agent snapshot {} B compressed ({} B JSON, \
         {:.2}x DOM -> {:.2}x DOM)",
        up.wire,
        up.json,
        up.json as f64 / dom as f64,
        up.wire as f64 / dom as f64,
        down.wire,
        down.json,
        down.json as f64 / dom as f64,
        down.wire as f64 / dom as f64,
    );
}

#[tokio::test]
async fn compressed_cobrowse_of_the_demo_checkout_keeps_masks() {
    let s = Stage::new().await;
    let url = format!("{}/demo/checkout", s.base);
    // Secrets on the page before the session starts: they are in the
    // snapshot, which goes compressed both ways.
    let fill = "document.getElementById('password').value = 'hunter2-secret'; \
                document.getElementById('card-number').value = '4111 1111 1111 1111'; \
                document.getElementById('name').value = 'Kari Nordmann'; return null;";
    start_with_hooks(&s, &url, fill).await;
    replica_shows(
        &s,
        "the name in the replica",
        "return d.getElementById('name').value;",
        json!("Kari Nordmann"),
    )
    .await;
    let everything: String = s
        .agent
        .eval(&format!(
            "{REPLICA} return d.documentElement.outerHTML + [].map.call(d.querySelectorAll('input,textarea,select'), \
             function (e) {{ return e.value; }}).join('|');"
        ))
        .await;
    for leak in ["hunter2", "4111 111", "1111 1111"] {
        assert!(!everything.contains(leak), "{leak} leaked into the replica");
    }
    let leaks = ["hunter2", "4111 1111 1111", "1111 1111 1111"];
    let up = frames(&s.customer, "__wireOut", &leaks).await;
    let down = frames(&s.agent, "__wireIn", &leaks).await;
    assert!(up.iter().all(|f| !f.leak), "a secret left the page: {up:?}");
    assert!(
        down.iter().all(|f| !f.leak),
        "a secret reached the agent: {down:?}"
    );
    let (served, dom) = html_sizes(&s).await;
    report(
        "demo checkout",
        served,
        dom,
        &snapshot_of(&up, "sent"),
        &snapshot_of(&down, "received"),
    );
    // Small frames stay text.
    assert!(
        up.iter().filter(|f| f.binary).all(|f| f.json >= 8192),
        "{up:?}"
    );
    assert!(
        down.iter().filter(|f| f.binary).all(|f| f.json >= 8192),
        "{down:?}"
    );
    s.finish().await;
}

#[tokio::test]
async fn compressed_cobrowse_of_the_big_page_stays_in_order() {
    let c = Corpus::new().await;
    let s = &c.stage;
    let url = format!("{}/big.html", c.fixtures.same);
    start_with_hooks(s, &url, "return null;").await;
    replica_shows(
        s,
        "every row in the replica",
        "return d.getElementById('rows').children.length;",
        json!(4000),
    )
    .await;
    // A re-filter hides 3,600 rows (one large, compressed batch), then a
    // keystroke in another field (a small text frame right behind it).
    let filter = s.customer.client.find(Locator::Id("filter")).await.unwrap();
    filter.click().await.unwrap();
    filter.send_keys("p").await.unwrap();
    let note = s.customer.client.find(Locator::Id("note")).await.unwrap();
    note.click().await.unwrap();
    note.send_keys("z").await.unwrap();
    let shown: String = s
        .customer
        .eval("return document.getElementById('shown').textContent;")
        .await;
    replica_shows(
        s,
        "the re-filtered grid and the note in the replica",
        "return [d.getElementById('shown').textContent, d.getElementById('note').value, \
                 [].filter.call(d.getElementById('rows').children, function (r) { return !r.hidden; }).length];",
        json!([shown, "z", 400]),
    )
    .await;
    let up = frames(&s.customer, "__wireOut", &[]).await;
    let down = frames(&s.agent, "__wireIn", &[]).await;
    let big_batch = |f: &Wire| f.t.as_deref() == Some("mutations") && f.json >= 8192;
    assert!(
        up.iter().filter(|f| big_batch(f)).all(|f| f.binary),
        "{up:?}"
    );
    assert!(up.iter().any(big_batch), "{up:?}");
    assert!(
        down.iter().filter(|f| big_batch(f)).all(|f| f.binary),
        "{down:?}"
    );
    let (served, dom) = html_sizes(s).await;
    report(
        "big page",
        served,
        dom,
        &snapshot_of(&up, "sent"),
        &snapshot_of(&down, "received"),
    );
    c.finish().await;
}
