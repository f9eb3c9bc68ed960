//! docker/ and docker/k8s/ cannot be run here (no Docker engine); everything that can be
//! checked is: YAML parses, the dashboard JSON is valid, configs pass validation, the
//! manifests have the probes, hooks and objects the README promises.

use rwproxy::config::Config;
use serde_yaml::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{ROOT}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn yaml(path: &str) -> Value {
    serde_yaml::from_str(&read(path)).unwrap_or_else(|e| panic!("{path} is not valid YAML: {e}"))
}

fn env(name: &str) -> Option<String> {
    ["APP_PASSWORD", "MONITOR_PASSWORD", "RWPROXY_ADMIN_TOKEN"].contains(&name).then(|| "x".to_string())
}

#[test]
fn compose_prometheus_and_grafana_files_are_valid() {
    let compose = yaml("docker/compose.yaml");
    let services = compose["services"].as_mapping().unwrap();
    for s in ["mariadb-primary", "mariadb-replica1", "mariadb-replica2", "rwproxy", "prometheus", "grafana"] {
        assert!(services.contains_key(s), "compose service {s}");
    }
    assert_eq!(compose["services"]["rwproxy"]["ports"][0], "6033:6033");
    let prom = yaml("docker/prometheus.yml");
    assert_eq!(prom["scrape_configs"][0]["static_configs"][0]["targets"][0], "rwproxy:6070");
    yaml("docker/grafana/provisioning/datasources/prometheus.yaml");
    yaml("docker/grafana/provisioning/dashboards/rwproxy.yaml");
    let dash: serde_json::Value =
        serde_json::from_str(&read("docker/grafana/rwproxy.json")).expect("dashboard JSON");
    let titles: Vec<String> = dash["panels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap().to_lowercase())
        .collect();
    for want in ["by target", "latency", "connections by state", "backend up", "lag", "pinned"] {
        assert!(titles.iter().any(|t| t.contains(want)), "dashboard panel {want:?}: {titles:?}");
    }
    let config =
        Config::parse(&read("docker/rwproxy.toml"), "docker/rwproxy.toml", &env).expect("compose config");
    assert_eq!(config.metrics_listen.port(), 6070, "Prometheus scrapes this port");
    let docker = read("docker/Dockerfile");
    assert_eq!(
        docker.matches("\nFROM ").count() + usize::from(docker.starts_with("FROM ")),
        2,
        "multi-stage"
    );
    assert!(docker.contains("USER 10001") && docker.contains("HEALTHCHECK") && docker.contains("\"live\""));
}

#[test]
fn kubernetes_manifests_are_complete_and_the_configmap_validates() {
    let kinds: Vec<(String, Value)> = ["configmap", "deployment", "service", "hpa", "pdb", "secret"]
        .iter()
        .map(|f| {
            let v = yaml(&format!("docker/k8s/{f}.yaml"));
            (v["kind"].as_str().unwrap().to_string(), v)
        })
        .collect();
    let find =
        |k: &str| kinds.iter().find(|(kind, _)| kind == k).map(|(_, v)| v).unwrap_or_else(|| panic!("{k}"));
    let container = &find("Deployment")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/ready");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/live");
    assert!(container["lifecycle"]["preStop"].is_mapping(), "preStop hook");
    assert_eq!(find("Service")["spec"]["ports"][0]["port"], 6033);
    assert_eq!(find("HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]["name"], "rwproxy");
    assert!(find("PodDisruptionBudget")["spec"]["minAvailable"].is_number());
    // Every secretKeyRef of the Deployment names a key of the Secret shipped with it.
    let secret = find("Secret");
    for env in container["env"].as_sequence().unwrap() {
        let Some(r) = env["valueFrom"].get("secretKeyRef") else { continue };
        assert_eq!(r["name"], secret["metadata"]["name"]);
        let key = r["key"].as_str().unwrap();
        assert!(secret["stringData"][key].is_string(), "the Secret lacks {key}");
    }
    let toml = find("ConfigMap")["data"]["rwproxy.toml"].as_str().unwrap().to_string();
    let config = Config::parse(&toml, "k8s ConfigMap", &env).expect("the ConfigMap config passes validation");
    assert!(config.proxy.shutdown_delay.as_secs() >= 5, "readiness turns first on SIGTERM");
    let bin = env!("CARGO_BIN_EXE_rwproxy");
    let path = std::env::temp_dir().join(format!("rwproxy-k8s-{}.toml", std::process::id()));
    std::fs::write(&path, &toml).unwrap();
    let out = std::process::Command::new(bin)
        .arg("check-config")
        .arg(&path)
        .env("APP_PASSWORD", "x")
        .env("MONITOR_PASSWORD", "x")
        .env("RWPROXY_ADMIN_TOKEN", "x")
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(out.status.success(), "rwproxy check-config: {}", String::from_utf8_lossy(&out.stderr));
}
