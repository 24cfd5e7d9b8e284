//! Alert webhooks: signed deliveries with retries and a kept log.
//!
//! Every new alert (detection or vulnerability) is enqueued once per
//! registered webhook in the store's outbox (`webhook_deliveries`), so a
//! restart loses nothing. The worker POSTs each due delivery:
//!
//! ```text
//! POST <url>
//! content-type: application/json
//! x-bulwark-event: detection | vulnerability
//! x-bulwark-delivery: <delivery id>          (the same on every retry)
//! x-bulwark-timestamp: <unix seconds>
//! x-bulwark-signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>
//!
//! {"type": "detection", "alert": {…}}
//! ```
//!
//! A 2xx answer delivers; anything else (or no answer within 10 s) is
//! retried after 1, 2, 4, … 64 s, [`MAX_ATTEMPTS`] attempts in all. Each
//! attempt is claimed by one server process in the store (a lease of 30 s),
//! so processes sharing one database deliver each alert once. Receivers
//! should check the signature in constant time and refuse timestamps older
//! than a few minutes (replay). Redirects are not followed.
//!
//! Secrets are sealed under the server's master key in the store and never
//! logged or returned by the API.
//!
//! Deliveries reach public addresses only, unless the configuration's
//! allow-list says otherwise ([`destination`]): the URL's host when it is
//! an address, and every address a name resolves to, checked by the
//! client's own resolver when it connects. No proxy from the environment
//! is used (it would connect on the server's behalf, unchecked).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bulwark_pki::MasterKey;
use bulwark_store::{AttemptOutcome, Delivery, DeliveryEvent, NewDelivery, WebhookRepo};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::clock::Clock;

pub mod destination;

pub use destination::DestinationPolicy;

/// Attempts per delivery before it is marked failed.
pub const MAX_ATTEMPTS: u32 = 8;
/// Time allowed for one attempt.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Sealing context of webhook secrets.
const SECRET_CONTEXT: &[u8] = b"bulwark webhook secret v1";
/// Deliveries attempted per worker pass.
const BATCH: u32 = 64;
/// How long a claimed delivery is this process's: longer than an attempt
/// takes, after which a delivery whose claimant died is due again.
const CLAIM_LEASE: Duration = Duration::from_secs(3 * ATTEMPT_TIMEOUT.as_secs());

/// The wait before attempt `attempts_made + 1`: 1 s, 2 s, 4 s, … capped at
/// 64 s.
pub fn retry_delay(attempts_made: u32) -> Duration {
    Duration::from_secs(1u64 << attempts_made.saturating_sub(1).min(6))
}

/// What an attempt that got `result` (an HTTP status, or why none came)
/// means for a delivery that had `attempts_before` attempts, at `now`.
pub fn outcome(
    attempts_before: u32,
    result: Result<u16, String>,
    now: OffsetDateTime,
) -> AttemptOutcome {
    let (status, error) = match result {
        Ok(s) if (200..300).contains(&s) => return AttemptOutcome::Delivered { status: s },
        Ok(s) => (Some(s), format!("HTTP {s}")),
        Err(e) => (None, e),
    };
    let made = attempts_before + 1;
    if made >= MAX_ATTEMPTS {
        AttemptOutcome::GaveUp { status, error }
    } else {
        let wait = time::Duration::try_from(retry_delay(made)).unwrap_or(time::Duration::MINUTE);
        AttemptOutcome::Retry {
            status,
            error,
            next_attempt_at: now + wait,
        }
    }
}

/// `v1=` and the hex HMAC-SHA256 of `timestamp.body` under `secret`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let mut ctx = aws_lc_rs::hmac::Context::with_key(&key);
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("v1={}", hex::encode(ctx.sign().as_ref()))
}

/// An unsealed webhook secret (zeroed on drop).
type Secret = Arc<Zeroizing<Vec<u8>>>;

/// The webhook service: seals secrets, enqueues and delivers.
pub struct Webhooks {
    store: Arc<dyn WebhookRepo>,
    clock: Arc<dyn Clock>,
    master: MasterKey,
    http: reqwest::Client,
    policy: Arc<DestinationPolicy>,
    wake: tokio::sync::Notify,
    /// Unsealed secrets by webhook id, with the sealed form they came from.
    secrets: Mutex<HashMap<String, (String, Secret)>>,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks").finish_non_exhaustive()
    }
}

impl Webhooks {
    /// The service over `store`'s outbox, sealing under `master`,
    /// delivering where `policy` allows.
    pub fn new(
        store: Arc<dyn WebhookRepo>,
        clock: Arc<dyn Clock>,
        master: MasterKey,
        policy: DestinationPolicy,
    ) -> anyhow::Result<Self> {
        let policy = Arc::new(policy);
        // The system's trust anchors, aws-lc-rs as the only provider (no
        // reliance on a process-wide default).
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for cert in native.certs {
            let _ = roots.add(cert);
        }
        if roots.is_empty() {
            tracing::warn!("no system CA certificates found: https webhooks will fail to verify");
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(ATTEMPT_TIMEOUT)
            .connect_timeout(ATTEMPT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(CheckedResolver(Arc::clone(&policy)))
            .user_agent(concat!("bulwark-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            store,
            clock,
            master,
            http,
            policy,
            wake: tokio::sync::Notify::new(),
            secrets: Mutex::new(HashMap::new()),
        })
    }

    /// Seals a secret for storage (base64).
    pub fn seal(
        &self,
        secret: &[u8],
        rng: &dyn bulwark_pki::RandomSource,
    ) -> anyhow::Result<String> {
        use base64::Engine as _;
        let sealed = self.master.seal(secret, SECRET_CONTEXT, rng)?;
        Ok(base64::engine::general_purpose::STANDARD.encode(sealed))
    }

    fn secret(&self, hook_id: &str, sealed: &str) -> anyhow::Result<Secret> {
        use base64::Engine as _;
        let mut cache = self.secrets.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((s, k)) = cache.get(hook_id)
            && s == sealed
        {
            return Ok(Arc::clone(k));
        }
        let bytes = base64::engine::general_purpose::STANDARD.decode(sealed)?;
        let key = Arc::new(self.master.open(&bytes, SECRET_CONTEXT)?);
        cache.insert(hook_id.to_owned(), (sealed.to_owned(), Arc::clone(&key)));
        Ok(key)
    }

    /// The destination rules deliveries follow.
    pub fn policy(&self) -> &DestinationPolicy {
        &self.policy
    }

    async fn attempt(
        &self,
        url: &str,
        d: &Delivery,
        secret: &[u8],
        now: OffsetDateTime,
    ) -> Result<u16, String> {
        // An address in the URL is connected to as it is (no resolver
        // call): check it here. Names are checked by `CheckedResolver`.
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("bad url: {e}"))?;
        let host = parsed.host_str().ok_or("the url has no host")?;
        self.policy
            .check_host(host)
            .map_err(|e| format!("refused: {e}"))?;
        let ts = now.unix_timestamp();
        let resp = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("x-bulwark-event", d.event.as_str())
            .header("x-bulwark-delivery", &d.id)
            .header("x-bulwark-timestamp", ts.to_string())
            .header(
                "x-bulwark-signature",
                signature(secret, ts, d.body.as_bytes()),
            )
            .body(d.body.clone())
            .send()
            .await
            .map_err(|e| {
                // reqwest's error text names the URL, never the secret.
                format!("request failed: {e}")
            })?;
        Ok(resp.status().as_u16())
    }
}

/// Resolves names with the system's resolver and keeps only the addresses
/// the policy allows, at the moment of connecting (a name cannot be
/// rebound to a private address between a check and the connection).
struct CheckedResolver(Arc<DestinationPolicy>);

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = Arc::clone(&self.0);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            if !policy.name_allowed(&host) {
                policy.check_host(&host)?;
            }
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let ok = reachable(&policy, &host, addrs)?;
            Ok(Box::new(ok.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The addresses of `host` a delivery may connect to: all of them when
/// the allow-list names the host, else those the policy allows; an error
/// naming a refused one when none is left.
fn reachable(
    policy: &DestinationPolicy,
    host: &str,
    addrs: impl IntoIterator<Item = std::net::SocketAddr>,
) -> Result<Vec<std::net::SocketAddr>, String> {
    let allowed = policy.name_allowed(host);
    let mut refused = None;
    let ok: Vec<std::net::SocketAddr> = addrs
        .into_iter()
        .filter(|a| {
            allowed
                || policy
                    .check_addr(a.ip())
                    .map_err(|e| refused.get_or_insert(e))
                    .is_ok()
        })
        .collect();
    match (ok.is_empty(), refused) {
        (true, Some(e)) => Err(format!("{host} resolves to {e}")),
        (true, None) => Err(format!("{host} resolves to no address")),
        _ => Ok(ok),
    }
}

/// What a delivery is about: an event with a kind and an alert.
pub trait Notice {
    /// The event kind (`x-bulwark-event`).
    fn kind(&self) -> DeliveryEvent;
    /// The alert it carries.
    fn alert_id(&self) -> &str;
}

impl Webhooks {
    /// Enqueues `events` for every registered webhook and wakes the worker
    /// (`encode` makes each event's wire body, only when a webhook is
    /// registered). Failures are logged: alerts are stored and streamed
    /// regardless.
    pub async fn notify<E: Notice>(
        &self,
        events: &[E],
        encode: &(dyn Fn(&E) -> String + Send + Sync),
    ) {
        if events.is_empty() {
            return;
        }
        let hooks = match self.store.webhooks().await {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(error = %e, "listing webhooks failed; alerts not delivered");
                return;
            }
        };
        if hooks.is_empty() {
            return;
        }
        let mut new = Vec::new();
        for e in events {
            let (event, alert_id) = (e.kind(), e.alert_id().to_owned());
            let body = encode(e);
            for h in &hooks {
                #[expect(
                    clippy::disallowed_methods,
                    reason = "delivery row id, not a secret: ids need no RandomSource"
                )]
                new.push(NewDelivery {
                    id: uuid::Uuid::new_v4().simple().to_string(),
                    webhook_id: h.id.clone(),
                    event,
                    alert_id: alert_id.clone(),
                    body: body.clone(),
                });
            }
        }
        if let Err(e) = self.store.enqueue_deliveries(&new, self.clock.now()).await {
            tracing::error!(error = %e, "enqueueing webhook deliveries failed");
            return;
        }
        self.wake.notify_one();
    }

    /// Delivers due deliveries until `stop` resolves: woken by new alerts,
    /// and every 500 ms for retries.
    pub async fn worker(self: Arc<Self>, stop: impl std::future::Future<Output = ()>) {
        let w = self;
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = w.wake.notified() => {}
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
                () = &mut stop => return,
            }
            loop {
                let now = w.clock.now();
                // Claimed, not just read: several server processes may share
                // the store, and each delivery is attempted by one of them.
                let lease =
                    now + time::Duration::try_from(CLAIM_LEASE).unwrap_or(time::Duration::MINUTE);
                let due = match w.store.claim_deliveries(now, lease, BATCH).await {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::warn!(error = %e, "reading due webhook deliveries failed");
                        break;
                    }
                };
                if due.is_empty() {
                    break;
                }
                let n = due.len();
                let attempts = due.into_iter().map(|d| {
                let w = Arc::clone(&w);
                async move {
                    let result = match w.store.webhook(&d.webhook_id).await {
                        Ok(Some(h)) if h.removed_at.is_none() => match w.secret(&h.id, &h.secret_sealed) {
                            Ok(secret) => w.attempt(&h.url, &d, &secret, w.clock.now()).await,
                            Err(e) => Err(format!("webhook secret cannot be unsealed: {e}")),
                        },
                        Ok(_) => Err("webhook removed".into()),
                        Err(e) => Err(format!("store: {e}")),
                    };
                    let o = outcome(d.attempts, result, w.clock.now());
                    if let AttemptOutcome::GaveUp { error, .. } = &o {
                        tracing::warn!(delivery = %d.id, webhook = %d.webhook_id, %error, "webhook delivery failed for good");
                    }
                    if let Err(e) = w.store.record_attempt(&d.id, &o, w.clock.now()).await {
                        tracing::warn!(error = %e, "recording a webhook attempt failed");
                    }
                }
            });
                futures_util::future::join_all(attempts).await;
                if n < BATCH as usize {
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-11-23 10:00 UTC);

    #[test]
    fn a_name_reaches_only_its_allowed_addresses() {
        let sa = |s: &str| -> std::net::SocketAddr { s.parse().unwrap() };
        let default = DestinationPolicy::default();
        // Rebound to loopback or metadata: refused, naming the address.
        let e = reachable(&default, "hooks.example", [sa("127.0.0.1:0")]).unwrap_err();
        assert!(e.contains("hooks.example resolves to 127.0.0.1"), "{e}");
        let e = reachable(&default, "hooks.example", [sa("169.254.169.254:0")]).unwrap_err();
        assert!(e.contains("cloud metadata"), "{e}");
        // Mixed answers keep the public addresses only.
        assert_eq!(
            reachable(
                &default,
                "hooks.example",
                [sa("10.0.0.1:0"), sa("93.184.216.34:0"), sa("[::1]:0")]
            ),
            Ok(vec![sa("93.184.216.34:0")])
        );
        assert!(reachable(&default, "hooks.example", []).is_err());
        // A name on the allow-list is trusted with what it resolves to.
        let named = DestinationPolicy::new(&["siem.internal"]).unwrap();
        assert_eq!(
            reachable(&named, "siem.internal", [sa("10.0.0.9:0")]),
            Ok(vec![sa("10.0.0.9:0")])
        );
    }

    /// Deliveries to a refused destination never open a connection, by
    /// address in the URL or by a name resolved at connect time.
    #[tokio::test]
    async fn refused_destinations_are_not_connected_to() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let w = Webhooks::new(
            bulwark_store::open("sqlite::memory:").await.unwrap(),
            Arc::new(crate::clock::ManualClock::new(NOW)),
            MasterKey::generate(&bulwark_pki::SystemRandom).unwrap(),
            DestinationPolicy::default(),
        )
        .unwrap();
        let d = Delivery {
            id: "d1".into(),
            webhook_id: "w1".into(),
            event: DeliveryEvent::Detection,
            alert_id: "a1".into(),
            body: "{}".into(),
            state: bulwark_store::DeliveryState::Pending,
            attempts: 0,
            last_status: None,
            last_error: None,
            next_attempt_at: None,
            created_at: NOW,
            delivered_at: None,
        };
        for url in [
            format!("http://127.0.0.1:{port}/hook"),
            format!("http://[::ffff:127.0.0.1]:{port}/hook"),
            format!("http://localhost:{port}/hook"),
        ] {
            let e = w
                .attempt(&url, &d, b"0123456789abcdef", NOW)
                .await
                .unwrap_err();
            assert!(e.contains("webhook_allow"), "{url}: {e}");
        }
        let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
        assert!(accepted.is_err(), "a refused delivery connected");
        // Allowed explicitly, the same receiver is reached.
        let w = Webhooks::new(
            bulwark_store::open("sqlite::memory:").await.unwrap(),
            Arc::new(crate::clock::ManualClock::new(NOW)),
            MasterKey::generate(&bulwark_pki::SystemRandom).unwrap(),
            DestinationPolicy::new(&["127.0.0.1"]).unwrap(),
        )
        .unwrap();
        let url = format!("http://127.0.0.1:{port}/hook");
        let call = tokio::spawn(async move { w.attempt(&url, &d, b"0123456789abcdef", NOW).await });
        let (mut sock, _) = listener.accept().await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut buf = vec![0u8; 4096];
        let _ = sock.read(&mut buf).await.unwrap();
        sock.write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(call.await.unwrap(), Ok(204));
    }

    #[test]
    fn retries_back_off_then_give_up() {
        let delays: Vec<u64> = (1..MAX_ATTEMPTS)
            .map(|n| retry_delay(n).as_secs())
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64]);
        assert_eq!(
            outcome(0, Ok(204), NOW),
            AttemptOutcome::Delivered { status: 204 }
        );
        assert_eq!(
            outcome(0, Ok(500), NOW),
            AttemptOutcome::Retry {
                status: Some(500),
                error: "HTTP 500".into(),
                next_attempt_at: NOW + time::Duration::SECOND
            }
        );
        assert_eq!(
            outcome(2, Err("timed out".into()), NOW),
            AttemptOutcome::Retry {
                status: None,
                error: "timed out".into(),
                next_attempt_at: NOW + time::Duration::seconds(4)
            }
        );
        assert_eq!(
            outcome(MAX_ATTEMPTS - 1, Ok(302), NOW),
            AttemptOutcome::GaveUp {
                status: Some(302),
                error: "HTTP 302".into()
            }
        );
    }

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Checked against Python's hmac module, an independent implementation.
        let Some(python) = bulwark_testpg::require_tool("python3", "apt-get install -y python3")
        else {
            return;
        };
        for (key, ts, body) in [
            ("key", 1, "{}"),
            (
                "s3cret-s3cret-s3cret",
                1_795_000_000,
                r#"{"type":"detection"}"#,
            ),
        ] {
            assert_eq!(
                signature(key.as_bytes(), ts, body.as_bytes()),
                format!("v1={}", python_hmac(&python, key, &format!("{ts}.{body}")))
            );
        }
    }

    fn python_hmac(python: &std::path::Path, key: &str, msg: &str) -> String {
        let out = std::process::Command::new(python)
            .args([
                "-c",
                "import hmac,hashlib,sys; print(hmac.new(sys.argv[1].encode(), sys.argv[2].encode(), hashlib.sha256).hexdigest())",
                key,
                msg,
            ])
            .output()
            .expect("python3 runs");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }
}
