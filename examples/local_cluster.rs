//! Starts the local development cluster (MariaDB primary on 127.0.0.1:3307, GTID replicas on
//! 3308 and 3309) with the same harness the integration tests use, prints `ready`, and keeps
//! it running until its parent process exits. Used by `scripts/run-local.sh`.

#[path = "../tests/it/support/cluster.rs"]
mod cluster;

use std::path::PathBuf;
use std::time::Duration;

fn main() {
    let dir = std::env::args().nth(1).map(PathBuf::from).unwrap_or_else(|| "/tmp/rwproxy-local".into());
    let parent = std::os::unix::process::parent_id();
    let c = cluster::Cluster::start(dir.clone(), [3307, 3308, 3309]);
    c.watch_owner(std::process::id());
    println!("ready: primary 127.0.0.1:3307, replicas 127.0.0.1:3308 and :3309 (data in {})", dir.display());
    println!("users: app/app (application), monitor/monitor; database: {}", cluster::DATABASE);
    while std::path::Path::new(&format!("/proc/{parent}")).exists() {
        std::thread::sleep(Duration::from_millis(500));
    }
    c.stop();
}
