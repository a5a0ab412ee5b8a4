//! WebSocket relay and session rules (design §3, §6), over real sockets.

mod abuse;
mod backpressure;
mod bad_input;
mod budgets;
mod compression;
mod day;
mod fail_closed;
mod inert;
mod lifecycle;
mod privacy_match;
mod privacy_render;
mod shadow;
mod soak;
mod timeouts;
