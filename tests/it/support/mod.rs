//! Test support: the shared cluster, an in-process proxy, clients.

#![allow(dead_code)]

pub mod cluster;
pub mod fake;
pub mod mysql8;
pub mod raw;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cluster::{APP_PASSWORD, APP_USER, Cluster, DATABASE, MONITOR_PASSWORD, MONITOR_USER};
use mysql_async::{Conn, Opts, OptsBuilder};
use rwproxy::config::Config;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// One cluster per test binary, started on first use and torn down when the binary exits.
pub fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("rwproxy-it-{}", std::process::id()));
        let ports = [cluster::free_port(), cluster::free_port(), cluster::free_port()];
        let c = Cluster::start(dir, ports);
        c.watch_owner(std::process::id());
        c
    })
}

/// `RWPROXY_TEST_TLS=1`: every proxy the tests start offers TLS (`[tls]` with the harness's
/// certificate) and every test client connecting through one uses it, verifying the harness's
/// CA; connections straight to the cluster stay plain.
pub fn tls_on() -> bool {
    std::env::var_os("RWPROXY_TEST_TLS").is_some_and(|v| v == "1")
}

/// The harness's CA, certificate and key (the cluster's servers use them too).
pub fn harness_certificates() -> &'static (PathBuf, PathBuf, PathBuf) {
    static CERTS: OnceLock<(PathBuf, PathBuf, PathBuf)> = OnceLock::new();
    CERTS.get_or_init(|| cluster().tls_files())
}

pub fn tls_section(cert: &Path, key: &Path) -> String {
    format!(
        "[tls]\ncert_file = {:?}\nkey_file = {:?}\n",
        cert.display().to_string(),
        key.display().to_string()
    )
}

/// A config for the shared cluster: hostgroup 0 = primary, 1 = replicas; `extra` is appended
/// (and `[tls]` after it with `RWPROXY_TEST_TLS=1`).
pub fn config_text(c: &Cluster, extra: &str) -> String {
    let mut t = String::from("[proxy]\nlisten = \"127.0.0.1:0\"\nshutdown_timeout_ms = 5000\n");
    t += "[pool]\nconnect_timeout_ms = 2000\ncheckout_timeout_ms = 3000\n";
    t += &format!("[[servers]]\nhostgroup = 0\naddress = \"{}\"\n", c.primary.addr());
    for r in &c.replicas {
        t += &format!("[[servers]]\nhostgroup = 1\naddress = \"{}\"\n", r.addr());
    }
    t += &format!(
        "[[users]]\nusername = \"{APP_USER}\"\npassword = \"{APP_PASSWORD}\"\ndefault_hostgroup = 0\n"
    );
    t += "[[users]]\nusername = \"hashed\"\npassword_hash = \"*14E65567ABDB5135D0CFD9A70B3032C179A49EE7\"\ndefault_hostgroup = 0\n";
    t +=
        "[[users]]\nusername = \"other\"\npassword = \"other\"\ndefault_hostgroup = 1\nmax_connections = 2\n";
    t += "[[users]]\nusername = \"load\"\npassword = \"load\"\ndefault_hostgroup = 0\n";
    t += &format!(
        "[monitor]\nusername = \"{MONITOR_USER}\"\npassword = \"{MONITOR_PASSWORD}\"\ninterval_ms = 200\ntimeout_ms = 1000\n"
    );
    t += "[replication]\nwriter_hostgroup = 0\nreader_hostgroup = 1\n";
    t += "[admin]\nlisten = \"127.0.0.1:0\"\nallow_without_token = true\n[metrics]\nlisten = \"127.0.0.1:0\"\n";
    t += extra;
    if tls_on() && !extra.contains("[tls]") {
        let (_, cert, key) = harness_certificates();
        // The application user must use TLS: a test client that did not would fail here.
        let app = format!("username = \"{APP_USER}\"\npassword = \"{APP_PASSWORD}\"\n");
        t = t.replacen(&app, &format!("{app}require_tls = true\n"), 1);
        t = format!("{t}\n{}", tls_section(cert, key));
    }
    t
}

pub struct Proxy {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub metrics: SocketAddr,
    /// The SQL admin's port (served when the config has `[admin.sql]`).
    pub sql_admin: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    /// The config text a file-started proxy began with.
    pub source: Option<String>,
}

impl Proxy {
    /// Starts `server::run` in-process on a free loopback port.
    pub async fn start(config_toml: &str) -> Proxy {
        Proxy::start_config(Config::parse(config_toml, "test", &|_| None).expect("test config is valid"))
            .await
    }

    async fn start_config(config: Config) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind admin");
        let addr = listener.local_addr().expect("proxy addr");
        let admin_addr = admin.local_addr().expect("admin addr");
        let (tx, rx) = oneshot::channel();
        let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind metrics");
        let metrics_addr = metrics.local_addr().expect("metrics addr");
        let sql_admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind SQL admin");
        let sql_admin_addr = sql_admin.local_addr().expect("SQL admin addr");
        let listeners = rwproxy::server::Listeners {
            mysql: listener,
            admin: Some(admin),
            metrics: Some(metrics),
            sql_admin: Some(sql_admin),
        };
        let task = tokio::spawn(rwproxy::server::run(config, listeners, async {
            let _ = rx.await;
        }));
        Proxy {
            addr,
            admin: admin_addr,
            metrics: metrics_addr,
            sql_admin: sql_admin_addr,
            stop: Some(tx),
            task: Some(task),
            source: None,
        }
    }

    /// Like `start`, with the config loaded from a file (so it can be reloaded).
    pub async fn start_file(path: &std::path::Path) -> Proxy {
        let text = std::fs::read_to_string(path).expect("config file");
        let mut proxy = Proxy::start_config(Config::load(path).expect("valid config file")).await;
        proxy.source = Some(text);
        proxy
    }

    pub async fn default() -> Proxy {
        Proxy::start(&config_text(cluster(), "")).await
    }

    /// Signals shutdown and waits for `server::run` to return.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.expect("server task");
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// GET on the admin API; returns (status, JSON body).
    /// The metrics listener's `/metrics` text.
    pub async fn metrics_text(&self) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(self.metrics).await.expect("connect metrics");
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.expect("send");
        let mut out = String::new();
        s.read_to_string(&mut out).await.expect("read metrics");
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default()
    }

    pub async fn admin_get(&self, path_and_query: &str) -> (u16, serde_json::Value) {
        self.admin_request("GET", path_and_query).await
    }

    pub async fn admin_request(&self, method: &str, path_and_query: &str) -> (u16, serde_json::Value) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(self.admin).await.expect("connect admin");
        let req = format!("{method} {path_and_query} HTTP/1.1\r\nHost: x\r\n\r\n");
        s.write_all(req.as_bytes()).await.expect("send");
        let mut out = String::new();
        s.read_to_string(&mut out).await.expect("read");
        let status = out.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let body = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        (status, serde_json::from_str(body).unwrap_or(serde_json::Value::Null))
    }
}

pub fn opts(port: u16, user: &str, password: &str, db: Option<&str>) -> OptsBuilder {
    let o = OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some(user))
        .pass(Some(password))
        .db_name(db)
        .prefer_socket(false);
    if tls_on() && !cluster().nodes().any(|n| n.port == port) {
        let ca = harness_certificates().0.clone();
        return o.ssl_opts(Some(mysql_async::SslOpts::default().with_root_certs(vec![ca.into()])));
    }
    o
}

pub async fn connect(port: u16) -> Conn {
    Conn::new(Opts::from(opts(port, APP_USER, APP_PASSWORD, Some(DATABASE)))).await.expect("connect")
}

/// A connection through the proxy and one straight to the primary, for side-by-side checks.
pub async fn pair(proxy: &Proxy) -> (Conn, Conn) {
    (connect(proxy.port()).await, connect(cluster().primary.port).await)
}

/// Runs the `mariadb` CLI against a port; returns (exit ok, stdout, stderr).
pub fn cli(port: u16, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(cluster::binary(&["mariadb", "mysql"]))
        .args(["--no-defaults", "-h127.0.0.1", &format!("-P{port}"), "--protocol=TCP"])
        .args(args)
        .output()
        .expect("run mariadb CLI");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A table name unique to the calling test, so tests sharing the cluster never collide.
pub fn table(name: &str) -> String {
    format!("{DATABASE}.{name}_{}", std::process::id())
}

/// Runs `cmd` to completion with its stdout and stderr captured (read while it runs, so a
/// chatty child never blocks on a full pipe); kills it and panics after `limit`.
pub fn run_bounded(
    cmd: &mut std::process::Command,
    limit: std::time::Duration,
    what: &str,
) -> std::process::Output {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            buf
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout piped")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr piped")));
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("{what}: did not finish within {} s", limit.as_secs());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let (stdout, stderr) = (stdout.join().unwrap_or_default(), stderr.join().unwrap_or_default());
    std::process::Output { status, stdout, stderr }
}
