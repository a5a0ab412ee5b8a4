//! Bad input on the sockets: every malformed, oversized or unauthorised frame
//! gets a clear `error` frame (or an HTTP refusal before the upgrade), and
//! never takes the session down.

use crate::common::{sample_snapshot, spawn_app, spawn_app_with, TestOptions, WsClient, SOON};
use serde_json::json;

#[tokio::test]
async fn malformed_json_and_unknown_type_keep_the_socket_open() {
    let app = spawn_app().await;
    let (_id, _t, mut c, mut a) = app.active_session().await;
    c.send_text("{not json".into()).await;
    let e = c.recv_type("error").await;
    assert_eq!(e["code"], "malformed");
    c.send(json!({"t": "teleport"})).await;
    assert_eq!(c.recv_type("error").await["code"], "malformed");
    c.send(json!({"t": "pointer", "x": "left"})).await;
    assert_eq!(c.recv_type("error").await["code"], "malformed");
    a.send_text("[]".into()).await;
    assert_eq!(a.recv_type("error").await["code"], "malformed");
    a.send(json!({"t": "fly", "id": 1})).await;
    assert_eq!(a.recv_type("error").await["code"], "malformed");
    c.send_binary(vec![1, 2, 3]).await;
    assert_eq!(c.recv_type("error").await["code"], "binary");
    // Both sockets still work.
    c.send(json!({"t": "pointer", "x": 1.0, "y": 1.0})).await;
    a.recv_type("pointer").await;
    a.send(json!({"t": "pointer", "x": 2.0, "y": 2.0})).await;
    c.recv_type("pointer").await;
}

#[tokio::test]
async fn mutation_before_snapshot_and_unknown_node_get_errors() {
    let app = spawn_app().await;
    let (id, token) = app.create_session().await;
    let mut c = app.customer(&id, &token).await;
    c.recv_type("rules").await;
    c.send(json!({"t": "mutations", "ops": [{"op": "remove", "id": 3}]}))
        .await;
    // Out of step: the server asks for a snapshot instead of guessing.
    c.recv_type("resync").await;
    c.send(sample_snapshot("x")).await;
    c.recv_type("rules").await;
    c.send(json!({"t": "pointer", "x": 1.0, "y": 1.0})).await;
    // Control before an agent joined is refused with a reason.
    c.send(json!({"t": "control", "grant": true})).await;
    assert_eq!(c.recv_type("error").await["code"], "not_active");
}

#[tokio::test]
async fn too_deep_tree_and_too_many_ops_are_refused() {
    let mut opts = TestOptions::default();
    opts.limits.max_depth = 16;
    opts.limits.max_ops = 3;
    let app = spawn_app_with(opts).await;
    let (_id, _t, mut c, mut a) = app.active_session().await;
    let mut node = json!({"id": 1000, "type": "text", "text": "deep"});
    for i in 0..40 {
        node = json!({"id": 2000 + i, "type": "element", "tag": "div", "children": [node]});
    }
    c.send(json!({"t": "mutations", "ops": [{"op": "insert", "parent": 4, "before": null, "node": node}]}))
        .await;
    assert_eq!(c.recv_type("error").await["code"], "too_deep");
    assert_eq!(c.recv_type("resync").await["reason"], "too_deep");
    c.send(sample_snapshot("again")).await;
    let op = json!({"op": "text", "id": 6, "text": "x"});
    c.send(json!({"t": "mutations", "ops": [op, op, op, op]}))
        .await;
    assert_eq!(c.recv_type("error").await["code"], "too_many_ops");
    // Nothing of either batch reached the agent; the session goes on.
    c.send(json!({"t": "pointer", "x": 9.0, "y": 9.0})).await;
    let p = a.recv_type("pointer").await;
    assert_eq!(p, json!({"t": "pointer", "x": 9.0, "y": 9.0}));
    assert!(a.seen.iter().all(|m| m["t"] != "mutations"), "{:?}", a.seen);
    assert_eq!(
        a.seen.iter().filter(|m| m["t"] == "resync").count(),
        2,
        "{:?}",
        a.seen
    );
}

#[tokio::test]
async fn oversized_frame_gets_an_error_and_closes() {
    let mut opts = TestOptions::default();
    opts.limits.max_message_bytes = 64 * 1024;
    let app = spawn_app_with(opts).await;
    let (id, _t, mut c, mut a) = app.active_session().await;
    c.send(sample_snapshot(&"x".repeat(100 * 1024))).await;
    let e = c.recv_type("error").await;
    assert_eq!(e["code"], "too_large");
    c.expect_closed(SOON).await;
    // The customer is away, not the session over; the agent is told.
    assert_eq!(a.recv_type("presence").await["customer"], "away");
    assert!(app.state.registry.info(&id).is_some());
}

#[tokio::test]
async fn rate_limit_drops_floods_with_an_error() {
    let mut opts = TestOptions::default();
    opts.limits.max_messages_per_sec = 5;
    let app = spawn_app_with(opts).await;
    let (_id, _t, mut c, _a) = app.active_session().await;
    for i in 0..30 {
        c.send(json!({"t": "pointer", "x": i as f64, "y": 0.0}))
            .await;
    }
    assert_eq!(c.recv_type("error").await["code"], "rate_limited");
}

#[tokio::test]
async fn wrong_token_is_refused() {
    let app = spawn_app().await;
    let (id, token) = app.create_session().await;
    let mut c = app.customer(&id, "0".repeat(64).as_str()).await;
    assert_eq!(c.recv_error_code().await, "bad_token");
    c.expect_closed(SOON).await;
    let mut c = app.customer(&id, "").await;
    assert_eq!(c.recv_error_code().await, "bad_token");
    let mut c = app.customer("123456789", &token).await;
    assert_eq!(c.recv_error_code().await, "not_found");
    // The real token still works.
    let mut c = app.customer(&id, &token).await;
    assert_eq!(c.recv_type("session").await["state"], "waiting");
}

#[tokio::test]
async fn unauthenticated_agent_is_refused_before_upgrade() {
    let app = spawn_app().await;
    let (id, token) = app.create_session().await;
    let mut c = app.customer(&id, &token).await;
    c.recv_type("rules").await;
    let err = WsClient::connect(&format!("{}/ws/agent/{id}", app.ws_base), None)
        .await
        .err()
        .expect("no credentials must fail");
    assert!(err.to_string().contains("401"), "{err}");
    let err = WsClient::connect(
        &format!("{}/ws/agent/{id}", app.ws_base),
        Some("cbt_forged"),
    )
    .await
    .err()
    .expect("bad token must fail");
    assert!(err.to_string().contains("401"), "{err}");
    // A revoked token stops working.
    app.state.store.revoke_tokens("agent3").await.unwrap();
    let err = WsClient::connect(
        &format!("{}/ws/agent/{id}", app.ws_base),
        Some(&app.agent3_token),
    )
    .await
    .err()
    .expect("revoked token must fail");
    assert!(err.to_string().contains("401"), "{err}");
    assert_eq!(
        app.state.registry.info(&id).unwrap().state,
        cobrowse::protocol::SessionState::Waiting
    );
}
