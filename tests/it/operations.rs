//! Draining, the admin token, the redacted config and the admin CLI.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use mysql_async::prelude::*;

use crate::support::{Proxy, cluster, config_text, connect};

fn admin_cli(proxy: &Proxy, args: &[&str], token: Option<&str>) -> (bool, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_rwproxy"));
    cmd.arg("admin").args(args).arg("--admin").arg(proxy.admin.to_string()).env_remove("RWPROXY_ADMIN_TOKEN");
    if let Some(t) = token {
        cmd.env("RWPROXY_ADMIN_TOKEN", t);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Draining a reader while 8 clients read: no errors, and no new checkouts on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_a_reader_under_load_causes_no_errors() {
    let proxy = Proxy::default().await;
    let drained = cluster().replicas[0].addr();
    let (stop, errors) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let seen_after = Arc::new(std::sync::Mutex::new(BTreeSet::new()));
    let draining = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (stop, errors, seen, draining, port) =
            (stop.clone(), errors.clone(), seen_after.clone(), draining.clone(), proxy.port());
        clients.push(tokio::spawn(async move {
            let mut c = connect(port).await;
            for _ in 0..5000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let was_draining = draining.load(Ordering::Acquire);
                match c.query_first::<u32, _>("SELECT @@server_id").await {
                    Ok(Some(id)) if was_draining => {
                        seen.lock().unwrap().insert(id);
                    }
                    Ok(_) => {}
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (ok, out, err) = admin_cli(&proxy, &["drain", &drained], None);
    assert!(ok, "{err}");
    assert!(out.contains("draining = true"), "{out}");
    tokio::time::sleep(Duration::from_millis(200)).await; // reads already running on it finish
    draining.store(true, Ordering::Release);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    assert_eq!(errors.load(Ordering::Relaxed), 0);
    let seen = seen_after.lock().unwrap().clone();
    assert!(!seen.contains(&cluster().replicas[0].server_id), "no reads on the drained server: {seen:?}");
    let (_, servers, _) = admin_cli(&proxy, &["servers"], None);
    assert!(servers.lines().any(|l| l.contains(&drained) && l.contains("true")), "{servers}");
    let (ok, out, _) = admin_cli(&proxy, &["undrain", &drained], None);
    assert!(ok && out.contains("draining = false"), "{out}");
    let mut c = connect(proxy.port()).await;
    let mut ids = BTreeSet::new();
    for _ in 0..40 {
        ids.insert(c.query_first::<u32, _>("SELECT @@server_id").await.unwrap().unwrap());
    }
    assert!(ids.contains(&cluster().replicas[0].server_id), "undrained server serves again");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_token_and_redacted_config() {
    let cfg = config_text(cluster(), "").replace("[admin]\n", "[admin]\ntoken = \"s3cr3t-admin\"\n");
    let proxy = Proxy::start(&cfg).await;
    assert_eq!(proxy.admin_get("/servers").await.0, 401, "token required");
    assert_eq!(proxy.admin_get("/live").await.0, 200, "probes need no token");
    let (ok, _, err) = admin_cli(&proxy, &["status"], None);
    assert!(!ok && err.contains("401"), "{err}");
    let (ok, out, err) = admin_cli(&proxy, &["status"], Some("s3cr3t-admin"));
    assert!(ok, "{err}");
    assert!(out.contains("client_connections"), "{out}");
    let (ok, out, _) = admin_cli(&proxy, &["sessions"], Some("s3cr3t-admin"));
    assert!(ok && out.contains("PIN REASON"), "{out}");
    let (ok, out, _) = admin_cli(&proxy, &["digests", "count"], Some("s3cr3t-admin"));
    assert!(ok && out.contains("DIGEST"), "{out}");
    proxy.shutdown().await;

    let proxy = Proxy::default().await;
    let (status, config) = proxy.admin_get("/config").await;
    assert_eq!(status, 200);
    let text = config.to_string();
    assert!(text.contains("<redacted>"), "{text}");
    for secret in ["\"app\",\"password\":\"app\"", "\"monitor\",\"password\":\"monitor\"", "14E65567"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    proxy.shutdown().await;
    let open = config_text(cluster(), "")
        .replace("[admin]\nlisten = \"127.0.0.1:0\"", "[admin]\nlisten = \"0.0.0.0:0\"");
    let e = rwproxy::config::Config::parse(&open, "t", &|_| None).unwrap_err().to_string();
    assert!(e.starts_with("admin.token: is required when admin.listen is not loopback"), "{e}");
}
