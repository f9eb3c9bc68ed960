//! The example Django project's own test suite, run through the proxy with mysqlclient.

use crate::support::{Proxy, cluster, config_text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn django_example_test_suite_passes_through_the_proxy() {
    let _ = cluster();
    let proxy = Proxy::start(&config_text(cluster(), "")).await;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/django");
    let probe = std::process::Command::new("python3").args(["-c", "import django, MySQLdb"]).output();
    let ok = probe.as_ref().is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "python3 with Django and mysqlclient is required (pip install -r examples/django/requirements.txt): {probe:?}"
    );
    let port = proxy.port().to_string();
    let test_db = format!("test_rwproxy_example_{}", std::process::id());
    let out = tokio::task::spawn_blocking(move || {
        // Bounded: a hang fails the test (exit 124) instead of stalling CI.
        std::process::Command::new("timeout")
            .args(["300", "python3", "manage.py", "test", "notes", "--noinput", "-v", "2"])
            .current_dir(dir)
            .env("DB_HOST", "127.0.0.1")
            .env("DB_PORT", &port)
            .env("DB_TEST_NAME", &test_db)
            .output()
            .expect("run manage.py test")
    })
    .await
    .unwrap();
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "Django's test suite failed through the proxy:\n{log}");
    assert!(log.contains("OK"), "{log}");
    proxy.shutdown().await;
}
