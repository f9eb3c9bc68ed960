use std::sync::Mutex;
use std::sync::atomic::AtomicU32;

use super::checkout::weighted_order;
use super::*;

/// A fake backend: connections are numbers; addresses starting with "down" refuse.
#[derive(Default)]
struct Fake {
    opened: AtomicU32,
    attempts: AtomicU32,
    resets: Mutex<Vec<u32>>,
}

#[derive(Debug, thiserror::Error)]
#[error("fake connect error")]
struct FakeError;

impl Connector for Fake {
    type Conn = u32;
    type Key = &'static str;
    type Error = FakeError;
    async fn connect(&self, server: &ServerId, _key: &&'static str) -> Result<u32, FakeError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if server.address.starts_with("down") {
            return Err(FakeError);
        }
        Ok(self.opened.fetch_add(1, Ordering::SeqCst) + 1)
    }
    async fn reset(&self, conn: &mut u32) -> bool {
        self.resets.lock().unwrap().push(*conn);
        true
    }
    fn is_server_down(_: &FakeError) -> bool {
        true
    }
}

fn config(servers: &[(&str, u32)], max: u32, checkout_ms: u64) -> Config {
    let mut text = format!("[pool]\ncheckout_timeout_ms = {checkout_ms}\nbackoff_initial_ms = 5000\n");
    for (addr, hg) in servers {
        text += &format!("[[servers]]\nhostgroup = {hg}\naddress = \"{addr}\"\nmax_connections = {max}\n");
    }
    text += &format!("[[users]]\nusername = \"u\"\npassword = \"p\"\ndefault_hostgroup = {}\n", servers[0].1);
    Config::parse(&text, "t", &|_| None).unwrap()
}

fn yes(_: &u32) -> bool {
    true
}

#[tokio::test]
async fn reuses_idle_connections_per_key() {
    let pools = Pools::new(&config(&[("a:1", 0)], 5, 100), Arc::new(Fake::default()));
    let c = pools.checkout(0, &"k1", &yes, &yes).await.unwrap();
    assert!(!c.reused);
    pools.checkin(c);
    let mut c = pools.checkout(0, &"k1", &yes, &yes).await.unwrap();
    assert!(c.reused);
    assert_eq!(*c.conn(), 1);
    let other = pools.checkout(0, &"k2", &yes, &yes).await.unwrap();
    assert_eq!(*{ other }.conn(), 2, "a different key never shares a connection");
    let refuse = |c: &u32| *c != 1;
    pools.checkin(c);
    let mut c = pools.checkout(0, &"k1", &refuse, &refuse).await.unwrap();
    assert_eq!(*c.conn(), 3, "an idle connection the caller rejects is not handed out");
}

#[tokio::test]
async fn cap_makes_waiters_wait_then_times_out_naming_hostgroup() {
    let pools = Pools::new(&config(&[("a:1", 7)], 1, 200), Arc::new(Fake::default()));
    let held = pools.checkout(7, &"k", &yes, &yes).await.unwrap();
    let err = pools.checkout(7, &"k", &yes, &yes).await.err().unwrap();
    assert!(err.to_string().starts_with("no backend connection in hostgroup 7 within"), "{err}");
    assert_eq!(pools.servers()[0].open_count(), 1);
    let p2 = pools.clone();
    let waiter = tokio::spawn(async move { p2.checkout(7, &"k", &yes, &yes).await.map(|mut c| *c.conn()) });
    tokio::time::sleep(Duration::from_millis(20)).await;
    pools.checkin(held);
    assert_eq!(waiter.await.unwrap().unwrap(), 1, "the waiter gets the returned connection");
}

#[tokio::test]
async fn full_pool_closes_idle_connection_of_another_key() {
    let pools = Pools::new(&config(&[("a:1", 0)], 1, 200), Arc::new(Fake::default()));
    let c = pools.checkout(0, &"k1", &yes, &yes).await.unwrap();
    pools.checkin(c);
    let mut c = pools.checkout(0, &"k2", &yes, &yes).await.unwrap();
    assert_eq!(*c.conn(), 2);
    assert_eq!(pools.servers()[0].idle_count(), 0);
}

#[tokio::test]
async fn dead_server_backs_off_and_errors_fast() {
    let fake = Arc::new(Fake::default());
    let pools = Pools::new(&config(&[("down:1", 0)], 5, 5000), fake.clone());
    let err = pools.checkout(0, &"k", &yes, &yes).await.err().unwrap();
    assert!(
        err.to_string()
            .contains("no healthy server in hostgroup 0 (down:1: backing off after: fake connect error)"),
        "{err}"
    );
    let err = pools.checkout(0, &"k", &yes, &yes).await.err().unwrap();
    assert!(matches!(err, PoolError::Unreachable { hostgroup: 0, .. }));
    assert_eq!(
        fake.attempts.load(Ordering::SeqCst),
        1,
        "while backing off, no connect is tried and nobody waits"
    );
    assert!(matches!(
        pools.checkout(3, &"k", &yes, &yes).await,
        Err(PoolError::EmptyHostgroup { hostgroup: 3 })
    ));
}

#[tokio::test]
async fn a_dead_server_does_not_hide_a_live_one() {
    let pools = Pools::new(&config(&[("down:1", 1), ("b:1", 1)], 5, 500), Arc::new(Fake::default()));
    for _ in 0..10 {
        let c = pools.checkout(1, &"k", &yes, &yes).await.unwrap();
        assert_eq!(c.server().address, "b:1");
        pools.checkin(c);
    }
}

#[tokio::test]
async fn dirty_checkin_resets_before_reuse() {
    let fake = Arc::new(Fake::default());
    let pools = Pools::new(&config(&[("a:1", 0)], 2, 200), fake.clone());
    let c = pools.checkout(0, &"k", &yes, &yes).await.unwrap();
    pools.checkin_dirty(c);
    for _ in 0..100 {
        if pools.servers()[0].idle_count() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut c = pools.checkout(0, &"k", &yes, &yes).await.unwrap();
    assert_eq!(*fake.resets.lock().unwrap(), vec![1]);
    assert_eq!(*c.conn(), 1);
}

#[test]
fn weighted_order_respects_weights() {
    let mut first = [0u32; 2];
    for _ in 0..3000 {
        first[weighted_order(&[0, 1], |i| if i == 0 { 1 } else { 3 })[0]] += 1;
    }
    assert!(first[1] > first[0] * 2, "{first:?}");
}

#[tokio::test]
async fn rebuild_keeps_remaining_servers_and_retires_removed_ones() {
    let pools = Pools::new(&config(&[("a:1", 0), ("b:1", 0)], 5, 200), Arc::new(Fake::default()));
    let idle = pools.checkout(0, &"k", &yes, &yes).await.unwrap();
    let addr = idle.server().address.clone();
    pools.checkin(idle);
    let held = pools.checkout(0, &"k", &yes, &yes).await.unwrap();
    let keep = if addr == "a:1" { "a:1" } else { "b:1" };
    let gone = if keep == "a:1" { "b:1" } else { "a:1" };
    let next = pools.rebuild(&config(&[(keep, 0)], 9, 200), Arc::new(Fake::default()));
    assert_eq!(next.servers().len(), 1);
    assert!(Arc::ptr_eq(&next.servers()[0], pools.servers().iter().find(|s| s.id.address == keep).unwrap()));
    assert_eq!(next.servers()[0].max_connections(), 9, "cap resized");
    let removed = pools.servers().iter().find(|s| s.id.address == gone).unwrap();
    assert!(!removed.active.load(Ordering::Acquire), "removed server retired");
    next.checkin(held); // returned to its own entry (kept or retired)
    for _ in 0..5 {
        let c = next.checkout(0, &"k", &yes, &yes).await.unwrap();
        assert_eq!(c.server().address, keep);
        next.checkin(c);
    }
}
