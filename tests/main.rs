//! The integration test binary: one module per topic.

mod e2e;
