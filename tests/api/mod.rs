//! HTTP routes, login, assets and the command line.

mod assets;
mod cli;
mod http;
mod login;
pub mod proxy;
mod security;
