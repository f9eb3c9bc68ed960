//! Integration tests against a real MariaDB primary + two GTID replicas started by the harness.

mod support;

mod auth;
mod autocommit;
mod cli;
mod compress;
mod deploy;
mod django;
mod dump;
mod extended;
mod fidelity;
mod hostile;
mod http;
mod import;
mod isolation;
mod lifecycle;
mod metrics;
mod mysql8;
mod node;
mod operations;
mod peers;
mod routing;
mod semantics;
mod setup;
mod sha2;
mod sql_admin;
mod tls;
mod visibility;
