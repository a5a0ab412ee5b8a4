//! Each session timeout, configured short, and the grace periods that let a
//! side come back (agent viewer reload, customer page navigation).

use crate::common::{sample_snapshot, spawn_app_with, TestOptions, SOON};
use serde_json::json;
use std::time::Duration;

const SHORT: Duration = Duration::from_millis(300);

fn opts(f: impl FnOnce(&mut cobrowse::config::Timeouts)) -> TestOptions {
    let mut o = TestOptions::default();
    f(&mut o.timeouts);
    o
}

#[tokio::test]
async fn waiting_timeout_ends_a_session_nobody_joined() {
    let app = spawn_app_with(opts(|t| t.waiting = Duration::from_secs(1))).await;
    let (id, token) = app.create_session().await;
    let mut c = app.customer(&id, &token).await;
    assert_eq!(c.recv_ended().await, "waiting_timeout");
    c.expect_closed(SOON).await;
    assert_eq!(
        app.ended_history(&id).await.end_reason.as_deref(),
        Some("waiting_timeout")
    );
    assert!(app.ended_history(&id).await.agent.is_none());
}

#[tokio::test]
async fn inactivity_timeout_ends_a_quiet_active_session() {
    let app = spawn_app_with(opts(|t| t.inactivity = Duration::from_millis(500))).await;
    let (id, _t, mut c, mut a) = app.active_session().await;
    assert_eq!(a.recv_ended().await, "inactivity_timeout");
    assert_eq!(c.recv_ended().await, "inactivity_timeout");
    assert_eq!(
        app.ended_history(&id).await.end_reason.as_deref(),
        Some("inactivity_timeout")
    );
}

#[tokio::test]
async fn agent_away_too_long_ends_the_session() {
    let app = spawn_app_with(opts(|t| t.agent_away = SHORT)).await;
    let (id, _t, mut c, a) = app.active_session().await;
    a.close().await;
    assert_eq!(
        c.recv_type("presence").await,
        json!({"t": "presence", "agent": "away"})
    );
    assert_eq!(c.recv_ended().await, "agent_away_timeout");
    assert_eq!(
        app.ended_history(&id).await.end_reason.as_deref(),
        Some("agent_away_timeout")
    );
}

#[tokio::test]
async fn agent_back_within_grace_resumes_with_a_fresh_snapshot() {
    let app = spawn_app_with(opts(|t| t.agent_away = Duration::from_secs(60))).await;
    let (id, _t, mut c, mut a) = app.active_session().await;
    a.send(json!({"t": "control", "request": true})).await;
    c.recv_type("control").await;
    c.send(json!({"t": "control", "grant": true})).await;
    a.recv_type("mode").await;
    c.recv_type("mode").await;
    a.close().await;
    c.recv_until(|m| m == &json!({"t": "presence", "agent": "away"}), SOON)
        .await;
    // Control does not stay with an absent agent.
    assert_eq!(
        c.recv_type("mode").await,
        json!({"t": "mode", "mode": "pointer"})
    );
    // The customer keeps working (here: moves to another page) while the agent is away.
    c.send(sample_snapshot("typed meanwhile")).await;
    c.recv_type("rules").await;
    let mut a2 = app.agent(&id).await;
    assert_eq!(
        a2.recv(SOON).await.unwrap(),
        json!({"t": "session", "id": id, "state": "active", "mode": "pointer"})
    );
    let snap = a2.recv_type("snapshot").await;
    assert_eq!(
        snap["root"]["children"][1]["children"][0]["children"][0]["children"][0]["text"],
        "typed meanwhile"
    );
    assert_eq!(
        c.recv_type("presence").await,
        json!({"t": "presence", "agent": "present"})
    );
    c.send(json!({"t": "pointer", "x": 3.0, "y": 4.0})).await;
    a2.recv_type("pointer").await;
}

#[tokio::test]
async fn customer_away_too_long_ends_the_session() {
    let app = spawn_app_with(opts(|t| t.customer_away = SHORT)).await;
    let (id, _t, c, mut a) = app.active_session().await;
    c.close().await;
    assert_eq!(
        a.recv_type("presence").await,
        json!({"t": "presence", "customer": "away"})
    );
    assert_eq!(a.recv_ended().await, "customer_away_timeout");
    assert_eq!(
        app.ended_history(&id).await.end_reason.as_deref(),
        Some("customer_away_timeout")
    );
}

#[tokio::test]
async fn customer_navigation_keeps_the_session() {
    let app = spawn_app_with(opts(|t| t.customer_away = Duration::from_secs(60))).await;
    let (id, token, c, mut a) = app.active_session().await;
    c.close().await;
    a.recv_until(|m| m == &json!({"t": "presence", "customer": "away"}), SOON)
        .await;
    // The next page reconnects with the same id and token.
    let mut c2 = app.customer(&id, &token).await;
    assert_eq!(
        c2.recv(SOON).await.unwrap(),
        json!({"t": "session", "id": id, "state": "active", "mode": "pointer"})
    );
    assert_eq!(
        c2.recv(SOON).await.unwrap(),
        json!({"t": "agent", "name": "agent1"})
    );
    assert_eq!(c2.recv(SOON).await.unwrap()["t"], "rules");
    assert_eq!(
        a.recv_type("presence").await,
        json!({"t": "presence", "customer": "present"})
    );
    c2.send(sample_snapshot("page two")).await;
    let s = a.recv_type("snapshot").await;
    assert_eq!(
        s["root"]["children"][1]["children"][0]["children"][0]["children"][0]["text"],
        "page two"
    );
}
