//! What an idle session costs: its task is the `serve` future, whose size is that of its
//! largest state. Commands run boxed (`Session::run`), so an idle session does not carry
//! the statement path's state; this bound keeps it that way.

/// The most an idle session's future may take (debug build; release is smaller).
const MAX_SERVE_FUTURE: usize = 4096;

#[tokio::test]
async fn an_idle_sessions_task_stays_small() {
    let text = "[[servers]]\nhostgroup = 0\naddress = \"127.0.0.1:1\"\n\
                [[users]]\nusername = \"a\"\npassword = \"b\"\ndefault_hostgroup = 0\n";
    let cfg = std::sync::Arc::new(crate::config::Config::parse(text, "t", &|_| None).unwrap());
    let connector = std::sync::Arc::new(crate::backend::BackendConnector::new(&cfg));
    let ctx = super::Context::new(cfg.clone(), crate::pool::Pools::new(&cfg, connector));
    let (client, _peer) = tokio::io::duplex(64);
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let serve = super::serve(client, "127.0.0.1:1".parse().unwrap(), ctx, stopped, None);
    let size = std::mem::size_of_val(&serve);
    assert!(size <= MAX_SERVE_FUTURE, "the serve future takes {size} bytes");
}
