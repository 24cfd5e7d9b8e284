//! The API listener's edges: connection caps that share the process's
//! file descriptors fairly between listeners, header and idle timeouts,
//! and in-flight limits per caller with room kept for incident actions.
//!
//! - **File descriptors.** The process has one open-file limit for every
//!   listener, the store and the blob files. [`caps`] splits it: the API
//!   listener gets its own cap, the device side (HTTPS device listener and
//!   MQTT gateway together) gets what is left after [`FD_RESERVE`], so
//!   idle connections flooding one listener cannot take the descriptors
//!   the other, or the database, needs.
//! - **Timeouts.** An API connection must send a request's headers within
//!   [`HEADER_TIMEOUT`], also while it sits idle between requests
//!   (hyper's header-read timer runs from the moment it waits for the next
//!   request): a half-sent or silent connection is closed, not kept.
//! - **Requests in flight** ([`Admission`]): at most [`PER_CALLER`] per
//!   caller (the API token it presents, else its address), answered 429
//!   beyond that; at most [`GLOBAL`] in all, answered 503 beyond that,
//!   except that incident actions (quarantine, release, revoke) may use
//!   [`INCIDENT_RESERVE`] more. One caller holding slow requests sheds its
//!   own requests, not everyone's, and never the incident routes.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt as _;

use crate::error::ApiError;

/// File descriptors kept for the store, blob files, logs and outgoing
/// webhook connections.
pub const FD_RESERVE: usize = 256;
/// Default cap on API connections.
pub const DEFAULT_MAX_API_CONNECTIONS: usize = 512;
/// Time a connection has to send a request's headers, idle or not.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(15);
/// Requests in flight per caller.
pub const PER_CALLER: usize = 64;
/// Requests in flight in all (before the incident reserve).
pub const GLOBAL: usize = 1024;
/// Requests in flight that only incident actions may use.
pub const INCIDENT_RESERVE: usize = 64;

/// Connection caps of the listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// API connections.
    pub api: usize,
    /// Device connections, HTTPS listener and gateway together.
    pub device: usize,
}

/// The caps for an open-file limit of `nofile` (unknown: as asked). The
/// API gets what it asks, at most a quarter of the descriptors; the device
/// side the rest after [`FD_RESERVE`], at most what it asks.
pub fn caps(nofile: Option<usize>, api_wanted: usize, device_wanted: usize) -> Caps {
    let Some(n) = nofile else {
        return Caps {
            api: api_wanted,
            device: device_wanted,
        };
    };
    let free = n.saturating_sub(FD_RESERVE);
    let api = api_wanted.min(free / 4).max(1);
    let device = device_wanted.min(free.saturating_sub(api)).max(1);
    Caps { api, device }
}

/// This process's soft open-file limit (Linux: `/proc/self/limits`).
pub fn open_file_limit() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..].split_whitespace().next()?;
    Some(soft.parse().unwrap_or(usize::MAX))
}

/// Serves the API on `listener` until `shutdown`: HTTP/1.1, at most
/// `max_connections` at once, `header_timeout` ([`HEADER_TIMEOUT`] in the
/// server) for every request's headers, the peer's address as `ConnectInfo` (it goes into journal
/// entries as the source). Open connections get `grace` to finish.
pub async fn serve_api(
    listener: TcpListener,
    router: Router,
    max_connections: usize,
    header_timeout: Duration,
    grace: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            () = &mut shutdown => break,
        };
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "API accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let router = router.clone();
        let builder = builder.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let svc = tower::service_fn(move |mut req: Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                router.clone().oneshot(req.map(axum::body::Body::new))
            });
            let conn = builder
                .serve_connection(TokioIo::new(tcp), TowerToHyperService::new(svc))
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = async { stop.wait_for(|s| *s).await.map(|_| ()) } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(grace, conn.as_mut()).await;
                }
            }
        });
    }
    let _ = stop_tx.send(true);
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(grace + Duration::from_secs(1), permits.acquire_many(all)).await;
}

/// Whether a request is an incident action, which may use the reserve.
pub fn is_incident(method: &Method, path: &str) -> bool {
    method == Method::POST
        && path.strip_prefix("/api/v1/devices/").is_some_and(|rest| {
            rest.ends_with("/quarantine") || rest.ends_with("/release") || rest.ends_with("/revoke")
        })
}

/// Who a request counts against: the id of the API token it presents
/// (checked later; a request with a wrong secret is refused before its
/// body is read, so it cannot hold a slot for long), else its address.
pub fn caller_key(req: &Request) -> String {
    let token = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| {
            bulwark_pki::PresentedToken::parse(bulwark_pki::TokenKind::Api, t.trim()).ok()
        });
    match token {
        Some(t) => format!("token:{}", t.id),
        None => match req.extensions().get::<ConnectInfo<SocketAddr>>() {
            Some(ConnectInfo(a)) => format!("addr:{}", a.ip()),
            None => "addr:unknown".into(),
        },
    }
}

/// Requests in flight, per caller and in all.
#[derive(Debug, Default)]
pub struct Admission {
    inner: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_caller: HashMap<String, usize>,
}

/// A request's place; given back when dropped.
#[derive(Debug)]
pub struct Slot {
    admission: Arc<Admission>,
    key: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self
            .admission
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_caller.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                c.per_caller.remove(&self.key);
            }
        }
    }
}

impl Admission {
    /// A slot for `key`'s request, or why not.
    pub fn admit(self: &Arc<Self>, key: String, incident: bool) -> Result<Slot, ApiError> {
        let mut c = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let mine = c.per_caller.get(&key).copied().unwrap_or(0);
        if mine >= PER_CALLER {
            return Err(ApiError::TooManyRequests(format!(
                "{PER_CALLER} requests of this caller are already in flight; retry when they finish"
            )));
        }
        let limit = if incident {
            GLOBAL + INCIDENT_RESERVE
        } else {
            GLOBAL
        };
        if c.total >= limit {
            return Err(ApiError::Overloaded);
        }
        c.total += 1;
        *c.per_caller.entry(key.clone()).or_insert(0) += 1;
        drop(c);
        Ok(Slot {
            admission: Arc::clone(self),
            key,
        })
    }
}

/// The middleware: a slot for the request's caller until its response is
/// ready (a streamed body, such as the alert stream, does not hold it).
pub async fn admit(admission: Arc<Admission>, req: Request, next: Next) -> Response {
    let incident = is_incident(req.method(), req.uri().path());
    match admission.admit(caller_key(&req), incident) {
        Ok(slot) => {
            let resp = next.run(req).await;
            drop(slot);
            resp
        }
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_leave_room_for_each_other() {
        assert_eq!(
            caps(Some(20_000), 512, 100_000),
            Caps {
                api: 512,
                device: 20_000 - FD_RESERVE - 512
            }
        );
        assert_eq!(
            caps(Some(1024), 512, 100_000),
            Caps {
                api: 192,
                device: 1024 - FD_RESERVE - 192
            }
        );
        assert_eq!(caps(Some(1_000_000), 512, 100_000).device, 100_000);
        assert_eq!(caps(None, 7, 9), Caps { api: 7, device: 9 });
        let tiny = caps(Some(10), 512, 100_000);
        assert!(tiny.api >= 1 && tiny.device >= 1);
    }

    #[test]
    fn one_caller_sheds_its_own_requests_and_incidents_keep_room() {
        let a = Arc::new(Admission::default());
        let mut held: Vec<Slot> = (0..PER_CALLER)
            .map(|_| a.admit("token:abuser".into(), false).unwrap())
            .collect();
        assert!(matches!(
            a.admit("token:abuser".into(), false),
            Err(ApiError::TooManyRequests(_))
        ));
        // Another caller is not affected.
        let other = a.admit("token:admin".into(), false).unwrap();
        drop(other);
        // Fill the global limit with many callers.
        for i in 0..GLOBAL - PER_CALLER {
            held.push(
                a.admit(format!("addr:10.0.{}.{}", i / 256, i % 256), false)
                    .unwrap(),
            );
        }
        assert!(matches!(
            a.admit("token:admin".into(), false),
            Err(ApiError::Overloaded)
        ));
        // Incident actions still get in, up to the reserve.
        let incidents: Vec<Slot> = (0..INCIDENT_RESERVE)
            .map(|i| a.admit(format!("token:sec{i}"), true).unwrap())
            .collect();
        assert!(matches!(
            a.admit("token:admin".into(), true),
            Err(ApiError::Overloaded)
        ));
        drop(incidents);
        held.truncate(0);
        assert_eq!(a.inner.lock().unwrap().total, 0);
        assert!(a.inner.lock().unwrap().per_caller.is_empty());
    }

    #[test]
    fn incident_routes() {
        for (m, p, yes) in [
            (Method::POST, "/api/v1/devices/x/quarantine", true),
            (Method::POST, "/api/v1/devices/x/release", true),
            (Method::POST, "/api/v1/devices/x/revoke", true),
            (Method::GET, "/api/v1/devices/x/quarantine", false),
            (Method::POST, "/api/v1/devices/x/tags", false),
            (Method::POST, "/api/v1/releases/x/promote", false),
        ] {
            assert_eq!(is_incident(&m, p), yes, "{m} {p}");
        }
    }
}
