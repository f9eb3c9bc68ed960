//! The admin and metrics listeners on hyper: HTTP/1.1, one request per connection, a header
//! read timeout and an overall bound per connection, a body cap, a cap on connections, and
//! accept errors (out of descriptors) waited out instead of spun on.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::{Role, answer, http};
use crate::shared::Context;

/// Connections served at once per listener; more are closed as they arrive.
const MAX_CONNECTIONS: usize = 64;
/// The request head must have arrived within this.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// A whole connection (request, answer, a reload included) within this.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);
/// The API takes no request bodies; a larger announced one is refused unread.
const MAX_BODY: u64 = 64 << 10;

/// Serves the admin API (or the metrics page) until `shutdown` completes.
pub async fn serve(listener: TcpListener, ctx: Arc<Context>, role: Role, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    // Over the cap: dropped at once, never queued.
                    let Ok(slot) = slots.clone().try_acquire_owned() else { continue };
                    let ctx = ctx.clone();
                    tokio::spawn(async move {
                        connection(stream, ctx, role).await;
                        drop(slot);
                    });
                }
                Err(e) => {
                    tracing::warn!(?role, "admin accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = &mut shutdown => return,
        }
    }
}

async fn connection(stream: TcpStream, ctx: Arc<Context>, role: Role) {
    let svc = service_fn(move |req| {
        let ctx = ctx.clone();
        async move { Ok::<_, Infallible>(respond(req, &ctx, role).await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), svc);
    let _ = tokio::time::timeout(CONNECTION_TIMEOUT, conn).await;
}

async fn respond(req: hyper::Request<Incoming>, ctx: &Context, role: Role) -> hyper::Response<Full<Bytes>> {
    let (head, body) = req.into_parts();
    let announced = head
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(body.size_hint().lower());
    let (status, kind, bytes) = if announced > MAX_BODY {
        (413, "text/plain", b"request body too large\n".to_vec())
    } else {
        answer(&http::Request::from_head(&head), ctx, role).await
    };
    let mut resp = hyper::Response::new(Full::new(Bytes::from(bytes)));
    *resp.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = resp.headers_mut();
    headers.insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static(kind));
    headers.insert(hyper::header::CONNECTION, hyper::header::HeaderValue::from_static("close"));
    resp
}
