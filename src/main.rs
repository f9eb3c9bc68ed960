//! Command line: run the proxy, check a config, hash a password.

use std::path::PathBuf;

mod admin_cli;
mod cli;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use rwproxy::config::Config;

#[derive(Parser)]
#[command(version, about = "Read/write-splitting MySQL/MariaDB proxy")]
struct Cli {
    /// Config file (TOML) to run with.
    #[arg(short, long, global = true)]
    config: Option<PathBuf>,
    /// Log format on stderr: `text` (colour only on a terminal) or `json` (one object per line).
    #[arg(long, global = true, env = "RWPROXY_LOG_FORMAT", default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a config file (FILE or --config FILE): exit 0 when valid (warnings on stderr),
    /// 1 with the key and reason when not.
    CheckConfig { file: Option<PathBuf> },
    /// Print where a statement would be routed (same JSON as the admin API's /route).
    Explain {
        /// The SQL statement.
        sql: String,
        /// The user whose session is assumed (default: the first configured user).
        #[arg(long)]
        user: Option<String>,
        /// The session's current schema (default: the user's default_schema).
        #[arg(long)]
        schema: Option<String>,
        /// The session is inside a transaction (pinned to the writer).
        #[arg(long)]
        in_transaction: bool,
        /// The session is pinned to a connection of this hostgroup.
        #[arg(long)]
        pinned: Option<u32>,
        /// The session wrote recently (read-your-writes applies).
        #[arg(long)]
        recent_write: bool,
        /// The session has autocommit off.
        #[arg(long)]
        autocommit_off: bool,
        /// The session's transactions are read-only.
        #[arg(long)]
        read_only: bool,
    },
    /// Talk to a running proxy: status, servers, sessions, digests [ORDER], drain ADDR, undrain ADDR, reload.
    Admin {
        command: String,
        arg: Option<String>,
        /// Admin API address (default: admin.listen from --config, else 127.0.0.1:6080).
        #[arg(long)]
        admin: Option<String>,
        /// Bearer token (default: the RWPROXY_ADMIN_TOKEN environment variable).
        #[arg(long, env = "RWPROXY_ADMIN_TOKEN")]
        token: Option<String>,
    },
    /// Convert a ProxySQL proxysql.cnf into an rwproxy TOML config (printed on stdout).
    ImportProxysql { file: PathBuf },
    /// Print the mysql_native_password hash of a password read from stdin, for `password_hash`.
    HashPassword {
        /// A caching_sha2_password hash (`$A$005$…`, MySQL 8's) instead.
        #[arg(long)]
        caching_sha2: bool,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logs(cli.log_format);
    if cli.command.is_some() {
        // One-shot commands print to a pipe that may close early (`| head`): end quietly as
        // other Unix tools do instead of failing on EPIPE.
        // SAFETY: restoring the default disposition of SIGPIPE before any thread exists.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    match dispatch(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // A user error: one line with its causes, never a backtrace.
            eprintln!("rwproxy: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr: text (ANSI colour only when stderr is a terminal) or JSON lines.
fn init_logs(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().with_current_span(false).init(),
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Command::CheckConfig { file }) => {
            cli::check_config(&file.or(cli.config).context("check-config needs FILE (or --config FILE)")?)
        }
        Some(Command::Explain {
            sql,
            user,
            schema,
            in_transaction,
            pinned,
            recent_write,
            autocommit_off,
            read_only,
        }) => {
            let assumed = rwproxy::admin::Assumed {
                user,
                schema,
                pinned,
                in_transaction,
                recent_write,
                autocommit_off,
                read_only,
            };
            cli::explain(&cli.config.context("explain needs --config FILE")?, &sql, &assumed)
        }
        Some(Command::ImportProxysql { file }) => cli::import_proxysql(&file),
        Some(Command::Admin { command, arg, admin, token }) => {
            let addr = cli::admin_address(admin, cli.config.as_deref())?;
            admin_cli::run(&addr, token.as_deref(), &command, arg.as_deref())
        }
        Some(Command::HashPassword { caching_sha2 }) => cli::hash_password(caching_sha2),
        None => {
            let path = cli.config.context("no config file: use --config FILE (or -c FILE)")?;
            run(Config::load(&path)?)
        }
    }
}

fn run(config: Config) -> anyhow::Result<()> {
    // A certificate or key that does not load is a config error: say so before serving.
    if let Some(t) = &config.tls {
        rwproxy::tls::acceptor(t).map_err(anyhow::Error::msg)?;
    }
    rwproxy::backend::tls::BackendTls::from_config(&config).map_err(anyhow::Error::msg)?;
    let limit = rwproxy::server::fds::raise_limit(&config).map_err(anyhow::Error::msg)?;
    tracing::debug!(limit, "file descriptor limit");
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = config.proxy.worker_threads {
        builder.worker_threads(n);
    }
    let runtime = builder.enable_all().build()?;
    runtime.block_on(async {
        let listeners = rwproxy::server::Listeners::bind(&config).await?;
        rwproxy::server::run(config, listeners, shutdown_signal()).await;
        Ok(())
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
}
