//! The agent's day and the customer's tabs (issue 9 item 4), over real
//! sockets: `away` when the viewer closes, resuming or ending (`agent_left`)
//! a session left behind and joining the next one at once, and several
//! customer tabs (`tabs=1`) of which only the front one feeds the agent.

use crate::common::{sample_snapshot, spawn_app, TestApp, WsClient, SOON};
use serde_json::{json, Value};

/// A customer tab (v1.3 snippet) of session `id`.
async fn tab(app: &TestApp, id: &str, token: &str) -> WsClient {
    WsClient::connect(
        &format!("{}/ws/customer/{id}?token={token}&tabs=1", app.ws_base),
        None,
    )
    .await
    .expect("customer tab socket")
}

/// The agent socket that ends session `id` instead of joining it.
async fn leave(app: &TestApp, id: &str, bearer: &str) -> WsClient {
    WsClient::connect(
        &format!("{}/ws/agent/{id}?leave=1", app.ws_base),
        Some(bearer),
    )
    .await
    .expect("leave socket")
}

/// A snapshot of a page whose paragraph says `text`, under `epoch`.
fn page(text: &str, epoch: u32) -> Value {
    let mut s = sample_snapshot(text);
    s["epoch"] = json!(epoch);
    s
}

/// Whether a snapshot frame sent to the agent contains `text`.
fn shows(m: &Value, text: &str) -> bool {
    m["t"] == "snapshot" && m.to_string().contains(text)
}

#[tokio::test]
async fn away_frame_marks_the_agent_away_at_once_and_closes_the_socket() {
    let app = spawn_app().await;
    let (id, _token, mut c, mut a) = app.active_session().await;
    a.send(json!({"t": "away"})).await;
    c.recv_until(|m| m == &json!({"t": "presence", "agent": "away"}), SOON)
        .await;
    a.expect_closed(SOON).await;
    // The session waits for the agent (grace), who can come back.
    let mut back = app.agent(&id).await;
    back.recv_type("snapshot").await;
    c.recv_until(|m| m == &json!({"t": "presence", "agent": "present"}), SOON)
        .await;
}

#[tokio::test]
async fn agent_who_closed_the_viewer_resumes_or_ends_it_and_joins_the_next_at_once() {
    let app = spawn_app().await;
    let (first, _t1, mut c1, a) = app.active_session().await;
    // The viewer closes without Exit: the customer learns it at once.
    a.close().await;
    c1.recv_until(|m| m == &json!({"t": "presence", "agent": "away"}), SOON)
        .await;
    let agent1 = app
        .state
        .store
        .user_by_name("agent1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        app.state.registry.agent_session(agent1.id).as_deref(),
        Some(first.as_str()),
        "the viewer is told which session the agent left"
    );

    // A second customer is waiting; joining it names the session left behind.
    let (second, t2) = app.create_session().await;
    let mut c2 = app.customer(&second, &t2).await;
    c2.recv_type("rules").await;
    c2.send(sample_snapshot("second customer")).await;
    c2.recv_type("rules").await;
    let mut busy = app.agent(&second).await;
    let err = busy.recv_type("error").await;
    assert_eq!(err["code"], "agent_busy");
    assert_eq!(err["session"], first.as_str());
    busy.expect_closed(SOON).await;

    // Only the session's own agent may end it this way.
    let mut other = leave(&app, &first, &app.agent2_token).await;
    assert_eq!(other.recv_error_code().await, "not_your_session");
    other.expect_closed(SOON).await;
    assert!(app.state.registry.is_live(&first));

    // Resume works while it is live…
    let mut resumed = app.agent(&first).await;
    assert_eq!(resumed.recv_type("session").await["state"], "active");
    resumed.close().await;
    c1.recv_until(|m| m == &json!({"t": "presence", "agent": "away"}), SOON)
        .await;

    // …or end it: the customer sees `agent_left`, and the agent is free.
    let mut gone = leave(&app, &first, &app.agent_token).await;
    assert_eq!(gone.recv_ended().await, "agent_left");
    gone.expect_closed(SOON).await;
    assert_eq!(c1.recv_ended().await, "agent_left");
    assert_eq!(
        app.ended_history(&first).await.end_reason.as_deref(),
        Some("agent_left")
    );
    assert_eq!(app.state.registry.agent_session(agent1.id), None);

    let mut next = app.agent(&second).await;
    let s = next.recv_type("session").await;
    assert_eq!(s["state"], "active");
    assert!(shows(&next.recv_type("snapshot").await, "second customer"));

    // The rules still hold: no re-join of the ended session, no second one.
    let mut again = app.agent(&first).await;
    assert_eq!(again.recv_error_code().await, "session_ended");
    let mut other = app.agent_with(&second, &app.agent2_token).await;
    assert_eq!(other.recv_error_code().await, "session_taken");
    let mut late = leave(&app, &first, &app.agent_token).await;
    assert_eq!(late.recv_error_code().await, "session_ended");
}

#[tokio::test]
async fn the_agent_sees_the_front_tab_and_tabs_in_the_back_cannot_feed_the_view() {
    let app = spawn_app().await;
    let (id, token) = app.create_session().await;
    let mut a_tab = tab(&app, &id, &token).await;
    assert_eq!(a_tab.recv_type("session").await["state"], "waiting");
    assert_eq!(
        a_tab.recv(SOON).await.unwrap(),
        json!({"t": "tab", "front": true})
    );
    a_tab.recv_type("rules").await;
    a_tab.send(page("tab one", 11)).await;
    a_tab.recv_type("rules").await;
    let mut agent = app.agent(&id).await;
    assert!(shows(&agent.recv_type("snapshot").await, "tab one"));
    assert_eq!(agent.recv(SOON).await.unwrap()["t"], "viewport");

    // A second tab joins the same session, in the back.
    let mut b_tab = tab(&app, &id, &token).await;
    b_tab.recv_type("session").await;
    assert_eq!(
        b_tab.recv(SOON).await.unwrap(),
        json!({"t": "tab", "front": false})
    );
    assert_eq!(
        b_tab.recv(SOON).await.unwrap(),
        json!({"t": "agent", "name": "agent1"})
    );
    b_tab.recv_type("rules").await;
    // Nothing it sends reaches the agent: document, pointer, scroll, viewport.
    b_tab.send(page("sneaky", 22)).await;
    b_tab
        .send(json!({"t": "mutations", "epoch": 11, "ops": [{"op": "text", "id": 6, "text": "sneaky"}]}))
        .await;
    b_tab
        .send(json!({"t": "navigate", "epoch": 11, "url": "http://shop.test/sneaky", "title": "x"}))
        .await;
    b_tab
        .send(json!({"t": "pointer", "x": 666.0, "y": 666.0}))
        .await;
    b_tab
        .send(json!({"t": "viewport", "w": 666.0, "h": 666.0}))
        .await;
    b_tab
        .send(json!({"t": "scroll", "x": 0.0, "y": 666.0}))
        .await;
    b_tab.send_text("{not json".into()).await; // refused: no resync of the front tab
    a_tab
        .send(json!({"t": "pointer", "x": 1.0, "y": 2.0}))
        .await;
    assert_eq!(
        agent.recv(SOON).await.unwrap(),
        json!({"t": "pointer", "x": 1.0, "y": 2.0}),
        "the first frame after the back tab's is the front tab's pointer"
    );

    // The back tab comes to the front: it is told, the old front too, and
    // its fresh snapshot (new epoch) replaces the agent's document.
    b_tab.send(json!({"t": "front"})).await;
    b_tab
        .recv_until(|m| m == &json!({"t": "tab", "front": true}), SOON)
        .await;
    a_tab
        .recv_until(|m| m == &json!({"t": "tab", "front": false}), SOON)
        .await;
    // The old front's frames are dropped from now on, even with its epoch.
    a_tab
        .send(json!({"t": "mutations", "epoch": 11, "ops": [{"op": "text", "id": 6, "text": "stale"}]}))
        .await;
    a_tab
        .send(json!({"t": "pointer", "x": 9.0, "y": 9.0}))
        .await;
    b_tab.send(page("tab two", 33)).await;
    let snap = agent
        .recv_until(
            |m| m["t"] == "snapshot" || m["t"] == "mutations" || m["t"] == "pointer",
            SOON,
        )
        .await;
    assert!(shows(&snap, "tab two"), "{snap}");
    b_tab
        .send(json!({"t": "mutations", "epoch": 33, "ops": [{"op": "text", "id": 6, "text": "typed in two"}]}))
        .await;
    let ops = agent
        .recv_until(|m| m["t"] == "mutations" || m["t"] == "pointer", SOON)
        .await;
    assert!(ops.to_string().contains("typed in two"), "{ops}");
    assert!(
        !agent.seen.iter().any(|m| m.to_string().contains("stale")
            || m.to_string().contains("sneaky")
            || m.to_string().contains("666")),
        "a back tab's frame reached the agent: {:#?}",
        agent.seen
    );

    // Agent actions go to the front tab only.
    b_tab.send(json!({"t": "control", "grant": true})).await;
    agent
        .recv_until(|m| m == &json!({"t": "mode", "mode": "write"}), SOON)
        .await;
    a_tab
        .recv_until(|m| m == &json!({"t": "mode", "mode": "write"}), SOON)
        .await;
    agent.send(json!({"t": "click", "id": 5})).await;
    assert_eq!(
        b_tab.recv_until(|m| m["t"] == "click", SOON).await,
        json!({"t": "click", "id": 5})
    );

    // The front tab closes: the other one takes over and is asked for its page.
    b_tab.close().await;
    a_tab
        .recv_until(|m| m == &json!({"t": "tab", "front": true}), SOON)
        .await;
    a_tab.send(page("tab one again", 44)).await;
    let snap = agent.recv_type("snapshot").await;
    assert!(shows(&snap, "tab one again"), "{snap}");
    assert!(
        !a_tab.seen.iter().any(|m| m["t"] == "click"),
        "an action reached a tab in the back"
    );

    // Ending from any tab ends it in all.
    let mut c_tab = tab(&app, &id, &token).await;
    c_tab
        .recv_until(|m| m == &json!({"t": "tab", "front": false}), SOON)
        .await;
    c_tab.recv_type("rules").await;
    c_tab.send(json!({"t": "end"})).await;
    assert_eq!(c_tab.recv_ended().await, "customer_exit");
    assert_eq!(a_tab.recv_ended().await, "customer_exit");
    assert_eq!(agent.recv_ended().await, "customer_exit");
}

#[tokio::test]
async fn a_v1_customer_connection_still_replaces_the_tabs() {
    let app = spawn_app().await;
    let (id, token) = app.create_session().await;
    let mut t = tab(&app, &id, &token).await;
    t.recv_type("rules").await;
    let mut old = app.customer(&id, &token).await;
    assert_eq!(t.recv_error_code().await, "replaced");
    // A v1 snippet is never sent `tab`.
    let s = old.recv(SOON).await.unwrap();
    assert_eq!(s["t"], "session");
    assert_eq!(old.recv(SOON).await.unwrap()["t"], "rules");
}
