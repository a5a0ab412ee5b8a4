//! Session lifecycle over real sockets: join order, relaying, modes, policy,
//! exits from both sides, API and interaction ends, shutdown, history.

use crate::common::{sample_snapshot, spawn_app, SOON};
use serde_json::json;

#[tokio::test]
async fn customer_connect_gets_session_then_rules() {
    let app = spawn_app().await;
    let (id, token) = app.create_session().await;
    assert_eq!(id.len(), 9);
    assert!(id.chars().all(|c| c.is_ascii_digit()));
    assert!(id.parse::<u32>().unwrap() >= 100_000_000);
    assert_eq!(token.len(), 64);
    let mut c = app.customer(&id, &token).await;
    let s = c.recv(SOON).await.unwrap();
    assert_eq!(
        s,
        json!({"t": "session", "id": id, "state": "waiting", "mode": "pointer"})
    );
    let r = c.recv(SOON).await.unwrap();
    assert_eq!(r["t"], "rules");
    assert!(r["mask"].as_array().unwrap().iter().any(|s| s
        .as_str()
        .is_some_and(|s| s.starts_with("input[type=password]"))));
    assert_eq!(r["disable"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn agent_join_sends_frames_in_documented_order() {
    let app = spawn_app().await;
    let (id, token) = app.create_session().await;
    let mut c = app.customer(&id, &token).await;
    c.recv_type("rules").await;
    c.send(sample_snapshot("hello")).await;
    c.send(json!({"t": "viewport", "w": 1000.0, "h": 700.0}))
        .await;
    // The snapshot is answered with a fresh rules cue.
    c.recv_type("rules").await;

    let mut a = app.agent(&id).await;
    let s = a.recv(SOON).await.unwrap();
    assert_eq!(
        s,
        json!({"t": "session", "id": id, "state": "active", "mode": "pointer"})
    );
    let snap = a.recv(SOON).await.unwrap();
    assert_eq!(snap["t"], "snapshot");
    assert_eq!(snap["url"], "http://shop.test/checkout");
    let vp = a.recv(SOON).await.unwrap();
    assert_eq!(vp, json!({"t": "viewport", "w": 1000.0, "h": 700.0}));

    assert_eq!(
        c.recv(SOON).await.unwrap(),
        json!({"t": "agent", "name": "agent1"})
    );
    assert_eq!(
        c.recv(SOON).await.unwrap(),
        json!({"t": "session", "id": id, "state": "active", "mode": "pointer"})
    );

    // The API shows the same state.
    let info: serde_json::Value = app
        .http
        .get(app.url(&format!("/api/v1/sessions/{id}")))
        .bearer_auth(&app.agent_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        info,
        json!({"id": id, "state": "active", "mode": "pointer", "site": "demo"})
    );
}

#[tokio::test]
async fn document_and_pointers_are_relayed() {
    let app = spawn_app().await;
    let (_id, _t, mut c, mut a) = app.active_session().await;
    c.send(json!({"t": "mutations", "ops": [{"op": "text", "id": 6, "text": "changed"}]}))
        .await;
    let m = a.recv_type("mutations").await;
    assert_eq!(
        m["ops"][0],
        json!({"op": "text", "id": 6, "text": "changed"})
    );

    c.send(json!({"t": "pointer", "x": 10.0, "y": 20.0})).await;
    assert_eq!(
        a.recv_type("pointer").await,
        json!({"t": "pointer", "x": 10.0, "y": 20.0})
    );
    c.send(json!({"t": "scroll", "x": 0.0, "y": 300.0})).await;
    assert_eq!(
        a.recv_type("scroll").await,
        json!({"t": "scroll", "x": 0.0, "y": 300.0})
    );

    a.send(json!({"t": "pointer", "x": 5.0, "y": 6.0})).await;
    assert_eq!(
        c.recv_type("pointer").await,
        json!({"t": "pointer", "x": 5.0, "y": 6.0})
    );

    // A new snapshot (navigation) replaces the agent's document and re-sends the cue.
    c.send(sample_snapshot("second page")).await;
    let s = a.recv_type("snapshot").await;
    assert_eq!(
        s["root"]["children"][1]["children"][0]["children"][0]["children"][0]["text"],
        "second page"
    );
    c.recv_type("rules").await;
}

#[tokio::test]
async fn write_mode_refused_then_granted_then_revoked() {
    let app = spawn_app().await;
    let (_id, _t, mut c, mut a) = app.active_session().await;

    // Pointer mode: actions are denied.
    a.send(json!({"t": "click", "id": 7})).await;
    assert_eq!(
        a.recv_type("denied").await,
        json!({"t": "denied", "action": "click", "reason": "pointer_mode"})
    );

    a.send(json!({"t": "control", "request": true})).await;
    assert_eq!(
        c.recv_type("control").await,
        json!({"t": "control", "request": true})
    );
    c.send(json!({"t": "control", "grant": false})).await;
    assert_eq!(
        a.recv_type("denied").await,
        json!({"t": "denied", "action": "control", "reason": "refused"})
    );
    assert_eq!(
        a.recv_type("mode").await,
        json!({"t": "mode", "mode": "pointer"})
    );

    a.send(json!({"t": "control", "request": true})).await;
    c.recv_type("control").await;
    c.send(json!({"t": "control", "grant": true})).await;
    assert_eq!(
        a.recv_type("mode").await,
        json!({"t": "mode", "mode": "write"})
    );
    assert_eq!(
        c.recv_type("mode").await,
        json!({"t": "mode", "mode": "write"})
    );

    // Write mode: actions reach the customer.
    a.send(json!({"t": "click", "id": 7})).await;
    assert_eq!(c.recv_type("click").await, json!({"t": "click", "id": 7}));
    a.send(json!({"t": "input", "id": 7, "value": "abc"})).await;
    assert_eq!(
        c.recv_type("input").await,
        json!({"t": "input", "id": 7, "value": "abc"})
    );
    a.send(json!({"t": "key", "id": 7, "key": "Enter"})).await;
    assert_eq!(
        c.recv_type("key").await,
        json!({"t": "key", "id": 7, "key": "Enter"})
    );
    a.send(json!({"t": "scroll", "x": 0.0, "y": 50.0})).await;
    assert_eq!(
        c.recv_type("scroll").await,
        json!({"t": "scroll", "x": 0.0, "y": 50.0})
    );

    // The customer revokes at any time: no "denied" (nothing was pending).
    c.send(json!({"t": "control", "grant": false})).await;
    assert_eq!(
        a.recv_type("mode").await,
        json!({"t": "mode", "mode": "pointer"})
    );
    a.send(json!({"t": "click", "id": 7})).await;
    let d = a.recv_type("denied").await;
    assert_eq!(d["reason"], "pointer_mode");

    // The agent can give write mode back.
    a.send(json!({"t": "control", "request": true})).await;
    c.recv_type("control").await;
    c.send(json!({"t": "control", "grant": true})).await;
    a.recv_until(|m| m["t"] == "mode" && m["mode"] == "write", SOON)
        .await;
    a.send(json!({"t": "control", "request": false})).await;
    assert_eq!(c.recv_type("mode").await["mode"], "write");
    assert_eq!(c.recv_type("mode").await["mode"], "pointer");
}

#[tokio::test]
async fn customer_exit_notifies_agent_and_writes_history() {
    let app = spawn_app().await;
    let (id, _t, mut c, mut a) = app.active_session().await;
    a.send(json!({"t": "control", "request": true})).await;
    c.recv_type("control").await;
    c.send(json!({"t": "control", "grant": true})).await;
    a.recv_type("mode").await;
    a.send(json!({"t": "control", "request": false})).await;
    a.recv_until(|m| m["t"] == "mode" && m["mode"] == "pointer", SOON)
        .await;
    a.send(json!({"t": "click", "id": 7})).await;
    a.recv_type("denied").await;
    c.send(json!({"t": "end"})).await;
    assert_eq!(a.recv_ended().await, "customer_exit");
    assert_eq!(c.recv_ended().await, "customer_exit");
    a.expect_closed(SOON).await;
    c.expect_closed(SOON).await;

    let row = app.ended_history(&id).await;
    assert_eq!(row.end_reason.as_deref(), Some("customer_exit"));
    assert_eq!(row.agent.as_deref(), Some("agent1"));
    assert_eq!(row.site_key, "demo");
    assert!(row.joined_at.is_some());
    assert_eq!(row.denied_count, 1);
    let events = app.state.store.history_events(row.id).await.unwrap();
    let kinds: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.kind.as_str(), e.detail.as_str()))
        .collect();
    assert!(kinds.contains(&("join", "agent1")), "{kinds:?}");
    assert!(kinds.contains(&("mode", "write")), "{kinds:?}");
    assert!(kinds.contains(&("mode", "pointer")), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&("end", "customer_exit")));
    assert!(app.state.registry.info(&id).is_none());
}

#[tokio::test]
async fn agent_exit_notifies_customer() {
    let app = spawn_app().await;
    let (id, _t, mut c, mut a) = app.active_session().await;
    a.send(json!({"t": "end"})).await;
    assert_eq!(c.recv_ended().await, "agent_exit");
    assert_eq!(a.recv_ended().await, "agent_exit");
    assert_eq!(
        app.ended_history(&id).await.end_reason.as_deref(),
        Some("agent_exit")
    );
}

#[tokio::test]
async fn rejoin_after_end_is_refused() {
    let app = spawn_app().await;
    let (id, token, mut c, mut a) = app.active_session().await;
    a.send(json!({"t": "end"})).await;
    c.recv_ended().await;
    a.recv_ended().await;
    let mut again = app.agent(&id).await;
    assert_eq!(again.recv_error_code().await, "session_ended");
    again.expect_closed(SOON).await;
    let mut cust = app.customer(&id, &token).await;
    assert_eq!(cust.recv_error_code().await, "session_ended");
    // The agent is free again: a new session can be joined.
    let (id2, token2) = app.create_session().await;
    let mut c2 = app.customer(&id2, &token2).await;
    c2.recv_type("rules").await;
    let mut a2 = app.agent(&id2).await;
    assert_eq!(a2.recv_type("session").await["state"], "active");
}

#[tokio::test]
async fn second_agent_is_refused_and_busy_agent_too() {
    let app = spawn_app().await;
    let (id, _t, _c, _a) = app.active_session().await;
    let mut other = app.agent_with(&id, &app.agent2_token).await;
    assert_eq!(other.recv_error_code().await, "session_taken");
    other.expect_closed(SOON).await;

    // agent1 is busy in `id`: joining another session is refused.
    let (id2, token2) = app.create_session().await;
    let mut c2 = app.customer(&id2, &token2).await;
    c2.recv_type("rules").await;
    let mut busy = app.agent(&id2).await;
    let e = busy.recv_type("error").await;
    assert_eq!(e["code"], "agent_busy");
    assert!(e["message"].as_str().unwrap().contains(&id));
    // Still waiting for a free agent.
    assert_eq!(
        app.state.registry.info(&id2).unwrap().state,
        cobrowse::protocol::SessionState::Waiting
    );
    // agent2's refusal left nothing behind: agent2 is free to take id2.
    let mut a2 = app.agent_with(&id2, &app.agent2_token).await;
    assert_eq!(a2.recv_type("session").await["state"], "active");
    assert_eq!(c2.recv_type("agent").await["name"], "agent2");
}

#[tokio::test]
async fn same_agent_reconnecting_replaces_the_old_socket() {
    let app = spawn_app().await;
    let (_id, _t, mut c, mut a) = app.active_session().await;
    let id = _id;
    let mut a2 = app.agent(&id).await;
    assert_eq!(a2.recv_type("session").await["state"], "active");
    a2.recv_type("snapshot").await;
    assert_eq!(a.recv_error_code().await, "replaced");
    a.expect_closed(SOON).await;
    c.send(json!({"t": "pointer", "x": 1.0, "y": 2.0})).await;
    a2.recv_type("pointer").await;
}

#[tokio::test]
async fn api_end_with_user_token_and_site_key() {
    let app = spawn_app().await;
    let (id, _t, mut c, mut a) = app.active_session().await;
    // No credentials.
    let r = app
        .http
        .post(app.url(&format!("/api/v1/sessions/{id}/end")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Wrong credentials.
    let r = app
        .http
        .post(app.url(&format!("/api/v1/sessions/{id}/end")))
        .bearer_auth("cbt_nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Unknown session.
    let r = app
        .http
        .post(app.url("/api/v1/sessions/123/end"))
        .bearer_auth(&app.agent_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // The site's integration key ends it.
    let r = app
        .http
        .post(app.url(&format!("/api/v1/sessions/{id}/end")))
        .bearer_auth(&app.demo_api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(c.recv_ended().await, "api_ended");
    assert_eq!(a.recv_ended().await, "api_ended");
    assert_eq!(
        app.ended_history(&id).await.end_reason.as_deref(),
        Some("api_ended")
    );
    // Ended: 404 now.
    let r = app
        .http
        .post(app.url(&format!("/api/v1/sessions/{id}/end")))
        .bearer_auth(&app.agent_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // A user token ends a waiting session too.
    let (id2, token2) = app.create_session().await;
    let mut c2 = app.customer(&id2, &token2).await;
    c2.recv_type("rules").await;
    let r = app
        .http
        .post(app.url(&format!("/api/v1/sessions/{id2}/end")))
        .bearer_auth(&app.agent2_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(c2.recv_ended().await, "api_ended");
}

#[tokio::test]
async fn interaction_end_ends_linked_sessions_only() {
    let app = spawn_app().await;
    let url = format!("{}/demo/", app.base);
    let (id1, t1) = app
        .create_session_with(json!({"site": "demo", "url": url, "interaction": "chat-42"}))
        .await;
    let (id2, t2) = app
        .create_session_with(json!({"site": "demo", "url": url, "interaction": "chat-7"}))
        .await;
    let mut c1 = app.customer(&id1, &t1).await;
    c1.recv_type("rules").await;
    let mut c2 = app.customer(&id2, &t2).await;
    c2.recv_type("rules").await;
    let mut a1 = app.agent(&id1).await;
    a1.recv_type("session").await;

    let r = app
        .http
        .post(app.url("/api/v1/interactions/chat-unknown/end"))
        .bearer_auth(&app.demo_api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = app
        .http
        .post(app.url("/api/v1/interactions/chat-42/end"))
        .bearer_auth(&app.demo_api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["ended"], 1);
    assert_eq!(c1.recv_ended().await, "interaction_ended");
    assert_eq!(a1.recv_ended().await, "interaction_ended");
    let row = app.ended_history(&id1).await;
    assert_eq!(row.interaction.as_deref(), Some("chat-42"));
    assert_eq!(row.end_reason.as_deref(), Some("interaction_ended"));
    assert!(
        app.state.registry.info(&id2).is_some(),
        "the other interaction's session is untouched"
    );
}

#[tokio::test]
async fn server_shutdown_notifies_both_sides_and_writes_history() {
    let mut app = spawn_app().await;
    let (id, _t, mut c, mut a) = app.active_session().await;
    let (id2, t2) = app.create_session().await;
    let mut c2 = app.customer(&id2, &t2).await;
    c2.recv_type("rules").await;
    app.shutdown().await;
    assert_eq!(c.recv_ended().await, "server_shutdown");
    assert_eq!(a.recv_ended().await, "server_shutdown");
    assert_eq!(c2.recv_ended().await, "server_shutdown");
    let row = app.state.store.history_of(&id).await.unwrap().remove(0);
    assert_eq!(row.end_reason.as_deref(), Some("server_shutdown"));
    let row2 = app.state.store.history_of(&id2).await.unwrap().remove(0);
    assert_eq!(row2.end_reason.as_deref(), Some("server_shutdown"));
}

#[tokio::test]
async fn rule_publish_reaches_live_sessions() {
    let app = spawn_app().await;
    let (_id, _t, mut c, _a) = app.active_session().await;
    app.publish_demo_rules(
        &[(".secret", cobrowse::rules::Action::Block, None)],
        Default::default(),
    )
    .await;
    let cue = c
        .recv_until(|m| m["t"] == "rules" && m["block"][0] == ".secret", SOON)
        .await;
    assert_eq!(cue["mask"], json!([]));
}

#[tokio::test]
async fn masked_values_never_reach_the_agent_and_actions_are_policed() {
    let app = spawn_app().await;
    let (_id, _t, mut c, mut a) = app.active_session().await;
    // A password value typed on the customer side.
    c.send(json!({"t": "mutations", "ops": [{"op": "value", "id": 8, "value": "hunter2"}]}))
        .await;
    let m = a.recv_type("mutations").await;
    assert!(!m.to_string().contains("hunter2"), "{m}");
    // A submit button inserted later is disabled for the agent.
    c.send(
        json!({"t": "mutations", "ops": [{"op": "insert", "parent": 4, "before": null,
        "node": {"id": 20, "type": "element", "tag": "button", "attrs": {"type": "submit"},
                 "children": [{"id": 21, "type": "text", "text": "Pay"}]}}]}),
    )
    .await;
    let m = a.recv_type("mutations").await;
    assert!(m.to_string().contains("data-cobrowse-disabled"), "{m}");
    // A new snapshot carrying the value: still masked.
    let mut snap = sample_snapshot("again");
    snap["root"]["children"][1]["children"][0]["children"][2]["value"] = json!("hunter2");
    c.send(snap).await;
    let s = a.recv_type("snapshot").await;
    assert!(!s.to_string().contains("hunter2"), "{s}");

    a.send(json!({"t": "control", "request": true})).await;
    c.recv_type("control").await;
    c.send(json!({"t": "control", "grant": true})).await;
    a.recv_type("mode").await;
    a.send(json!({"t": "input", "id": 8, "value": "x"})).await;
    assert_eq!(
        a.recv_type("denied").await,
        json!({"t": "denied", "action": "input", "reason": "masked"})
    );
    c.send(json!({"t": "mutations", "ops": [{"op": "insert", "parent": 4, "before": null,
        "node": {"id": 30, "type": "element", "tag": "button", "attrs": {"type": "submit"}, "children": []}}]}))
        .await;
    a.recv_type("mutations").await;
    a.send(json!({"t": "click", "id": 30})).await;
    assert_eq!(
        a.recv_type("denied").await,
        json!({"t": "denied", "action": "click", "reason": "disabled"})
    );
    a.send(json!({"t": "click", "id": 999})).await;
    assert_eq!(a.recv_type("denied").await["reason"], "unknown_target");
    // The plain text field is fine.
    a.send(json!({"t": "input", "id": 7, "value": "ok"})).await;
    assert_eq!(
        c.recv_type("input").await,
        json!({"t": "input", "id": 7, "value": "ok"})
    );
}

#[tokio::test]
async fn a_version_published_by_another_process_reaches_live_sessions() {
    // The CLI's `rules import --publish` writes the store only; the server
    // notices the new version and switches live sessions without a restart.
    let app = spawn_app().await;
    let (_id, _t, mut c, mut a) = app.active_session().await;
    let site = app.state.store.site_by_key("demo").await.unwrap().unwrap();
    let rules = vec![cobrowse::rules::Rule {
        selector: "p".into(),
        action: cobrowse::rules::Action::Mask,
        url: None,
        description: String::new(),
        enabled: true,
    }];
    app.state
        .store
        .save_draft(site.id, &rules, Default::default(), "cli")
        .await
        .unwrap();
    app.state
        .store
        .publish_draft(site.id, "cli", "mask paragraphs")
        .await
        .unwrap();
    let cue = c
        .recv_until(|m| m["t"] == "rules" && m["mask"][0] == "p", SOON)
        .await;
    assert_eq!(cue["block"], json!([]));
    // The agent's copy is re-masked: the paragraph's text arrives masked.
    let m = a
        .recv_until(
            |m| m["t"] == "mutations" && m.to_string().contains("•••••"),
            SOON,
        )
        .await;
    assert!(!m.to_string().contains("hello"), "{m}");
}

/// Issue 9 item 2: an agent joining gets the customer's page scroll and the
/// scroll of every element scrolled since the snapshot (latest position of
/// each), after the viewport; a new snapshot forgets them.
#[tokio::test]
async fn agent_join_gets_page_and_element_scrolls() {
    let app = spawn_app().await;
    let (id, token) = app.create_session().await;
    let mut c = app.customer(&id, &token).await;
    c.recv_type("rules").await;
    c.send(sample_snapshot("hello")).await;
    c.recv_type("rules").await;
    c.send(json!({"t": "scroll", "x": 0.0, "y": 300.0})).await;
    c.send(json!({"t": "scroll", "id": 5, "x": 0.0, "y": 40.0}))
        .await;
    c.send(json!({"t": "scroll", "id": 5, "x": 0.0, "y": 80.0}))
        .await;
    c.send(json!({"t": "scroll", "id": 4, "x": 10.0, "y": 0.0}))
        .await;
    // frames are handled in order: the answer to this one means all were
    c.send(json!({"t": "control", "grant": true})).await;
    assert_eq!(c.recv_error_code().await, "not_active");
    let mut a = app.agent(&id).await;
    a.recv_type("viewport").await;
    let mut scrolls = Vec::new();
    for _ in 0..3 {
        scrolls.push(a.recv(SOON).await.unwrap());
    }
    assert_eq!(
        scrolls,
        vec![
            json!({"t": "scroll", "x": 0.0, "y": 300.0}),
            json!({"t": "scroll", "id": 5, "x": 0.0, "y": 80.0}),
            json!({"t": "scroll", "id": 4, "x": 10.0, "y": 0.0}),
        ]
    );
    // a new document: nothing is replayed to a returning agent
    c.send(sample_snapshot("again")).await;
    a.recv_type("snapshot").await;
    let mut a2 = app.agent(&id).await;
    a2.recv_type("viewport").await;
    c.send(json!({"t": "pointer", "x": 1.0, "y": 2.0})).await;
    assert_eq!(a2.recv(SOON).await.unwrap()["t"], "pointer");
}
