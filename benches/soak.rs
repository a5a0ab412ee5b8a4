//! Soak: `SESSIONS` live sessions (default 1,000) of synthetic customers and
//! agents on loopback against the real server in-process, for a bounded
//! time (`SECONDS`, default 60) or batch count (`BATCHES` per session), each
//! customer sending `RATE` random mutation batches per second (default 1;
//! 0 = closed loop) over a page full of secrets. At the end every agent copy
//! is checked against the oracle; prints throughput, latency percentiles,
//! memory per session and CPU per batch, and exits non-zero on any privacy
//! violation, oracle mismatch or lost session. The harness is
//! `tests/common/soak.rs` (shared with the short soak in the test suite).
//!
//! The server runs on its own tokio runtime (threads `soak-server`), the
//! clients on another (`soak-client`), so the clients' CPU time can be told
//! apart; memory is the whole process (server and clients).
//!
//! Run: `cargo bench --bench soak` (env `SESSIONS`, `SECONDS`, `BATCHES`,
//! `RATE`, `SEED`). Each session needs 4 file descriptors in this process
//! (both ends of two loopback sockets).

#[path = "../tests/common/soak.rs"]
mod harness;

use harness::{SoakConfig, SoakServer, CLIENT_THREAD};
use std::time::Duration;

/// The allocator the server binary uses (src/main.rs).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Name of the threads of the server runtime.
const SERVER_THREAD: &str = "soak-server";

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn runtime(name: &str) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .enable_all()
        .build()
        .expect("runtime")
}

fn main() {
    // `cargo test --benches` runs this without `--bench`: keep that run tiny.
    let quick = !std::env::args().any(|a| a == "--bench");
    let sessions = env_u64("SESSIONS").unwrap_or(if quick { 4 } else { 1000 }) as usize;
    let batches = env_u64("BATCHES");
    let seconds = env_u64("SECONDS").or(match (batches, quick) {
        (Some(_), _) => None,
        (None, true) => Some(2),
        (None, false) => Some(60),
    });
    let cfg = SoakConfig {
        sessions,
        batches,
        duration: seconds.map(Duration::from_secs),
        rate: env_u64("RATE").unwrap_or(if quick { 10 } else { 1 }),
        seed: env_u64("SEED").unwrap_or(1),
        stall: Duration::from_secs(60),
        setup_concurrency: 32,
    };

    let need = 4 * sessions as u64 + 256;
    match harness::open_files_limit() {
        Some(limit) if limit < need => {
            eprintln!(
                "soak: {sessions} sessions need about {need} open files in this process \
                 (both ends of 2 loopback sockets per session, plus the database); the limit \
                 is {limit}. Raise it (`ulimit -n {need}`) or lower SESSIONS."
            );
            std::process::exit(2);
        }
        Some(limit) => println!("open files limit {limit} (need about {need})"),
        None => println!("open files limit unknown (need about {need})"),
    }
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!("load average at start: {}", load.trim());
    }
    println!(
        "soak: {sessions} sessions, {}, rate {}",
        match (cfg.batches, cfg.duration) {
            (Some(b), Some(d)) => format!("{b} batches or {d:?} per session"),
            (Some(b), None) => format!("{b} batches per session"),
            (None, Some(d)) => format!("{d:?}"),
            (None, None) => "unbounded".into(),
        },
        cfg.rate
    );

    let server_rt = runtime(SERVER_THREAD);
    let client_rt = runtime(CLIENT_THREAD);
    let report = client_rt.block_on(async {
        let mut server = SoakServer::start(cfg.sessions, server_rt.handle()).await;
        server.publish_rules().await;
        let report = harness::run(&cfg, &server).await;
        server.shutdown().await;
        report
    });
    report.print();
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!("load average at end: {}", load.trim());
    }
    let failures = report.failures();
    if !failures.is_empty() {
        for f in &failures {
            eprintln!("soak FAILED: {f}");
        }
        std::process::exit(1);
    }
    println!(
        "soak passed: every agent copy equals the oracle, no privacy violation, no lost session"
    );
}
