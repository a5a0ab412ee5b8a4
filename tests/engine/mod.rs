//! Tests of the privacy core (mirror, rules, rewrite engine, policy): leak
//! vectors as named unit tests, a property test against the oracle,
//! file-driven fixtures and the rules tooling.

mod end_state;
mod fixtures;
mod leaks;
mod prop;
mod scaling;
mod support;
mod tooling;
