//! Property-based fuzz tests on stable Rust (issue 8, items 7 and 10): the
//! frame decoder, op application, HTML import/export, the YAML rule-pack
//! loader and the selector parser fed arbitrary, JSON/HTML/YAML/selector-like
//! and mutated input. Each must return `Ok` or a clean `Err`: never a panic
//! (proptest catches and shrinks it), never a stack overflow (the process
//! aborts), never a hang (every case is bounded in size, so a hang shows as
//! a test timeout). `depth` holds the deterministic deep-input cases that show
//! every recursive walk is reached only with a bounded depth.
//!
//! Cases per target: each has a default sized so the whole module runs in
//! about a minute in a debug build; `PROPTEST_CASES=<n>` (or `FUZZ_CASES`,
//! which wins if both are set) runs `n` cases per target instead (see
//! docs/security.md, "Fuzzing").

mod depth;
mod frames;
mod html;
mod ops;
mod selectors;
mod yaml;

/// Cases for one target: `FUZZ_CASES` if set, else `PROPTEST_CASES` (the
/// variable proptest itself reads, which a fixed `cases` would otherwise
/// override), else `default`.
pub fn cases(default: u32) -> u32 {
    ["FUZZ_CASES", "PROPTEST_CASES"]
        .iter()
        .find_map(|k| std::env::var(k).ok().and_then(|v| v.trim().parse().ok()))
        .unwrap_or(default)
}

/// A proptest config with `cases(default)` cases and no regression files
/// written from CI runs (failures print their minimal input).
pub fn config(default: u32) -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        cases: cases(default),
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    }
}

/// Run `f` on a thread with the stack of a tokio worker (2 MiB), so a walk
/// that would overflow a server worker overflows here too (and aborts the
/// test binary, which fails the run).
pub fn on_worker_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let handle = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(f)
        .expect("spawn test thread");
    match handle.join() {
        Ok(v) => v,
        Err(p) => std::panic::resume_unwind(p),
    }
}
