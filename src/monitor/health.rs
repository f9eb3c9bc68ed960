//! Pure health decisions: a probe's verdict for a role, hysteresis over consecutive verdicts,
//! and which server is the writer.

use crate::pool::health::ShunReason;
use crate::routing::gtid::GtidPos;

/// What one probe saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probe {
    pub read_only: bool,
    pub gtid: Option<GtidPos>,
    /// `None`: not a replica (SHOW SLAVE STATUS is empty).
    pub replication: Option<Replication>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replication {
    pub io_running: bool,
    pub sql_running: bool,
    /// `Seconds_Behind_Master`; `None` when unknown (threads stopped).
    pub lag_seconds: Option<u64>,
    pub last_error: Option<String>,
}

/// Good, or bad with a reason and a detail for logs and the admin API.
pub type Verdict = Result<(), (ShunReason, String)>;

/// Judges a probe for a server serving reads.
pub fn reader_verdict(probe: &Result<Probe, String>, max_lag: u64, is_writer: bool) -> Verdict {
    let p = probe.as_ref().map_err(|e| (ShunReason::Down, e.clone()))?;
    if is_writer {
        return Ok(());
    }
    if !p.read_only {
        return Err((ShunReason::ReadOnlyOff, "read_only=OFF on a server that is not the writer".into()));
    }
    let Some(r) = &p.replication else {
        return Err((ShunReason::ReplicationStopped, "not replicating (SHOW SLAVE STATUS is empty)".into()));
    };
    if !(r.io_running && r.sql_running) {
        let threads = format!("IO thread {}, SQL thread {}", running(r.io_running), running(r.sql_running));
        return Err(match &r.last_error {
            Some(e) => (ShunReason::ReplicationBroken, format!("{threads}: {e}")),
            None => (ShunReason::ReplicationStopped, threads),
        });
    }
    match r.lag_seconds {
        Some(lag) if lag > max_lag => Err((ShunReason::Lagging, format!("{lag} s behind (max {max_lag} s)"))),
        _ => Ok(()),
    }
}

fn running(on: bool) -> &'static str {
    if on { "running" } else { "stopped" }
}

/// Consecutive verdicts → state, with hysteresis.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tracker {
    pub shunned: Option<(ShunReason, String)>,
    bad: u32,
    good: u32,
}

/// A state change worth one log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Shunned(ShunReason, String),
    Recovered,
}

impl Tracker {
    pub fn observe(&mut self, verdict: Verdict, shun_after: u32, recover_after: u32) -> Option<Change> {
        match verdict {
            Err((reason, detail)) => {
                self.good = 0;
                self.bad += 1;
                match &mut self.shunned {
                    None if self.bad >= shun_after => {
                        self.shunned = Some((reason, detail.clone()));
                        Some(Change::Shunned(reason, detail))
                    }
                    Some((r, d)) if *r == reason => {
                        *d = detail;
                        None
                    }
                    Some(_) => {
                        self.shunned = Some((reason, detail.clone()));
                        Some(Change::Shunned(reason, detail))
                    }
                    None => None,
                }
            }
            Ok(()) => {
                self.bad = 0;
                self.good += 1;
                if self.shunned.is_some() && self.good >= recover_after {
                    self.shunned = None;
                    return Some(Change::Recovered);
                }
                None
            }
        }
    }
}

/// Picks the writer: the current one while it is up and writable; otherwise the first
/// server (in config order) that is up and writable; otherwise the current one (which then
/// fails fast as down or read-only).
pub fn choose_writer(current: Option<usize>, up_and_writable: &[bool]) -> Option<usize> {
    if let Some(c) = current
        && up_and_writable.get(c) == Some(&true)
    {
        return Some(c);
    }
    up_and_writable.iter().position(|&w| w).or(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(lag: Option<u64>) -> Result<Probe, String> {
        let replication =
            Replication { io_running: true, sql_running: true, lag_seconds: lag, last_error: None };
        Ok(Probe { read_only: true, gtid: None, replication: Some(replication) })
    }

    #[test]
    fn verdicts_for_readers() {
        assert_eq!(reader_verdict(&replica(Some(3)), 10, false), Ok(()));
        assert_eq!(reader_verdict(&replica(Some(11)), 10, false).unwrap_err().0, ShunReason::Lagging);
        assert_eq!(
            reader_verdict(&replica(Some(50)), 10, true),
            Ok(()),
            "the writer is never shunned for lag"
        );
        assert_eq!(reader_verdict(&Err("refused".into()), 10, false).unwrap_err().0, ShunReason::Down);
        assert_eq!(reader_verdict(&Err("refused".into()), 10, true).unwrap_err().0, ShunReason::Down);
        let mut stopped = replica(None).unwrap();
        stopped.replication.as_mut().unwrap().sql_running = false;
        assert_eq!(
            reader_verdict(&Ok(stopped.clone()), 10, false).unwrap_err().0,
            ShunReason::ReplicationStopped
        );
        stopped.replication.as_mut().unwrap().last_error = Some("Duplicate entry".into());
        assert_eq!(reader_verdict(&Ok(stopped), 10, false).unwrap_err().0, ShunReason::ReplicationBroken);
        let writable = Probe { read_only: false, ..replica(None).unwrap() };
        assert_eq!(reader_verdict(&Ok(writable), 10, false).unwrap_err().0, ShunReason::ReadOnlyOff);
        let lone = Probe { read_only: true, ..Probe::default() };
        assert_eq!(reader_verdict(&Ok(lone), 10, false).unwrap_err().0, ShunReason::ReplicationStopped);
    }

    #[test]
    fn hysteresis() {
        let mut t = Tracker::default();
        let bad = || Err((ShunReason::Down, "x".to_string()));
        assert_eq!(t.observe(bad(), 2, 3), None);
        assert_eq!(t.observe(bad(), 2, 3), Some(Change::Shunned(ShunReason::Down, "x".into())));
        assert_eq!(t.observe(bad(), 2, 3), None, "logged once");
        assert_eq!(t.observe(Ok(()), 2, 3), None);
        assert_eq!(t.observe(Ok(()), 2, 3), None);
        assert_eq!(t.observe(bad(), 2, 3), None, "a bad check restarts the count");
        for _ in 0..2 {
            t.observe(Ok(()), 2, 3);
        }
        assert_eq!(t.observe(Ok(()), 2, 3), Some(Change::Recovered));
        assert!(t.shunned.is_none());
    }

    #[test]
    fn writer_choice() {
        assert_eq!(choose_writer(Some(0), &[true, true, false]), Some(0), "keep a healthy writer");
        assert_eq!(choose_writer(Some(0), &[false, false, true]), Some(2), "fail over");
        assert_eq!(choose_writer(Some(0), &[false, false, false]), Some(0), "nothing better");
        assert_eq!(choose_writer(None, &[false, true]), Some(1));
    }
}
