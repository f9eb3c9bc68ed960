//! ProxySQL's three layers over rwproxy's one config: *staged* rows (ProxySQL's memory), the
//! *runtime* (the running config) and *disk* (the TOML file). `LOAD … TO RUNTIME` turns the
//! running config's TOML, with the section replaced by the staged rows, into a config through
//! the same validation a file reload uses and installs it atomically; `SAVE … TO DISK` writes
//! the file (temp file + rename, the previous kept as `.bak`), comments kept.

use sqlparser::ast::{self, AssignmentTarget, FromTable, SetExpr, TableFactor, TableObject};
use toml_edit::DocumentMut;

use super::tables::{Layer, Section};
use super::toml_rows::{self, Row};
use super::{Admin, Answer, find};
use crate::config::Config;

/// `LOAD`/`SAVE` with what and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub sections: Vec<Section>,
    pub action: Action,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Staged → runtime.
    ToRuntime,
    /// Disk → staged.
    FromDisk,
    /// Staged → disk.
    ToDisk,
    /// Runtime → staged.
    FromRuntime,
    /// Variables: nothing is staged for them (they are read-only here).
    Nothing,
}

impl Command {
    pub fn parse(sql: &str) -> Option<Command> {
        let upper = sql.trim().trim_end_matches(';').to_ascii_uppercase();
        let words: Vec<&str> = upper.split_whitespace().collect();
        let (verb, rest) = words.split_first()?;
        if *verb != "LOAD" && *verb != "SAVE" {
            return None;
        }
        let (place, what) = rest.split_last()?;
        let (dir, what) = what.split_last()?;
        let sections = match what {
            ["MYSQL", "SERVERS"] => vec![Section::Servers, Section::Replication],
            ["MYSQL", "USERS"] => vec![Section::Users],
            ["MYSQL", "QUERY", "RULES"] => vec![Section::Rules],
            ["MYSQL" | "ADMIN", "VARIABLES"] => Vec::new(),
            _ => return None,
        };
        let place = match *place {
            "RUN" | "RUNTIME" => "RUNTIME",
            "MEM" | "MEMORY" => "MEMORY",
            "DISK" => "DISK",
            _ => return None,
        };
        let action = match (*verb, *dir, place) {
            _ if sections.is_empty() => Action::Nothing,
            ("LOAD", "TO", "RUNTIME") | ("LOAD", "FROM", "MEMORY") => Action::ToRuntime,
            ("LOAD", "FROM", "DISK") | ("LOAD", "TO", "MEMORY") => Action::FromDisk,
            ("SAVE", "TO", "DISK") | ("SAVE", "FROM", "MEMORY") => Action::ToDisk,
            ("SAVE", "FROM", "RUNTIME") | ("SAVE", "TO", "MEMORY") => Action::FromRuntime,
            _ => return None,
        };
        Some(Command { sections, action })
    }
}

pub fn document(text: &str) -> Result<DocumentMut, String> {
    text.parse::<DocumentMut>().map_err(|e| format!("the config's TOML does not parse: {e}"))
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

impl Admin {
    pub(super) fn staged_rows(&self, s: Section) -> Result<Vec<Row>, String> {
        let mut staged = self.staged.lock().map_err(|_| "the admin state is unavailable")?;
        if let Some(rows) = staged.get(s) {
            return Ok(rows.clone());
        }
        let config = self.ctx.config();
        let rows = toml_rows::rows(&document(&config.text)?, s, &config);
        staged.set(s, rows.clone());
        Ok(rows)
    }

    /// The TOML `base` with `sections` replaced by the staged rows.
    fn with_staged(&self, base: &str, sections: &[Section]) -> Result<String, String> {
        let config = self.ctx.config();
        let mut doc = document(base)?;
        for s in sections {
            toml_rows::write(&mut doc, *s, &self.staged_rows(*s)?, &config)?;
        }
        Ok(doc.to_string())
    }

    pub(super) async fn layer_command(&self, cmd: Command) -> Result<(), String> {
        let config = self.ctx.config().clone();
        match cmd.action {
            Action::Nothing => Ok(()),
            Action::FromRuntime | Action::FromDisk => {
                let text = match cmd.action {
                    Action::FromDisk => disk_text(&config)?,
                    _ => config.text.to_string(),
                };
                let doc = document(&text)?;
                let mut staged = self.staged.lock().map_err(|_| "the admin state is unavailable")?;
                for s in cmd.sections {
                    staged.set(s, toml_rows::rows(&doc, s, &config));
                }
                Ok(())
            }
            Action::ToRuntime => {
                let text = self.with_staged(&config.text, &cmd.sections)?;
                let new = Config::parse(&text, "the staged change", &env)
                    .map_err(|e| format!("refused, nothing changed: {e}"))?;
                let requests = self.ctx.reloads.get().ok_or("reload is not available")?;
                let summary = crate::shared::request(requests, Some(Box::new(new)))
                    .await
                    .map_err(|e| format!("refused, nothing changed: {e}"))?;
                tracing::info!("SQL admin: loaded to runtime ({summary})");
                Ok(())
            }
            Action::ToDisk => {
                let path = config.source.clone().ok_or("the running config was not loaded from a file")?;
                let old = disk_text(&config)?;
                let text = self.with_staged(&old, &cmd.sections)?;
                Config::parse(&text, &path.display().to_string(), &env)
                    .map_err(|e| format!("refused, the file is unchanged: {e}"))?;
                write_atomically(&path, &old, &text)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                tracing::info!(file = %path.display(), "SQL admin: saved to disk");
                Ok(())
            }
        }
    }

    pub(super) fn insert(&self, i: &ast::Insert) -> Result<Answer, String> {
        let TableObject::TableName(name) = &i.table else { return Err("INSERT needs a table name".into()) };
        let (spec, section) = writable(&name.to_string())?;
        let names = spec.names();
        let columns: Vec<usize> = if i.columns.is_empty() {
            (0..names.len()).collect()
        } else {
            let scope = self.scope_for(&names);
            i.columns.iter().map(|c| scope.column(&c.to_string())).collect::<Result<_, _>>()?
        };
        let Some(SetExpr::Values(values)) = i.source.as_ref().map(|q| q.body.as_ref()) else {
            return Err("INSERT … VALUES only".into());
        };
        let scope = self.scope_for(&[]);
        let mut rows = Vec::new();
        for r in &values.rows {
            rows.push(r.content.iter().map(|e| scope.lower(e)?.eval(&[])).collect::<Result<Vec<_>, _>>()?);
        }
        self.staged_rows(section)?;
        let mut staged = self.staged.lock().map_err(|_| "the admin state is unavailable")?;
        let replace = i.replace_into || matches!(i.or, Some(ast::SqliteOnConflict::Replace));
        let affected = if i.ignore {
            let mut n = 0;
            for row in rows {
                n += staged.insert(section, &columns, vec![row], false).unwrap_or(0);
            }
            n
        } else {
            staged.insert(section, &columns, rows, replace)?
        };
        Ok(Answer::Ok { affected })
    }

    pub(super) fn update(&self, u: &ast::Update) -> Result<Answer, String> {
        let TableFactor::Table { name, .. } = &u.table.relation else {
            return Err("UPDATE needs a table".into());
        };
        let (spec, section) = writable(&name.to_string())?;
        let names = spec.names();
        let scope = self.scope_for(&names);
        let mut set = Vec::new();
        for a in &u.assignments {
            let AssignmentTarget::ColumnName(col) = &a.target else {
                return Err("UPDATE … SET column = value".into());
            };
            set.push((scope.column(&col.to_string())?, scope.lower(&a.value)?));
        }
        let filter = u.selection.as_ref().map(|w| scope.lower(w)).transpose()?;
        self.staged_rows(section)?;
        let mut staged = self.staged.lock().map_err(|_| "the admin state is unavailable")?;
        Ok(Answer::Ok { affected: staged.update(section, &set, filter.as_ref())? })
    }

    pub(super) fn delete(&self, d: &ast::Delete) -> Result<Answer, String> {
        let (FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from)) = &d.from;
        let Some(TableFactor::Table { name, .. }) = from.first().map(|t| &t.relation) else {
            return Err("DELETE FROM needs a table".into());
        };
        let (spec, section) = writable(&name.to_string())?;
        let names = spec.names();
        let filter = d.selection.as_ref().map(|w| self.scope_for(&names).lower(w)).transpose()?;
        self.staged_rows(section)?;
        let mut staged = self.staged.lock().map_err(|_| "the admin state is unavailable")?;
        Ok(Answer::Ok { affected: staged.delete(section, filter.as_ref())? })
    }
}

fn writable(name: &str) -> Result<(&'static super::tables::Spec, Section), String> {
    let spec = find(name)?;
    match spec.layer {
        Layer::Staged(s) => Ok((spec, s)),
        _ => {
            Err(format!("table {} is read-only (edit the mysql_* tables, then LOAD … TO RUNTIME)", spec.name))
        }
    }
}

fn disk_text(config: &Config) -> Result<String, String> {
    let path = config.source.as_ref().ok_or("the running config was not loaded from a file")?;
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// `text` to `path` through a temp file in the same directory and a rename; `old` kept as
/// `<path>.bak`.
fn write_atomically(path: &std::path::Path, old: &str, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.rwproxy-tmp"));
    let backup = path.with_file_name(format!("{name}.bak"));
    // The file holds passwords: the copies keep its permissions.
    let permissions = std::fs::metadata(path)?.permissions();
    std::fs::write(&backup, old)?;
    std::fs::set_permissions(&backup, permissions.clone())?;
    let mut f = std::fs::File::create(&tmp)?;
    f.set_permissions(permissions)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}
