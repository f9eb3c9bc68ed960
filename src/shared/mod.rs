//! The state the server, the sessions and the admin share: config and pools (swapped by
//! reloads), client limits, the session registry, login guards, counters, the write position
//! for read-your-writes. Built once by `server::run`; sessions update it, the admin reads
//! snapshots of it, and nothing here knows a session's internals.

mod context;
pub mod limits;
pub mod login;
pub mod pending;
pub mod registry;
pub mod rsa;
pub mod schemas;
pub mod stats;
pub mod throttle;
pub mod universal;
pub mod watched;

pub use context::{Context, ReloadRequest, request};
pub use limits::{Limits, Slot};
pub use registry::SWEEP_EVERY;
pub use stats::SessionStats;
