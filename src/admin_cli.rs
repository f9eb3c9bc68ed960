//! `rwproxy admin …`: talks to a running proxy's admin API and prints readable tables.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::Value;

/// Sends one request; returns the JSON body of a 2xx answer.
fn request(addr: &str, method: &str, path: &str, token: Option<&str>) -> anyhow::Result<Value> {
    let mut s = TcpStream::connect(addr).with_context(|| format!("cannot reach the admin API at {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: 0\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status: u16 = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let json: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    if !(200..300).contains(&status) {
        bail!("{method} {path}: HTTP {status}: {}", json["error"].as_str().unwrap_or(body));
    }
    Ok(json)
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> =
            cells.iter().enumerate().map(|(i, c)| format!("{c:<w$}", w = widths[i])).collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(r);
    }
}

pub fn run(addr: &str, token: Option<&str>, command: &str, arg: Option<&str>) -> anyhow::Result<()> {
    match (command, arg) {
        ("status", _) => {
            let v = request(addr, "GET", "/status", token)?;
            for (k, val) in v.as_object().into_iter().flatten() {
                println!("{k:<22} {}", cell(val));
            }
        }
        ("servers", _) => {
            let v = request(addr, "GET", "/servers", token)?;
            let rows = v["servers"].as_array().into_iter().flatten().map(|s| {
                [
                    "hostgroup",
                    "address",
                    "role",
                    "active",
                    "health",
                    "shunned_reason",
                    "replication_lag_seconds",
                    "read_only",
                    "draining",
                ]
                .iter()
                .map(|k| cell(&s[*k]))
                .chain(["open", "idle", "in_use"].iter().map(|k| cell(&s["pool"][*k])))
                .collect()
            });
            table(
                &[
                    "HG", "ADDRESS", "ROLE", "ACTIVE", "HEALTH", "REASON", "LAG", "RO", "DRAIN", "OPEN",
                    "IDLE", "IN_USE",
                ],
                rows.collect(),
            );
        }
        ("sessions", _) => {
            let v = request(addr, "GET", "/sessions", token)?;
            println!("connected: {}", cell(&v["connected"]));
            let pinned = v["pinned_by_reason"].as_object().into_iter().flatten();
            let rows = pinned.map(|(r, n)| vec![r.clone(), cell(n), cell(&v["pin_events_total"][r])]);
            table(&["PIN REASON", "NOW", "EVENTS"], rows.collect());
        }
        ("digests", order) => {
            let path = format!("/digests?top=20&order={}", order.unwrap_or("total_time"));
            let v = request(addr, "GET", &path, token)?;
            let rows = v["digests"].as_array().into_iter().flatten().map(|d| {
                let text: String = cell(&d["digest_text"]).chars().take(70).collect();
                vec![
                    cell(&d["count"]),
                    cell(&d["total_time_us"]),
                    cell(&d["p50_us"]),
                    cell(&d["p99_us"]),
                    cell(&d["hostgroup"]),
                    text,
                ]
            });
            table(&["COUNT", "TOTAL_US", "P50_US", "P99_US", "HG", "DIGEST"], rows.collect());
        }
        ("live", _) => {
            request(addr, "GET", "/live", token)?;
            println!("live");
        }
        ("reload", _) => {
            let v = request(addr, "POST", "/reload", token)?;
            println!("reloaded: {}", cell(&v["summary"]));
        }
        (verb @ ("drain" | "undrain"), Some(server)) => {
            let v = request(addr, "POST", &format!("/servers/{server}/{verb}"), token)?;
            println!("{}: draining = {}", cell(&v["server"]), cell(&v["draining"]));
        }
        ("drain" | "undrain", None) => bail!("{command} needs a server address (host:port)"),
        (other, _) => bail!(
            "unknown admin command {other:?}: status, servers, sessions, digests [order], drain ADDR, undrain ADDR, reload"
        ),
    }
    Ok(())
}
