//! WebSocket relay and session rules (design §3, §6), over real sockets.

mod bad_input;
mod lifecycle;
mod timeouts;
