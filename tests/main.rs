//! One integration test binary; modules by topic.

mod engine;
