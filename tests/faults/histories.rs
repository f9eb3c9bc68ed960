//! The history checker (`history`) run against what production does to a proxy: replicas
//! 1 s behind, a replica killed and revived, a replica hung by SIGSTOP, a `read_only`
//! switchover, and two proxy instances in universal mode. Every run must have 0 violations.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::history::{self, Report};
use crate::lag::Lagging;
use crate::support::cluster::Node;
use crate::support::{Proxy, cluster};
use crate::{Restore, fault_config, serial};

const MONITOR: &str = "interval_ms = 100\ntimeout_ms = 500\nshun_after = 2\nrecover_after = 2\n";

fn proxy_config(routing: &str) -> String {
    fault_config(MONITOR, &format!("{routing}{}", history::USERS))
}

/// Runs the clients on `ports` for `secs` while `fault` happens; checks the history against `writer`.
async fn scenario(
    name: &str,
    (ports, secs): (&[u16], u64),
    t: &str,
    writer: &Node,
    fault: impl Future<Output = ()>,
) -> Report {
    let (ops, ()) = tokio::join!(history::run(ports, t, Duration::from_secs(secs)), fault);
    let report = history::check(&ops, &history::rows_on(writer, t), writer.server_id);
    eprintln!("history, {name}: {report}");
    for v in report.violations.iter().take(10) {
        eprintln!("  {v}");
    }
    report
}

async fn blocking(f: impl FnOnce() + Send + 'static) {
    tokio::task::spawn_blocking(f).await.expect("cluster operation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_with_replicas_one_second_behind() {
    let _serial = serial().await;
    let t = history::create("hist_lag");
    let _lag = Lagging::one_second();
    let proxy = Proxy::start(&proxy_config("")).await;
    let report =
        scenario("replicas 1 s behind", (&[proxy.port()], 4), &t, &cluster().primary, async {}).await;
    assert!(report.violations.is_empty(), "{report}");
    assert!(report.reads > 0 && report.writes > 0, "{report}");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_with_a_replica_killed_and_revived() {
    let _serial = serial().await;
    let _restore = Restore;
    let t = history::create("hist_kill");
    let proxy = Proxy::start(&proxy_config("")).await;
    let fault = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        blocking(|| cluster().replicas[1].kill()).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        blocking(|| cluster().replicas[1].start()).await;
    };
    let report =
        scenario("a replica killed and revived", (&[proxy.port()], 6), &t, &cluster().primary, fault).await;
    assert!(report.violations.is_empty(), "{report}");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_with_a_replica_hung_by_sigstop() {
    let _serial = serial().await;
    let _restore = Restore;
    let t = history::create("hist_stop");
    let proxy = Proxy::start(&proxy_config("")).await;
    let fault = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        cluster().replicas[0].signal("STOP");
        tokio::time::sleep(Duration::from_secs(3)).await;
        cluster().replicas[0].signal("CONT");
    };
    let report =
        scenario("a replica stopped (SIGSTOP) for 3 s", (&[proxy.port()], 6), &t, &cluster().primary, fault)
            .await;
    cluster().replicas[0].signal("CONT");
    assert!(report.violations.is_empty(), "{report}");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_across_a_read_only_switchover() {
    let _serial = serial().await;
    let _restore = Restore;
    let t = history::create("hist_switch");
    let proxy = Proxy::start(&proxy_config("")).await;
    let fault = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        blocking(|| crate::switchover(true)).await;
    };
    let new = &cluster().replicas[0];
    let report = scenario("a read_only switchover", (&[proxy.port()], 5), &t, new, fault).await;
    assert!(report.violations.is_empty(), "{report}");
    proxy.shutdown().await;
}

/// Two instances, each client alternating between them per operation: in universal mode the
/// checker's scope is every write through either. Also measures the mode's costs against
/// the same run with no consistency at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_across_two_instances_in_universal_mode() {
    let _serial = serial().await;
    let mut p50 = Vec::new();
    for mode in ["none", "universal"] {
        let t = history::create(&format!("hist_{mode}"));
        let cfg = proxy_config(&format!("[routing]\nread_consistency = \"{mode}\"\n"));
        let (a, b) = (Proxy::start(&cfg).await, Proxy::start(&cfg).await);
        let started = Instant::now();
        let report = scenario(
            &format!("two instances, {mode}"),
            (&[a.port(), b.port()], 3),
            &t,
            &cluster().primary,
            async {},
        )
        .await;
        let secs = started.elapsed().as_secs_f64();
        let mut fetches = 0;
        for p in [&a, &b] {
            let status = p.admin_get("/status").await.1;
            fetches += status["primary_position"]["fetches"].as_u64().unwrap_or(0);
            eprintln!("  {mode}: {} {}", status["primary_position"], status["read_your_writes"]);
        }
        let mut lat = report.read_micros.clone();
        lat.sort_unstable();
        p50.push((
            lat.get(lat.len() / 2).copied().unwrap_or(0),
            lat.get(lat.len() * 99 / 100).copied().unwrap_or(0),
        ));
        eprintln!(
            "  {mode}: {fetches} position fetches in {secs:.1} s ({:.0}/s on the primary)",
            fetches as f64 / secs
        );
        if mode == "universal" {
            assert!(report.violations.is_empty(), "{report}");
        }
        a.shutdown().await;
        b.shutdown().await;
    }
    eprintln!(
        "universal mode adds {} us at p50 and {} us at p99 to a read",
        p50[1].0 as i64 - p50[0].0 as i64,
        p50[1].1 as i64 - p50[0].1 as i64
    );
}
