//! Adjudicator server runtime: actors, HTTP API, auth, metrics, configuration and CLI.

pub mod auth;
pub mod bootstrap;
pub mod cli;
pub mod commands;
pub mod config;
pub mod demo_store;
pub mod http;
pub mod lease;
pub mod logging;
pub mod memory;
pub mod metrics;
pub mod ops;
pub mod private_files;
pub mod projector;
pub mod routes;
pub mod server;
pub mod state;
pub mod store;
pub mod tls;
pub mod ws;
