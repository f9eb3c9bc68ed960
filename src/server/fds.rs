//! File descriptors: what the config needs, and the process limit raised to it at start (or a
//! refusal that says what to set); at run time, a reserve descriptor so that a client arriving
//! when the process is out of them still gets ERR 1040 instead of waiting in the backlog.

use crate::config::Config;

/// Descriptors beyond clients and backends: listeners, monitor and fetch connections, logs,
/// the config file, the runtime's own.
const SLACK: u64 = 64;

/// Descriptors the config can make the proxy hold at once.
pub fn needed(config: &Config) -> u64 {
    let clients = u64::from(config.proxy.max_connections) + u64::from(config.proxy.max_pending_logins);
    let backends: u64 = config.servers.iter().map(|s| u64::from(s.max_connections.get())).sum();
    // Each backend connection is held twice (its socket and the duplicate that can cut a
    // hung reply); each server also has a monitor connection (the writer a position fetch).
    clients + 2 * backends + 2 * config.servers.len() as u64 + SLACK
}

/// Raises the soft `RLIMIT_NOFILE` to what `config` needs (up to the hard limit). `Err` says
/// what to set when the hard limit is too low.
pub fn raise_limit(config: &Config) -> Result<u64, String> {
    let need = needed(config);
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the struct we pass and reads nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(format!("cannot read RLIMIT_NOFILE: {}", std::io::Error::last_os_error()));
    }
    if lim.rlim_cur >= need {
        return Ok(lim.rlim_cur);
    }
    if lim.rlim_max < need {
        return Err(format!(
            "proxy.max_connections ({}) + proxy.max_pending_logins ({}) + the servers' max_connections need \
             {need} file descriptors, but the hard limit is {}: raise it (ulimit -Hn {need}, LimitNOFILE={need} \
             in systemd, or the container's nofile ulimit) or lower those settings",
            config.proxy.max_connections, config.proxy.max_pending_logins, lim.rlim_max
        ));
    }
    let raised = libc::rlimit { rlim_cur: need, rlim_max: lim.rlim_max };
    // SAFETY: setrlimit reads the struct we pass.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return Err(format!("cannot raise RLIMIT_NOFILE to {need}: {}", std::io::Error::last_os_error()));
    }
    Ok(need)
}

/// One descriptor held back for the moment the process runs out: released to accept the
/// client that could not be accepted, which is then refused with ERR 1040 and closed.
pub struct Reserve(Option<std::fs::File>);

impl Reserve {
    pub fn new() -> Reserve {
        Reserve(std::fs::File::open("/dev/null").ok())
    }

    /// Whether `e` is the process (or system) being out of descriptors.
    pub fn is_exhaustion(e: &std::io::Error) -> bool {
        matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
    }

    /// Frees the reserve for one accept.
    pub fn release(&mut self) -> bool {
        self.0.take().is_some()
    }

    /// Takes the reserve again once the refused client is gone.
    pub fn restore(&mut self) {
        if self.0.is_none() {
            self.0 = std::fs::File::open("/dev/null").ok();
        }
    }
}

impl Default for Reserve {
    fn default() -> Self {
        Reserve::new()
    }
}
