//! cobrowse: a self-hosted co-browse server with a server-side privacy
//! rewrite engine.
//!
//! A guided tour, following the data:
//! - [`protocol`]: wire messages (serde types) and their structural limits.
//! - [`dom`]: the mirror tree of a customer document (arena by node id), its
//!   `selectors::Element` implementation and the html5ever import.
//! - [`rules`]: rule model, YAML rule packs, URL patterns, compiled rule sets.
//! - [`rewrite`]: snapshot and batch rewriting with incremental invalidation,
//!   plus the from-scratch oracle the tests compare against.
//! - [`policy`]: checks of agent actions against mode, disabled and masked.
//!
//! The modules above form the engine: they import no web, database or async
//! code. The service around them:
//! - [`config`]: configuration from flags, environment and a TOML file.
//! - [`store`]: SQLite through sqlx (users, tokens, sites, rule versions,
//!   audit log, session history).
//! - [`session`]: the session registry, lifecycle state machine and one actor
//!   per live session.
//! - [`relay`]: the customer and agent WebSocket handlers.
//! - [`web`]: axum routers (API, agent viewer, admin editor, static assets).

pub mod config;
pub mod dom;
pub mod policy;
pub mod protocol;
pub mod relay;
pub mod rewrite;
pub mod rules;
pub mod session;
pub mod store;
pub mod web;
