//! HTTP routes, login, assets and the command line.

mod cli;
mod http;
mod login;
mod security;
