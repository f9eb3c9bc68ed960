//! A real MariaDB primary and two GTID replicas, started from the installed binaries in a
//! temporary directory on loopback ports. Shared by the integration tests and by
//! `examples/local_cluster.rs`. Nodes can be killed, revived and lagged.

#![allow(dead_code)]

use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const APP_USER: &str = "app";
pub const APP_PASSWORD: &str = "app";
pub const MONITOR_USER: &str = "monitor";
pub const MONITOR_PASSWORD: &str = "monitor";
pub const DATABASE: &str = "rwtest";

pub struct Node {
    pub name: String,
    /// Replicas start with `--read-only`, so a restarted replica is read-only again.
    pub replica: bool,
    pub port: u16,
    pub server_id: u32,
    pub datadir: PathBuf,
    child: Mutex<Option<Child>>,
}

pub struct Cluster {
    pub dir: PathBuf,
    pub primary: Node,
    pub replicas: Vec<Node>,
}

/// Finds an installed binary or fails loudly: these tests never skip.
pub fn binary(names: &[&str]) -> PathBuf {
    for name in names {
        for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
            let p = Path::new(dir).join(name);
            if p.exists() {
                return p;
            }
        }
    }
    panic!(
        "{} not found: install the MariaDB server (apt-get install mariadb-server mariadb-client); \
         the integration tests need a real cluster and never skip",
        names.join(" / ")
    );
}

/// Seconds every replica applies behind the primary (`MASTER_DELAY`), from
/// `RWPROXY_TEST_REPLICA_DELAY` (default 0): the suite also runs with lagging replicas.
pub fn replica_delay() -> u32 {
    std::env::var("RWPROXY_TEST_REPLICA_DELAY").ok().and_then(|v| v.parse().ok()).unwrap_or(0)
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

fn is_root() -> bool {
    std::env::var("USER").map(|u| u == "root").unwrap_or(false)
        || Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0")).unwrap_or(false)
}

impl Node {
    fn args(&self) -> Vec<String> {
        let d = self.datadir.display();
        let mut a = vec![
            "--no-defaults".to_string(),
            format!("--datadir={d}"),
            format!("--socket={d}/mysql.sock"),
            format!("--pid-file={d}/mysql.pid"),
            format!("--log-error={d}/error.log"),
            format!("--port={}", self.port),
            "--bind-address=127.0.0.1".into(),
            format!("--server-id={}", self.server_id),
            "--log-bin=binlog".into(),
            "--log-slave-updates=1".into(),
            "--binlog-format=ROW".into(),
            "--gtid-strict-mode=1".into(),
            "--skip-name-resolve".into(),
            "--max-allowed-packet=256M".into(),
            "--max-connections=1000".into(),
            "--innodb-buffer-pool-size=64M".into(),
            "--innodb-log-file-size=32M".into(),
            "--innodb-flush-log-at-trx-commit=2".into(),
            "--sync-binlog=0".into(),
            "--performance-schema=OFF".into(),
            "--local-infile=1".into(),
            "--character-set-server=utf8mb4".into(),
        ];
        if is_root() {
            a.push("--user=root".into());
        }
        // The servers offer TLS with the harness's certificate (backend TLS tests use it).
        if let Some(tls) =
            self.datadir.parent().map(|p| p.join("tls")).filter(|t| t.join("harness-cert.pem").exists())
        {
            for (opt, f) in [("ssl-ca", "ca.pem"), ("ssl-cert", "cert.pem"), ("ssl-key", "key.pem")] {
                a.push(format!("--{opt}={}", tls.join(format!("harness-{f}")).display()));
            }
        }
        if self.replica {
            a.push("--read-only=1".into());
        }
        a
    }

    pub fn socket(&self) -> PathBuf {
        self.datadir.join("mysql.sock")
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts (or restarts) the server and waits until it answers.
    pub fn start(&self) {
        let child = Command::new(binary(&["mariadbd", "mysqld"]))
            .args(self.args())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start mariadbd for {}: {e}", self.name));
        *self.child.lock().unwrap() = Some(child);
        self.wait_ready(Duration::from_secs(60));
    }

    fn wait_ready(&self, limit: Duration) {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.try_sql("SELECT 1").is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = std::fs::read_to_string(self.datadir.join("error.log")).unwrap_or_default();
        panic!("{} did not become ready within {limit:?}; error log:\n{log}", self.name);
    }

    /// SIGKILL: the process dies without any chance to clean up, like a crashed host.
    pub fn kill(&self) {
        if let Some(mut c) = self.child.lock().unwrap().take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends `signal` (`STOP`, `CONT`) to the server process: a hung host, and its recovery.
    pub fn signal(&self, signal: &str) {
        let Some(pid) = self.child.lock().unwrap().as_ref().map(|c| c.id()) else { return };
        let _ = Command::new("kill").args(["-s", signal, &pid.to_string()]).status();
    }

    pub fn is_running(&self) -> bool {
        self.child.lock().unwrap().as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Runs SQL as root over the Unix socket; returns tab-separated output without headers.
    pub fn try_sql(&self, sql: &str) -> Result<String, String> {
        let out = Command::new(binary(&["mariadb", "mysql"]))
            .arg("--no-defaults")
            .arg(format!("--socket={}", self.socket().display()))
            .args(["-uroot", "-N", "-B", "-e", sql])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    pub fn sql(&self, sql: &str) -> String {
        self.try_sql(sql).unwrap_or_else(|e| panic!("{} failed on {}: {e}", sql, self.name))
    }
}

impl Cluster {
    /// Creates data directories from one bootstrap, starts the primary, creates users and the
    /// test database, then starts the replicas and waits until they caught up.
    pub fn start(dir: PathBuf, ports: [u16; 3]) -> Cluster {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create cluster dir");
        let template = dir.join("template");
        install_db(&template);
        certificates(&dir.join("tls"), "harness");
        let node = |i: usize, name: &str| {
            let datadir = dir.join(name);
            copy_dir(&template, &datadir);
            Node {
                name: name.into(),
                replica: i > 0,
                port: ports[i],
                server_id: i as u32 + 1,
                datadir,
                child: Mutex::new(None),
            }
        };
        let cluster = Cluster {
            primary: node(0, "primary"),
            replicas: vec![node(1, "replica1"), node(2, "replica2")],
            dir,
        };
        cluster.primary.start();
        cluster.primary.sql(&setup_sql());
        for r in &cluster.replicas {
            r.start();
            r.sql(&format!(
                "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, MASTER_USER='repl', \
                 MASTER_PASSWORD='repl', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, \
                 MASTER_DELAY={}; START SLAVE; SET GLOBAL read_only=ON",
                cluster.primary.port,
                replica_delay()
            ));
        }
        cluster.sync_replicas();
        cluster
    }

    /// Blocks until every running replica has applied everything the primary has logged.
    pub fn sync_replicas(&self) {
        let pos = self.primary.sql("SELECT @@gtid_binlog_pos");
        for r in self.replicas.iter().filter(|r| r.is_running()) {
            let got = r.sql(&format!("SELECT MASTER_GTID_WAIT('{pos}', 60)"));
            assert_eq!(got, "0", "{} did not catch up to {pos}", r.name);
        }
    }

    /// Makes every running replica apply `secs` behind the primary (`MASTER_DELAY`).
    pub fn set_replica_delay(&self, secs: u32) {
        for r in self.replicas.iter().filter(|r| r.is_running()) {
            r.sql(&format!("STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = {secs}; START SLAVE"));
        }
    }

    /// The CA, certificate and key the servers offer TLS with (`harness-*.pem`).
    pub fn tls_files(&self) -> (PathBuf, PathBuf, PathBuf) {
        let t = self.dir.join("tls");
        (t.join("harness-ca.pem"), t.join("harness-cert.pem"), t.join("harness-key.pem"))
    }

    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        std::iter::once(&self.primary).chain(self.replicas.iter())
    }

    /// Kills every server of this cluster (also run by the watchdog if the test process dies).
    pub fn stop(&self) {
        for n in self.nodes() {
            n.kill();
        }
    }

    /// Spawns a process that kills the servers and deletes the directory once `pid` is gone,
    /// so a shared cluster is torn down even when the test binary exits without destructors.
    /// (`[-]-datadir` so the pattern does not match this watcher's own command line: `pkill`
    /// would otherwise kill the watcher before it removes the directory.)
    pub fn watch_owner(&self, pid: u32) {
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; pkill -9 -f -- '[-]-datadir={dir}/' ; sleep 0.5; rm -rf '{dir}'",
            dir = self.dir.display()
        );
        let _ = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }
}

fn setup_sql() -> String {
    format!(
        "DELETE FROM mysql.global_priv WHERE User=''; FLUSH PRIVILEGES; \
         CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY 'repl'; \
         GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1'; \
         CREATE USER '{APP_USER}'@'%' IDENTIFIED BY '{APP_PASSWORD}'; \
         GRANT ALL ON *.* TO '{APP_USER}'@'%'; \
         CREATE USER 'hashed'@'%' IDENTIFIED BY 'secret'; \
         GRANT ALL ON *.* TO 'hashed'@'%'; \
         CREATE USER 'other'@'%' IDENTIFIED BY 'other'; \
         CREATE USER 'load'@'%' IDENTIFIED BY 'load'; \
         GRANT ALL ON *.* TO 'load'@'%'; \
         GRANT SELECT ON *.* TO 'other'@'%'; \
         CREATE USER '{MONITOR_USER}'@'%' IDENTIFIED BY '{MONITOR_PASSWORD}'; \
         GRANT REPLICATION CLIENT, SLAVE MONITOR, PROCESS ON *.* TO '{MONITOR_USER}'@'%'; \
         CREATE DATABASE {DATABASE};"
    )
}

fn install_db(datadir: &Path) {
    let mut cmd = Command::new(binary(&["mariadb-install-db", "mysql_install_db"]));
    cmd.args(["--no-defaults", "--auth-root-authentication-method=normal", "--skip-test-db"])
        .arg(format!("--datadir={}", datadir.display()));
    if is_root() {
        cmd.arg("--user=root");
    }
    let out = cmd.output().expect("run mariadb-install-db");
    if !out.status.success() {
        let mut err = std::io::stderr();
        let _ = err.write_all(&out.stdout);
        let _ = err.write_all(&out.stderr);
        panic!("mariadb-install-db failed");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    let ok = Command::new("cp").arg("-a").arg(from).arg(to).status().map(|s| s.success());
    assert!(matches!(ok, Ok(true)), "cp -a {} {}", from.display(), to.display());
}

/// A CA and a server certificate for 127.0.0.1 / localhost signed by it, made with `openssl`.
pub fn certificates(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let p = |f: &str| dir.join(format!("{name}-{f}"));
    let ext = p("ext.cnf");
    std::fs::write(&ext, "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().expect("openssl is installed");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let s = |p: &PathBuf| p.to_str().unwrap().to_string();
    let (ca, ca_key, key, csr, cert) = (p("ca.pem"), p("ca.key"), p("key.pem"), p("csr.pem"), p("cert.pem"));
    let subject = format!("/CN=rwproxy test CA {name}");
    run(&[
        &["req", "-x509"][..],
        &ec,
        &["-keyout", &s(&ca_key), "-out", &s(&ca), "-days", "2", "-subj", &subject],
    ]
    .concat());
    run(&[&["req"][..], &ec, &["-keyout", &s(&key), "-out", &s(&csr), "-subj", "/CN=localhost"]].concat());
    run(&[
        "x509",
        "-req",
        "-in",
        &s(&csr),
        "-CA",
        &s(&ca),
        "-CAkey",
        &s(&ca_key),
        "-CAcreateserial",
        "-out",
        &s(&cert),
        "-days",
        "2",
        "-extfile",
        &s(&ext),
    ]);
    (ca, cert, key)
}
