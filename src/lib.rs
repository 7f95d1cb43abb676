//! Adjudicator server runtime: actors, HTTP API, auth, metrics, configuration and CLI.

pub mod bench;
pub mod cli;
pub mod config;
pub mod http;
pub mod logging;
pub mod projector;
pub mod server;
pub mod store;
