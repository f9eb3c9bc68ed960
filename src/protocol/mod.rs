//! MySQL wire format only: framing, handshake, auth scrambles, commands, OK/ERR/EOF, reply tracking.

pub mod auth;
pub mod command;
pub mod compress;
pub mod handshake;
pub mod packet;
pub mod reply;
pub mod resultset;
pub mod session_track;
pub mod sha2_crypt;
pub mod wire;

pub use command::ClientCommand;
pub use packet::{MAX_PAYLOAD, Packet, PacketStream};
pub use reply::{ReplyEnd, ReplyKind, ReplyTracker, Step};

/// Why bytes from a peer could not be understood. The stream can no longer be trusted after one.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("truncated packet: missing {0}")]
    Truncated(&'static str),
    #[error("malformed packet: bad {0}")]
    Malformed(&'static str),
    #[error("packet sequence id {got}, expected {expected}")]
    Sequence { got: u8, expected: u8 },
    #[error("packet of {size} bytes exceeds max_allowed_packet ({max} bytes)")]
    TooLarge { size: usize, max: usize },
    #[error("unexpected packet: {0}")]
    Unexpected(&'static str),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Capability flags (`CLIENT_*`).
pub mod caps {
    pub const LONG_PASSWORD: u32 = 1;
    pub const FOUND_ROWS: u32 = 1 << 1;
    pub const LONG_FLAG: u32 = 1 << 2;
    pub const CONNECT_WITH_DB: u32 = 1 << 3;
    pub const NO_SCHEMA: u32 = 1 << 4;
    pub const COMPRESS: u32 = 1 << 5;
    pub const ODBC: u32 = 1 << 6;
    pub const LOCAL_FILES: u32 = 1 << 7;
    pub const IGNORE_SPACE: u32 = 1 << 8;
    pub const PROTOCOL_41: u32 = 1 << 9;
    pub const INTERACTIVE: u32 = 1 << 10;
    pub const SSL: u32 = 1 << 11;
    pub const IGNORE_SIGPIPE: u32 = 1 << 12;
    pub const TRANSACTIONS: u32 = 1 << 13;
    pub const RESERVED: u32 = 1 << 14;
    pub const SECURE_CONNECTION: u32 = 1 << 15;
    pub const MULTI_STATEMENTS: u32 = 1 << 16;
    pub const MULTI_RESULTS: u32 = 1 << 17;
    pub const PS_MULTI_RESULTS: u32 = 1 << 18;
    pub const PLUGIN_AUTH: u32 = 1 << 19;
    pub const CONNECT_ATTRS: u32 = 1 << 20;
    pub const PLUGIN_AUTH_LENENC_DATA: u32 = 1 << 21;
    pub const CAN_HANDLE_EXPIRED_PASSWORDS: u32 = 1 << 22;
    pub const SESSION_TRACK: u32 = 1 << 23;
    pub const DEPRECATE_EOF: u32 = 1 << 24;

    /// What the proxy can relay faithfully. Not here: SSL and COMPRESS (the stream is not
    /// wrapped yet) and query attributes, which change packet layouts the relay does not
    /// track. MariaDB's extended capabilities are in `mariadb_caps`.
    pub const SUPPORTED: u32 = LONG_PASSWORD
        | FOUND_ROWS
        | LONG_FLAG
        | CONNECT_WITH_DB
        | NO_SCHEMA
        | ODBC
        | LOCAL_FILES
        | IGNORE_SPACE
        | PROTOCOL_41
        | INTERACTIVE
        | IGNORE_SIGPIPE
        | TRANSACTIONS
        | RESERVED
        | SECURE_CONNECTION
        | MULTI_STATEMENTS
        | MULTI_RESULTS
        | PS_MULTI_RESULTS
        | PLUGIN_AUTH
        | CONNECT_ATTRS
        | PLUGIN_AUTH_LENENC_DATA
        | SESSION_TRACK
        | DEPRECATE_EOF;

    /// Flags the server fixes for the whole connection at login (affected-row counting, reply
    /// formats, parsing, file loading): a pooled connection only serves clients that agree on
    /// these. The others are the proxy's business: `MULTI_STATEMENTS` is synced with
    /// `COM_SET_OPTION`, `SESSION_TRACK` is always on towards backends and filtered per
    /// client, `INTERACTIVE`, `LONG_FLAG` and `ODBC` change nothing a client can observe
    /// through the proxy.
    pub const POOL_KEY: u32 = FOUND_ROWS
        | NO_SCHEMA
        | LOCAL_FILES
        | IGNORE_SPACE
        | MULTI_RESULTS
        | PS_MULTI_RESULTS
        | DEPRECATE_EOF;

    /// Always asked of a backend, whatever the client said.
    pub const BACKEND_BASE: u32 =
        LONG_PASSWORD | PROTOCOL_41 | TRANSACTIONS | SECURE_CONNECTION | PLUGIN_AUTH;
}

/// MariaDB's extended capability flags: the upper 32 bits of its capability word, carried in
/// the greeting's and the handshake response's filler when `CLIENT_MYSQL` is unset.
pub mod mariadb_caps {
    pub const PROGRESS: u32 = 1;
    pub const COM_MULTI: u32 = 1 << 1;
    pub const STMT_BULK_OPERATIONS: u32 = 1 << 2;
    pub const EXTENDED_METADATA: u32 = 1 << 3;
    pub const CACHE_METADATA: u32 = 1 << 4;
    pub const BULK_UNIT_RESULTS: u32 = 1 << 5;

    /// What the proxy relays faithfully: `COM_STMT_BULK_EXECUTE` (a command like
    /// COM_STMT_EXECUTE, its OK reply unchanged) and extended column metadata (one more
    /// length-encoded field in column definitions, which the relay never parses). Not here:
    /// progress reports (ERR-like packets in the middle of a reply), metadata caching (the
    /// server would skip column definitions the client saw for another backend's statement),
    /// bulk unit results, and COM_MULTI (gone from servers).
    pub const SUPPORTED: u32 = STMT_BULK_OPERATIONS | EXTENDED_METADATA;

    /// Flags that change reply layouts: pooled connections are keyed by them.
    pub const POOL_KEY: u32 = EXTENDED_METADATA;

    /// Always asked of a MariaDB backend (it changes no reply of other commands).
    pub const BACKEND_BASE: u32 = STMT_BULK_OPERATIONS;
}

/// Server status flags (`SERVER_STATUS_*`) carried by OK and EOF packets.
pub mod status {
    pub const IN_TRANS: u16 = 0x0001;
    pub const AUTOCOMMIT: u16 = 0x0002;
    pub const MORE_RESULTS_EXISTS: u16 = 0x0008;
    pub const CURSOR_EXISTS: u16 = 0x0040;
    pub const LAST_ROW_SENT: u16 = 0x0080;
    /// `sql_mode` has `NO_BACKSLASH_ESCAPES` (client libraries escape strings by it).
    pub const NO_BACKSLASH_ESCAPES: u16 = 0x0200;
    pub const IN_TRANS_READONLY: u16 = 0x2000;
    pub const SESSION_STATE_CHANGED: u16 = 0x4000;
    /// The flags that describe the session rather than one reply (what an OK the proxy
    /// answers itself carries).
    pub const SESSION: u16 = IN_TRANS | AUTOCOMMIT | IN_TRANS_READONLY | NO_BACKSLASH_ESCAPES;
}

/// Command bytes (`COM_*`).
pub mod com {
    pub const QUIT: u8 = 0x01;
    pub const INIT_DB: u8 = 0x02;
    pub const QUERY: u8 = 0x03;
    pub const FIELD_LIST: u8 = 0x04;
    pub const STATISTICS: u8 = 0x09;
    pub const PROCESS_KILL: u8 = 0x0c;
    pub const PING: u8 = 0x0e;
    pub const CHANGE_USER: u8 = 0x11;
    pub const STMT_PREPARE: u8 = 0x16;
    pub const STMT_EXECUTE: u8 = 0x17;
    pub const STMT_SEND_LONG_DATA: u8 = 0x18;
    pub const STMT_CLOSE: u8 = 0x19;
    pub const STMT_RESET: u8 = 0x1a;
    pub const SET_OPTION: u8 = 0x1b;
    pub const STMT_FETCH: u8 = 0x1c;
    pub const RESET_CONNECTION: u8 = 0x1f;
    /// MariaDB's COM_STMT_BULK_EXECUTE (with `mariadb_caps::STMT_BULK_OPERATIONS`).
    pub const STMT_BULK_EXECUTE: u8 = 0xfa;
}

/// Error codes the proxy itself sends, with their SQLSTATE.
pub mod errcode {
    pub const TOO_MANY_CONNECTIONS: (u16, &str) = (1040, "08004");
    pub const ACCESS_DENIED: (u16, &str) = (1045, "28000");
    pub const UNKNOWN_COMMAND: (u16, &str) = (1047, "08S01");
    pub const HANDSHAKE: (u16, &str) = (1043, "08S01");
    pub const NET_PACKET_TOO_LARGE: (u16, &str) = (1153, "08S01");
    pub const UNKNOWN_STMT: (u16, &str) = (1243, "HY000");
    /// `ER_MAX_PREPARED_STMT_COUNT_REACHED`.
    pub const MAX_PREPARED: (u16, &str) = (1461, "42000");
    pub const UNSUPPORTED_PS: (u16, &str) = (1295, "HY000");
    pub const NO_OPEN_CURSOR: (u16, &str) = (1421, "HY000");
    pub const UNKNOWN_THREAD: (u16, &str) = (1094, "HY000");
    pub const NOT_OWNER: (u16, &str) = (1095, "HY000");
    pub const CONNECTION_KILLED: (u16, &str) = (1927, "70100");
    pub const NOT_SUPPORTED: (u16, &str) = (1235, "42000");
    /// ProxySQL answers a query rule's `error_msg` with this code.
    pub const RULE_ERROR: (u16, &str) = (1148, "42000");
    /// A backend lost before the client saw any byte of the reply: `ER_CONNECTION_KILLED`, a
    /// server-range code (a client-range one such as 2013 inside an ERR packet makes
    /// libmariadb report "malformed packet").
    pub const LOST_BACKEND: (u16, &str) = (1927, "70100");
    /// ProxySQL's code for "no backend connection could be had".
    pub const PROXY_BACKEND: (u16, &str) = (9001, "HY000");
}
