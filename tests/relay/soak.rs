//! A short soak in the test suite (issue 10 item 4): 40 live sessions of
//! synthetic customers and agents over real sockets, each customer sending a
//! page full of secrets and then 30 random mutation batches (typing
//! passwords and card numbers key by key, class toggles that mask and
//! unmask, inserts, removes). At the end every agent copy equals the
//! oracle's rewrite of its customer's copy under the rules in force, no
//! agent frame carried a secret, and no session was lost. No timing
//! assertions; waits are deadlines, not sleeps. The harness is
//! `tests/common/soak.rs`, shared with `benches/soak.rs`.

#[path = "../common/soak.rs"]
mod harness;

use harness::{SoakConfig, SoakServer};
use std::time::Duration;

fn config(rate: u64, seed: u64) -> SoakConfig {
    SoakConfig {
        sessions: 40,
        batches: Some(30),
        duration: None,
        rate,
        seed,
        stall: Duration::from_secs(60),
        setup_concurrency: 8,
    }
}

async fn soak(cfg: SoakConfig) -> harness::Report {
    // Both ends of two loopback sockets per session live in this process.
    if let Some(limit) = harness::open_files_limit() {
        assert!(
            limit >= 4 * cfg.sessions as u64 + 64,
            "open files limit {limit} too low"
        );
    }
    let mut server = SoakServer::start(cfg.sessions, &tokio::runtime::Handle::current()).await;
    server.publish_rules().await;
    let report = harness::run(&cfg, &server).await;
    server.shutdown().await;
    report.print();
    report
}

fn assert_clean(r: &harness::Report, sessions: usize, batches: u64) {
    assert!(r.failures().is_empty(), "{:?}", r.failures());
    assert_eq!(r.violations, 0, "privacy: {:?}", r.violation_samples);
    assert!(r.mismatches.is_empty(), "oracle: {:?}", r.mismatches);
    assert!(r.lost.is_empty(), "lost sessions: {:?}", r.lost);
    assert_eq!(r.batches_sent, sessions as u64 * batches);
    // Every batch reached its agent as `mutations`, or a resync covered it.
    assert!(
        r.batches_delivered == r.batches_sent || r.agent_resyncs > 0,
        "{} of {} delivered without any resync",
        r.batches_delivered,
        r.batches_sent
    );
    assert!(r.agent_frames > r.batches_delivered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_paced_sessions_end_equal_to_the_oracle_without_leaks_or_losses() {
    let r = soak(config(50, 1)).await;
    assert_clean(&r, 40, 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_closed_loop_sessions_end_equal_to_the_oracle_without_leaks_or_losses() {
    let r = soak(config(0, 2)).await;
    assert_clean(&r, 40, 30);
}
