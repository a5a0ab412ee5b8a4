//! The one integration test binary: a real server on an ephemeral port, real
//! SQLite, real WebSocket and HTTP clients, headless Chromium (e2e), and the
//! engine's file-driven and property tests. Modules by topic.

mod admin;
mod api;
mod common;
mod e2e;
mod engine;
mod fuzz;
mod relay;
