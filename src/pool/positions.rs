//! How far each replica has applied and how long it takes to apply what this proxy wrote:
//! the facts read-your-writes routes by. `WriteLog` remembers when each recent write was
//! acknowledged through this instance; `Applied` is one server's freshest position (from the
//! monitor's position polls and from successful waits) with an estimate of its apply delay,
//! measured against that log. Pure: every function takes the time as an argument.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::routing::gtid::GtidPos;

/// Writes remembered per replication domain; older ones only make estimates less precise.
const LOG_LEN: usize = 1024;

/// When this proxy instance learned of each recent write, per GTID stream (a MariaDB domain
/// or a MySQL source; sequence numbers only grow within one).
#[derive(Debug, Default)]
pub struct WriteLog {
    domains: Mutex<Vec<(u64, DomainLog)>>,
}

/// One domain's `(sequence number, acknowledged at)`, oldest first.
type DomainLog = VecDeque<(u64, Instant)>;

impl WriteLog {
    /// A write acknowledged at `at`.
    pub fn record(&self, pos: &GtidPos, at: Instant) {
        let mut domains = self.domains.lock().unwrap_or_else(|e| e.into_inner());
        for (domain, seq) in pos.streams() {
            let i = match domains.iter().position(|(d, _)| *d == domain) {
                Some(i) => i,
                None => {
                    domains.push((domain, VecDeque::new()));
                    domains.len() - 1
                }
            };
            let log = &mut domains[i].1;
            if log.back().is_none_or(|&(s, _)| seq > s) {
                if log.len() == LOG_LEN {
                    log.pop_front();
                }
                log.push_back((seq, at));
            }
        }
    }

    /// When the proxy learned of the newest write `need` waits for (`None`: not in the log,
    /// so older than it or made elsewhere).
    pub fn learned_at(&self, need: &GtidPos) -> Option<Instant> {
        let domains = self.domains.lock().unwrap_or_else(|e| e.into_inner());
        let mut latest = None;
        for (domain, seq) in need.streams() {
            let (_, log) = domains.iter().find(|(d, _)| *d == domain)?;
            let &(_, at) = log.iter().find(|&&(s, _)| s >= seq)?;
            latest = latest.max(Some(at));
        }
        latest
    }

    /// For a server at `applied`: when the proxy learned of the newest logged write it has
    /// applied, and of the oldest one it has not.
    fn against(&self, applied: &GtidPos) -> (Option<Instant>, Option<Instant>) {
        let domains = self.domains.lock().unwrap_or_else(|e| e.into_inner());
        let (mut newest_done, mut oldest_pending) = (None, None::<Instant>);
        for (domain, log) in domains.iter() {
            let have = applied.stream_seq(*domain).unwrap_or(0);
            let split = log.partition_point(|&(s, _)| s <= have);
            newest_done = newest_done.max(split.checked_sub(1).map(|i| log[i].1));
            if let Some(&(_, at)) = log.get(split) {
                oldest_pending = Some(oldest_pending.map_or(at, |o| o.min(at)));
            }
        }
        (newest_done, oldest_pending)
    }
}

/// One server's applied position and apply delay.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// The freshest position known to be applied there.
    pub pos: Option<GtidPos>,
    /// When `pos` was last read from the server.
    pub seen: Option<Instant>,
    /// How long after this proxy acknowledged a write the server has applied it (the
    /// latest measurement, raised while a write stays unapplied longer than that).
    pub delay: Duration,
    /// The acknowledgement time of the newest write a measurement was taken from.
    measured_from: Option<Instant>,
    /// `delay` comes from an observation (until then, nobody waits on this server).
    estimated: bool,
}

impl Applied {
    /// A position read from the server at `now`.
    pub fn observe(&mut self, pos: GtidPos, now: Instant, log: &WriteLog) {
        let (newest_done, oldest_pending) = log.against(&pos);
        if let Some(t) = newest_done
            && self.measured_from.is_none_or(|m| t > m)
        {
            // Applied since the last look, so it took at least from its acknowledgement to
            // that look (0 if acknowledged after it): the optimistic end, since a wait that
            // runs out raises the figure anyway.
            self.delay = self.seen.map_or(Duration::ZERO, |seen| seen.saturating_duration_since(t));
            self.measured_from = Some(t);
            self.estimated = true;
        }
        if let Some(t) = oldest_pending {
            self.delay = self.delay.max(now.saturating_duration_since(t));
            self.estimated = true;
        }
        self.pos = Some(pos);
        self.seen = Some(now);
    }

    /// A position the server proved to have applied (a successful `MASTER_GTID_WAIT`).
    pub fn proven(&mut self, pos: &GtidPos) {
        self.pos.get_or_insert_with(GtidPos::default).merge(pos);
    }

    /// A wait of `budget` for a write learned at `learned` ran out at `now`: the server is at
    /// least that far behind, and not worth a wait of that budget until measured again.
    pub fn wait_failed(&mut self, learned: Option<Instant>, budget: Duration, now: Instant) {
        let behind = learned.map_or(budget, |t| now.saturating_duration_since(t));
        self.delay = self.delay.max(behind).max(budget);
        self.estimated = true;
    }

    pub fn covers(&self, need: &GtidPos) -> bool {
        self.pos.as_ref().is_some_and(|p| p.covers(need))
    }

    /// How long until the server is expected to have applied `need`, learned at `learned`
    /// (`None`: in the log no more, taken as just now). `None` when its position or its
    /// delay is unknown.
    pub fn expected_wait(&self, need: &GtidPos, learned: Option<Instant>, now: Instant) -> Option<Duration> {
        let pos = self.pos.as_ref()?;
        if pos.covers(need) {
            return Some(Duration::ZERO);
        }
        self.estimated.then(|| (learned.unwrap_or(now) + self.delay).saturating_duration_since(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(seq: u64) -> GtidPos {
        GtidPos::parse(&format!("0-1-{seq}")).unwrap()
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_log_tells_when_a_write_was_acknowledged() {
        let log = WriteLog::default();
        let t0 = Instant::now();
        log.record(&pos(10), t0);
        log.record(&pos(9), t0 + MS); // older: ignored
        log.record(&pos(12), t0 + 5 * MS);
        assert_eq!(log.learned_at(&pos(10)), Some(t0));
        assert_eq!(log.learned_at(&pos(11)), Some(t0 + 5 * MS), "the write that covers it");
        assert_eq!(log.learned_at(&pos(13)), None);
        assert_eq!(log.learned_at(&GtidPos::parse("1-1-1").unwrap()), None, "unknown domain");
        assert_eq!(log.against(&pos(10)), (Some(t0), Some(t0 + 5 * MS)));
        assert_eq!(log.against(&pos(12)), (Some(t0 + 5 * MS), None));
    }

    #[test]
    fn a_replica_one_second_behind_is_not_worth_waiting_for() {
        let log = WriteLog::default();
        let t0 = Instant::now();
        let mut r = Applied::default();
        r.observe(pos(0), t0, &log);
        for i in 1..=30u64 {
            log.record(&pos(i), t0 + Duration::from_millis(50 * i));
        }
        // At 1.5 s it has applied what was acknowledged up to 0.5 s.
        let now = t0 + Duration::from_millis(1500);
        r.observe(pos(10), now, &log);
        assert_eq!(r.delay, Duration::from_millis(950), "write 11, acknowledged at 0.55 s, is pending");
        // At 1.55 s it has write 11 too (acknowledged 0.95 s before the last look).
        r.observe(pos(11), now + Duration::from_millis(50), &log);
        assert_eq!(r.delay, Duration::from_millis(950));
        let need = pos(30);
        let wait = r.expected_wait(&need, log.learned_at(&need), now).unwrap();
        assert_eq!(wait, Duration::from_millis(950), "far above any wait budget");
        assert_eq!(r.expected_wait(&pos(10), None, now), Some(Duration::ZERO), "covered");
    }

    #[test]
    fn a_caught_up_replica_is_expected_within_milliseconds() {
        let log = WriteLog::default();
        let t0 = Instant::now();
        let mut r = Applied::default();
        r.observe(pos(0), t0, &log);
        assert_eq!(r.expected_wait(&pos(1), None, t0), None, "no measurement yet: not worth a wait");
        log.record(&pos(1), t0 + MS);
        r.observe(pos(1), t0 + 50 * MS, &log);
        assert_eq!(r.delay, Duration::ZERO, "acknowledged after the last look, applied before this one");
        log.record(&pos(2), t0 + 60 * MS);
        r.observe(pos(1), t0 + 63 * MS, &log);
        assert_eq!(r.delay, 3 * MS, "pending for 3 ms");
        let wait = r.expected_wait(&pos(2), log.learned_at(&pos(2)), t0 + 61 * MS);
        assert_eq!(wait, Some(2 * MS));
    }

    #[test]
    fn a_stalled_replica_raises_its_delay() {
        let log = WriteLog::default();
        let t0 = Instant::now();
        let mut r = Applied::default();
        log.record(&pos(1), t0);
        r.observe(pos(1), t0 + MS, &log);
        log.record(&pos(2), t0 + 10 * MS);
        r.observe(pos(1), t0 + 800 * MS, &log);
        assert_eq!(r.delay, 790 * MS, "still not applied after 790 ms");
        r.wait_failed(log.learned_at(&pos(2)), 50 * MS, t0 + 2000 * MS);
        assert_eq!(r.delay, 1990 * MS);
        let mut fresh = Applied::default();
        fresh.observe(pos(2), t0, &WriteLog::default());
        fresh.wait_failed(None, 50 * MS, t0);
        assert_eq!(fresh.delay, 50 * MS, "a wait that ran out: at least the budget behind");
        r.proven(&pos(2));
        assert!(r.covers(&pos(2)));
        assert_eq!(Applied::default().expected_wait(&pos(1), None, t0), None, "position unknown");
    }
}
