//! Back-pressure: an agent that does not read never blocks the session or
//! grows an unbounded queue; it misses frames and then gets a fresh snapshot
//! of the current document.

use crate::common::{sample_snapshot, spawn_app_with, TestOptions, SOON};
use serde_json::json;
use std::time::Duration;

fn text_of(snap: &serde_json::Value) -> &str {
    snap["root"]["children"][1]["children"][0]["children"][0]["children"][0]["text"]
        .as_str()
        .unwrap_or("")
}

#[tokio::test]
async fn slow_agent_gets_a_fresh_snapshot_instead_of_a_backlog() {
    let mut opts = TestOptions::default();
    opts.queues.frames = 8;
    opts.queues.bytes = 512 * 1024;
    opts.limits.max_messages_per_sec = 100_000;
    let app = spawn_app_with(opts).await;
    let (_id, _t, mut c, mut a) = app.active_session().await;

    // ~30 MB of snapshots while the agent reads nothing: more than the socket
    // buffers and the 8-frame queue can hold.
    let filler = "x".repeat(100 * 1024);
    const N: usize = 300;
    for i in 0..N {
        c.send(sample_snapshot(&format!("snap {i} {filler}"))).await;
    }
    let last = format!("snap {} ", N - 1);
    // Keep the customer's socket drained (cues) so only the agent is slow.
    let drain =
        tokio::spawn(async move { while c.recv(Duration::from_secs(120)).await.is_some() {} });

    // Now the agent reads: it ends up with the latest document, having
    // received far fewer than N snapshots.
    let mut snapshots = 0;
    loop {
        let m = a
            .recv(Duration::from_secs(60))
            .await
            .expect("agent socket open");
        if m["t"] == "snapshot" {
            snapshots += 1;
            if text_of(&m).starts_with(&last) {
                break;
            }
        }
    }
    assert!(
        snapshots < N,
        "expected dropped frames, got all {snapshots}"
    );
    // After the resync the session is in step: messages flow normally.
    a.send(json!({"t": "pointer", "x": 7.0, "y": 7.0})).await;
    a.send(json!({"t": "end"})).await;
    a.recv_until(|m| m["t"] == "ended", SOON).await;
    drain.await.expect("customer drained");
}
