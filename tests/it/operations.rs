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

/// Reloads while 8 clients read and write: an invalid file is refused with its key and the
/// running config stays; a valid one (a replica removed, a rule added) applies; no statement
/// fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_load_refuses_bad_files_and_applies_good_ones() {
    let dir = std::env::temp_dir().join(format!("rwproxy-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rwproxy.toml");
    let base = config_text(cluster(), "");
    std::fs::write(&path, &base).unwrap();
    let proxy = Proxy::start_file(&path).await;
    let t = crate::support::table("reload");
    cluster().primary.sql(&format!("CREATE TABLE {t} (id INT AUTO_INCREMENT PRIMARY KEY, c INT)"));
    let (stop, errors, done) =
        (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut clients = Vec::new();
    for w in 0..8u32 {
        let (stop, errors, done, port, t) =
            (stop.clone(), errors.clone(), done.clone(), proxy.port(), t.clone());
        clients.push(tokio::spawn(async move {
            let mut c = connect(port).await;
            for i in 0..10_000u32 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let r = if i % 5 == 0 {
                    c.query_drop(format!("INSERT INTO {t} (c) VALUES ({w})")).await
                } else {
                    c.query_drop(format!("SELECT COUNT(*) FROM {t} WHERE c = {w}")).await
                };
                match r {
                    Ok(()) => done.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        eprintln!("client {w}: {e}");
                        errors.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let removed = cluster().replicas[1].addr();
    std::fs::write(&path, base.replace(&removed, "no-port-here")).unwrap();
    let (status, v) = proxy.admin_request("POST", "/reload").await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"], "servers[2].address: expected host:port, got \"no-port-here\"");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let without = base.replacen(&format!("[[servers]]\nhostgroup = 1\naddress = \"{removed}\"\n"), "", 1);
    let rule =
        "[[query_rules]]\nrule_id = 1\nmatch_pattern = \"^SELECT 'forbidden'\"\nerror_msg = \"not here\"\n";
    std::fs::write(&path, format!("{without}{rule}")).unwrap();
    let (status, v) = proxy.admin_request("POST", "/reload").await;
    assert_eq!(status, 200, "{v}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    assert_eq!(errors.load(Ordering::Relaxed), 0, "no statement failed across the reloads");
    assert!(done.load(Ordering::Relaxed) > 500);
    let (_, config) = proxy.admin_get("/config").await;
    assert_eq!(config["servers"].as_array().unwrap().len(), 2, "{config}");
    let mut c = connect(proxy.port()).await;
    let e = c.query_drop("SELECT 'forbidden'").await.unwrap_err();
    assert!(e.to_string().contains("not here"), "the new rule applies: {e}");
    let mut ids = BTreeSet::new();
    for _ in 0..30 {
        ids.insert(c.query_first::<u32, _>("SELECT @@server_id").await.unwrap().unwrap());
    }
    assert!(!ids.contains(&cluster().replicas[1].server_id), "the removed replica gets no reads: {ids:?}");
    let body = {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(proxy.metrics).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    };
    assert!(body.contains("rwproxy_config_reloads_total{result=\"failure\"} 1"), "{body}");
    assert!(body.contains("rwproxy_config_reloads_total{result=\"success\"} 1"));
    cluster().primary.sql(&format!("DROP TABLE {t}"));
    proxy.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// SIGHUP makes the real binary reload its file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_binary() {
    let dir = std::env::temp_dir().join(format!("rwproxy-hup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rwproxy.toml");
    let (port, admin) = (crate::support::cluster::free_port(), crate::support::cluster::free_port());
    let text = config_text(cluster(), "")
        .replacen("listen = \"127.0.0.1:0\"", &format!("listen = \"127.0.0.1:{port}\""), 1)
        .replacen("listen = \"127.0.0.1:0\"", &format!("listen = \"127.0.0.1:{admin}\""), 1);
    std::fs::write(&path, &text).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rwproxy"))
        .arg("-c")
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let admin_addr = format!("127.0.0.1:{admin}");
    let get_config = || {
        let out =
            std::process::Command::new("curl").args(["-s", &format!("http://{admin_addr}/config")]).output();
        out.ok().map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default()
    };
    let mut up = false;
    for _ in 0..100 {
        if get_config().contains("servers") {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "proxy binary did not start");
    std::fs::write(
        &path,
        format!("{text}[[query_rules]]\nrule_id = 9\nmatch_pattern = \"^X\"\nerror_msg = \"x\"\n"),
    )
    .unwrap();
    let _ = std::process::Command::new("kill").args(["-HUP", &child.id().to_string()]).status();
    let mut reloaded = false;
    for _ in 0..50 {
        let config: serde_json::Value = serde_json::from_str(&get_config()).unwrap_or_default();
        if config["query_rules"].as_array().is_some_and(|r| r.iter().any(|r| r["rule_id"] == 9)) {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(dir);
    assert!(reloaded, "SIGHUP reloaded the file");
}

/// With `proxy.watch_config`, saving the file is enough.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watched_config_file_reloads_on_change() {
    let dir = std::env::temp_dir().join(format!("rwproxy-watch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rwproxy.toml");
    let base = config_text(cluster(), "").replace("[proxy]\n", "[proxy]\nwatch_config = true\n");
    std::fs::write(&path, &base).unwrap();
    let proxy = Proxy::start_file(&path).await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // a different modification time
    std::fs::write(
        &path,
        format!(
            "{base}[[query_rules]]\nrule_id = 3\nmatch_pattern = \"^SELECT 'w'\"\nerror_msg = \"watched\"\n"
        ),
    )
    .unwrap();
    let mut applied = false;
    for _ in 0..40 {
        let (_, config) = proxy.admin_get("/config").await;
        if config["query_rules"].as_array().is_some_and(|r| !r.is_empty()) {
            applied = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(applied, "the change was picked up");
    let mut c = connect(proxy.port()).await;
    assert!(c.query_drop("SELECT 'w'").await.unwrap_err().to_string().contains("watched"));
    proxy.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
