//! Fail closed (issue 7, item 1), over real sockets: any customer frame the
//! server refuses or cannot fully apply freezes the agent's view behind a
//! `resync`, nothing more of that document is applied or relayed, and the
//! session resumes only from a fresh snapshot with a new epoch. Also SPA
//! navigation (`navigate`) switching URL-scoped rules at once.

use crate::common::{sample_snapshot, spawn_app, spawn_app_with, TestOptions, SOON};
use cobrowse::rules::Action;
use serde_json::{json, Value};

/// `sample_snapshot` with an epoch.
fn snapshot_at(epoch: u32, text: &str) -> Value {
    let mut s = sample_snapshot(text);
    s["epoch"] = json!(epoch);
    s
}

fn mutations(epoch: u32, ops: Value) -> Value {
    json!({"t": "mutations", "epoch": epoch, "ops": ops})
}

/// Every frame the agent got that carries document content, as one string.
fn document_frames(seen: &[Value]) -> String {
    seen.iter()
        .filter(|m| matches!(m["t"].as_str(), Some("snapshot" | "mutations")))
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn one_bad_op_in_a_batch_freezes_the_agent_and_nothing_of_the_batch_goes_out() {
    let app = spawn_app().await;
    let (_id, _t, mut c, mut a) = app.active_session().await;
    // A valid op (clear text) followed by an op on an unknown node.
    c.send(mutations(
        0,
        json!([
            {"op": "text", "id": 6, "text": "FIRST-HALF-SECRET"},
            {"op": "remove", "id": 424242}
        ]),
    ))
    .await;
    assert_eq!(c.recv_type("error").await["code"], "rewrite");
    c.recv_type("resync").await;
    a.recv_type("resync").await;
    // Later ops of the same (stale) document are neither applied nor relayed.
    c.send(mutations(
        0,
        json!([{"op": "text", "id": 6, "text": "LATER"}]),
    ))
    .await;
    // Pointer frames still flow (and come after the dropped batch).
    c.send(json!({"t": "pointer", "x": 3.0, "y": 4.0})).await;
    a.recv_type("pointer").await;
    // The fresh snapshot (new epoch) ends the resync.
    c.send(snapshot_at(7, "fresh")).await;
    let snap = a.recv_type("snapshot").await;
    assert!(snap.to_string().contains("fresh"), "{snap}");
    c.send(mutations(
        7,
        json!([{"op": "text", "id": 6, "text": "after"}]),
    ))
    .await;
    let m = a.recv_type("mutations").await;
    assert_eq!(m["ops"][0]["text"], "after");
    let doc = document_frames(&a.seen);
    assert!(!doc.contains("FIRST-HALF-SECRET"), "{doc}");
    assert!(!doc.contains("LATER"), "{doc}");
}

#[tokio::test]
async fn frames_for_another_epoch_are_dropped() {
    let app = spawn_app().await;
    let (id, token) = app.create_session().await;
    let mut c = app.customer(&id, &token).await;
    c.recv_type("rules").await;
    c.send(snapshot_at(5, "page five")).await;
    c.recv_type("rules").await;
    let mut a = app.agent(&id).await;
    a.recv_type("snapshot").await;
    // A batch for an older document (epoch 4) is ignored; epoch 5 applies.
    c.send(mutations(
        4,
        json!([{"op": "text", "id": 6, "text": "STALE"}]),
    ))
    .await;
    c.send(mutations(
        5,
        json!([{"op": "text", "id": 6, "text": "current"}]),
    ))
    .await;
    let m = a.recv_type("mutations").await;
    assert_eq!(m["ops"][0]["text"], "current");
    assert!(!document_frames(&a.seen).contains("STALE"));
}

#[tokio::test]
async fn a_refused_frame_over_the_limits_puts_the_session_in_resync() {
    let mut opts = TestOptions::default();
    opts.limits.max_ops = 3;
    let app = spawn_app_with(opts).await;
    let (_id, _t, mut c, mut a) = app.active_session().await;
    let op = json!({"op": "text", "id": 6, "text": "x"});
    c.send(mutations(0, json!([op, op, op, op]))).await;
    assert_eq!(c.recv_type("error").await["code"], "too_many_ops");
    assert_eq!(c.recv_type("resync").await["reason"], "too_many_ops");
    assert_eq!(a.recv_type("resync").await["reason"], "too_many_ops");
    // The agent's actions are denied until the page is known again.
    a.send(json!({"t": "click", "id": 7})).await;
    assert_eq!(a.recv_type("denied").await["reason"], "resyncing");
    c.send(snapshot_at(1, "back")).await;
    a.recv_type("snapshot").await;
}

#[tokio::test]
async fn rate_limited_mutations_are_never_dropped_silently() {
    let mut opts = TestOptions::default();
    opts.limits.max_messages_per_sec = 5;
    let app = spawn_app_with(opts).await;
    let (_id, _t, mut c, mut a) = app.active_session().await;
    for i in 0..12 {
        c.send(mutations(
            0,
            json!([{"op": "text", "id": 6, "text": format!("typed-{i}")}]),
        ))
        .await;
    }
    assert_eq!(c.recv_type("error").await["code"], "rate_limited");
    c.recv_type("resync").await;
    a.recv_type("resync").await;
    // Pointer floods only drop pointers: no resync for them (checked in
    // relay::bad_input::rate_limit_drops_floods_with_an_error).
}

#[tokio::test]
async fn a_refused_resync_snapshot_is_asked_for_again_later() {
    let mut opts = TestOptions::default();
    opts.limits.max_nodes = 12;
    let app = spawn_app_with(opts).await;
    let (_id, _t, mut c, mut a) = app.active_session().await;
    c.send(mutations(0, json!([{"op": "remove", "id": 999}])))
        .await;
    c.recv_type("resync").await;
    a.recv_type("resync").await;
    // A snapshot over the node limit is refused; the server asks again
    // after a back-off instead of carrying on with a stale mirror.
    let mut big = snapshot_at(2, "big");
    let kids: Vec<Value> = (0..20)
        .map(|i| json!({"id": 100 + i, "type": "element", "tag": "i"}))
        .collect();
    big["root"]["children"][1]["children"][0]["children"] = json!(kids);
    c.send(big).await;
    assert_eq!(c.recv_type("error").await["code"], "too_many_nodes");
    c.recv_type("resync").await;
    c.send(snapshot_at(3, "small again")).await;
    let snap = a.recv_type("snapshot").await;
    assert!(snap.to_string().contains("small again"));
}

#[tokio::test]
async fn a_reconnected_customer_is_not_trusted_before_its_snapshot() {
    let app = spawn_app().await;
    let (id, token, c, mut a) = app.active_session().await;
    c.close().await;
    a.recv_until(|m| m["t"] == "presence" && m["customer"] == "away", SOON)
        .await;
    let mut c2 = app.customer(&id, &token).await;
    c2.recv_type("rules").await;
    // Ops sent before the new connection's snapshot may name nodes of a
    // page the server never saw: the session resyncs.
    c2.send(mutations(
        0,
        json!([{"op": "text", "id": 6, "text": "BLIND"}]),
    ))
    .await;
    c2.recv_type("resync").await;
    a.recv_type("resync").await;
    c2.send(snapshot_at(9, "reloaded")).await;
    a.recv_type("snapshot").await;
    assert!(!document_frames(&a.seen).contains("BLIND"));
}

#[tokio::test]
async fn spa_navigation_switches_url_scoped_rules_at_once() {
    let app = spawn_app().await;
    app.publish_demo_rules(
        &[("p", Action::Mask, Some("/account/*"))],
        Default::default(),
    )
    .await;
    let (_id, _t, mut c, mut a) = app.active_session().await;
    // On /checkout the paragraph is clear.
    assert!(a.seen.iter().any(|m| m.to_string().contains("hello")));
    c.send(json!({"t": "navigate", "epoch": 0, "url": "http://shop.test/account/orders?ref=mail#top", "title": "Orders"}))
        .await;
    let page = a.recv_type("page").await;
    assert_eq!(page["title"], "Orders");
    let m = a.recv_type("mutations").await;
    let text = m.to_string();
    assert!(!text.contains("hello"), "{text}");
    assert!(text.contains("data-cobrowse-masked"), "{text}");
    let cue = c
        .recv_until(|m| m["t"] == "rules" && m["mask"][0] == "p", SOON)
        .await;
    assert_eq!(cue["mask"], json!(["p"]));
    // A later text change on the page stays masked.
    c.send(mutations(
        0,
        json!([{"op": "text", "id": 6, "text": "order 77"}]),
    ))
    .await;
    let m = a.recv_type("mutations").await;
    assert!(!m.to_string().contains("order 77"));
}
