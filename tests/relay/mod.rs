//! WebSocket relay and session rules (design §3, §6), over real sockets.

mod backpressure;
mod bad_input;
mod fail_closed;
mod lifecycle;
mod timeouts;
