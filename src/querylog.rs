//! The optional query log: one JSON object per statement (digest, user, schema, server,
//! duration, rows, error code) written by a thread of its own to a size-bounded file rotated
//! into `path.1 … path.N`. Sessions never wait for it: a line that does not fit the queue is
//! dropped and counted.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use crate::config::QueryLogConfig;

/// Lines queued for the writer at most.
const QUEUE: usize = 16_384;
/// Digest texts longer than this are cut in the log.
const MAX_TEXT: usize = 1024;

/// One statement, as logged.
#[derive(Debug, serde::Serialize)]
pub struct Entry<'a> {
    pub time_ms: u64,
    pub session: u32,
    pub user: &'a str,
    pub schema: Option<&'a str>,
    pub digest: String,
    pub digest_text: &'a str,
    pub kind: &'a str,
    pub target: &'a str,
    pub reason: String,
    pub hostgroup: u32,
    pub server: Option<&'a str>,
    pub duration_us: u64,
    pub rows: u64,
    pub affected: u64,
    pub error: Option<u16>,
}

pub struct QueryLog {
    tx: mpsc::SyncSender<String>,
    pub dropped: AtomicU64,
}

impl QueryLog {
    /// Opens (appends to) the file and starts the writer thread.
    pub fn start(cfg: &QueryLogConfig) -> std::io::Result<QueryLog> {
        let file = open(&cfg.path)?;
        let size = file.metadata()?.len();
        let (tx, rx) = mpsc::sync_channel::<String>(QUEUE);
        let out = std::io::BufWriter::new(file);
        let mut w = Writer { path: cfg.path.clone(), max_bytes: cfg.max_bytes, files: cfg.files, out, size };
        std::thread::Builder::new().name("rwproxy-query-log".into()).spawn(move || w.run(rx))?;
        Ok(QueryLog { tx, dropped: AtomicU64::new(0) })
    }

    pub fn record(&self, e: &Entry) {
        let mut e_text = e.digest_text;
        if e_text.len() > MAX_TEXT {
            let mut cut = MAX_TEXT;
            while !e_text.is_char_boundary(cut) {
                cut -= 1;
            }
            e_text = &e_text[..cut];
        }
        let line = serde_json::to_string(&Entry {
            digest_text: e_text,
            reason: e.reason.clone(),
            digest: e.digest.clone(),
            ..*e
        });
        let Ok(line) = line else { return };
        if self.tx.try_send(line).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn open(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("query_log.path {}: {e}", path.display())))
}

struct Writer {
    path: PathBuf,
    max_bytes: u64,
    files: u32,
    out: std::io::BufWriter<std::fs::File>,
    size: u64,
}

impl Writer {
    fn run(&mut self, rx: mpsc::Receiver<String>) {
        while let Ok(line) = rx.recv() {
            let mut next = Some(line);
            // Everything queued goes out before one flush.
            while let Some(line) = next {
                if let Err(e) = self.write_line(&line) {
                    tracing::warn!(file = %self.path.display(), "query log write failed: {e}");
                }
                next = rx.try_recv().ok();
            }
            let _ = self.out.flush();
        }
    }

    fn write_line(&mut self, line: &str) -> std::io::Result<()> {
        let n = line.len() as u64 + 1;
        if self.size > 0 && self.size + n > self.max_bytes {
            self.rotate()?;
        }
        self.out.write_all(line.as_bytes())?;
        self.out.write_all(b"\n")?;
        self.size += n;
        Ok(())
    }

    /// `path` → `path.1` → … → `path.N` (the oldest is overwritten), and a fresh `path`.
    fn rotate(&mut self) -> std::io::Result<()> {
        self.out.flush()?;
        let numbered = |i: u32| PathBuf::from(format!("{}.{i}", self.path.display()));
        for i in (1..self.files).rev() {
            let _ = std::fs::rename(numbered(i), numbered(i + 1));
        }
        if self.files > 0 {
            std::fs::rename(&self.path, numbered(1))?;
        } else {
            std::fs::remove_file(&self.path)?;
        }
        self.out = std::io::BufWriter::new(open(&self.path)?);
        self.size = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_json_and_files_rotate_within_their_bound() {
        let dir = std::env::temp_dir().join(format!("rwproxy-qlog-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("q.jsonl");
        let log = QueryLog::start(&QueryLogConfig { path: path.clone(), max_bytes: 4096, files: 2 }).unwrap();
        let text = "SELECT * FROM t WHERE id = ?".repeat(100);
        for i in 0..200 {
            let e = Entry {
                time_ms: i,
                session: 1,
                user: "app",
                schema: Some("shop"),
                digest: "0x01".into(),
                digest_text: &text,
                kind: "read",
                target: "reader",
                reason: "plain read".into(),
                hostgroup: 1,
                server: Some("127.0.0.1:3307"),
                duration_us: 150,
                rows: 1,
                affected: 0,
                error: None,
            };
            log.record(&e);
        }
        drop(log);
        std::thread::sleep(std::time::Duration::from_millis(300));
        let mut names: Vec<String> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(names, ["q.jsonl", "q.jsonl.1", "q.jsonl.2"]);
        for n in &names {
            let body = std::fs::read_to_string(dir.join(n)).unwrap();
            assert!(body.len() <= 4096, "{n}: {} bytes", body.len());
            for line in body.lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                assert_eq!(v["server"], "127.0.0.1:3307");
                assert!(v["digest_text"].as_str().unwrap().len() <= MAX_TEXT);
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
