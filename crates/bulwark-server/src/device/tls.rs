//! TLS for the device listener: a client-certificate verifier that also
//! consults the revocation set, and the accept loop that hands each
//! request its connection's verified identity.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use bulwark_pki::{DeviceCa, PeerIdentity, RandomSource, peer_identity};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt as _;

use time::OffsetDateTime;

use crate::clock::Clock;
pub use crate::http::DeviceConn;
use crate::state::{AppState, RevokedSerials};

/// Chain verification by webpki against the device CA, then a revocation
/// check by serial. Client certificates are optional at the TLS layer
/// (enrollment has none), but one that is presented must be valid and not
/// revoked, or the handshake fails.
#[derive(Debug)]
struct RevocationAwareVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    revoked: Arc<RevokedSerials>,
}

impl ClientCertVerifier for RevocationAwareVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let who = peer_identity(end_entity.as_ref()).map_err(|_| {
            rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure)
        })?;
        if self.revoked.contains(&who.serial_hex) {
            return Err(rustls::Error::InvalidCertificate(CertificateError::Revoked));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// How long the listeners' own TLS certificate is valid.
pub(crate) const SERVER_CERT_VALIDITY: time::Duration = time::Duration::days(30);
/// How long before its expiry the listeners' certificate is replaced.
pub(crate) const SERVER_CERT_RENEW_BEFORE: time::Duration = time::Duration::days(10);

/// The device listener's and gateway's own certificate, issued by the
/// device CA and replaced before it expires ([`SERVER_CERT_RENEW_BEFORE`],
/// by the server's clock): a server that runs for months keeps
/// answering handshakes, with no restart. Open connections keep the
/// certificate they were made with; new handshakes get the new one.
pub struct RenewingCert {
    ca: Arc<DeviceCa>,
    names: Vec<String>,
    rng: Arc<dyn RandomSource>,
    clock: Arc<dyn Clock>,
    provider: Arc<rustls::crypto::CryptoProvider>,
    current: RwLock<Issued>,
}

/// One issued listener certificate.
struct Issued {
    key: Arc<CertifiedKey>,
    serial_hex: String,
    renew_at: OffsetDateTime,
}

impl std::fmt::Debug for RenewingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenewingCert")
            .field("names", &self.names)
            .field("serial", &self.serial_hex())
            .finish_non_exhaustive()
    }
}

impl RenewingCert {
    /// Issues the first certificate for `names` (DNS names or addresses).
    pub fn new(
        ca: Arc<DeviceCa>,
        names: Vec<String>,
        rng: Arc<dyn RandomSource>,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut me = Self {
            ca,
            names,
            rng,
            clock,
            provider,
            current: RwLock::new(Issued {
                key: Arc::new(CertifiedKey::new(Vec::new(), placeholder_signer()?)),
                serial_hex: String::new(),
                renew_at: OffsetDateTime::UNIX_EPOCH,
            }),
        };
        let first = me.issue(me.clock.now())?;
        *me.current.get_mut().unwrap_or_else(PoisonError::into_inner) = first;
        Ok(me)
    }

    /// The serial of the certificate new handshakes get.
    pub fn serial_hex(&self) -> String {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .serial_hex
            .clone()
    }

    fn issue(&self, now: OffsetDateTime) -> anyhow::Result<Issued> {
        let (cert, key) =
            self.ca
                .issue_server_cert(&self.names, &*self.rng, now, SERVER_CERT_VALIDITY)?;
        let key_der =
            PrivateKeyDer::from_pem_slice(key.expose().as_bytes()).context("server key PEM")?;
        let signer = self
            .provider
            .key_provider
            .load_private_key(key_der)
            .context("loading the server key")?;
        Ok(Issued {
            key: Arc::new(CertifiedKey::new(
                vec![cert.der, self.ca.cert_der().clone()],
                signer,
            )),
            serial_hex: cert.serial_hex,
            renew_at: cert.not_after - SERVER_CERT_RENEW_BEFORE,
        })
    }
}

/// A signing key for the moment before the first certificate exists
/// (never served: [`RenewingCert::new`] replaces it before returning).
fn placeholder_signer() -> anyhow::Result<Arc<dyn rustls::sign::SigningKey>> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let der = PrivateKeyDer::try_from(key.serialize_der())
        .map_err(|e| anyhow::anyhow!("placeholder key: {e}"))?;
    Ok(rustls::crypto::aws_lc_rs::default_provider()
        .key_provider
        .load_private_key(der)?)
}

impl ResolvesServerCert for RenewingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let now = self.clock.now();
        {
            let c = self.current.read().unwrap_or_else(PoisonError::into_inner);
            if now < c.renew_at {
                return Some(Arc::clone(&c.key));
            }
        }
        // Due: one handshake issues the next certificate (a key pair and a
        // signature, about a millisecond), the others wait for it.
        let mut c = self.current.write().unwrap_or_else(PoisonError::into_inner);
        if now >= c.renew_at {
            match self.issue(now) {
                Ok(next) => {
                    tracing::info!(old = %c.serial_hex, new = %next.serial_hex, "device listener certificate renewed");
                    *c = next;
                }
                // The old certificate goes on being served until it works.
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "renewing the device listener certificate failed")
                }
            }
        }
        Some(Arc::clone(&c.key))
    }
}

/// The device listener's rustls configuration (aws-lc-rs provider only),
/// serving `cert` (also the gateway's, cloned with other ALPN).
pub fn tls_config(
    ca_der: &CertificateDer<'static>,
    cert: Arc<RenewingCert>,
    revoked: Arc<RevokedSerials>,
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(ca_der.clone())
        .context("adding the device CA as trust anchor")?;
    let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .context("building the client certificate verifier")?;
    let verifier = Arc::new(RevocationAwareVerifier { inner, revoked });
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(cert);
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    cfg.session_storage = rustls::server::ServerSessionMemoryCache::new(65_536);
    Ok(Arc::new(cfg))
}

/// How long a TLS handshake may take.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open connections get to finish after shutdown is requested.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A device connection's TLS handshake (bounded by [`HANDSHAKE_TIMEOUT`];
/// failures counted) and the identity in its verified client certificate,
/// if it presented one. `None` when the handshake failed.
pub(crate) async fn handshake(
    acceptor: &tokio_rustls::TlsAcceptor,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    state: &AppState,
) -> Option<(
    tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    Option<PeerIdentity>,
)> {
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            state.0.metrics.tls_handshake_failures.inc();
            tracing::debug!(%peer, error = %e, "device TLS handshake failed");
            return None;
        }
        Err(_) => {
            state.0.metrics.tls_handshake_failures.inc();
            return None;
        }
    };
    let identity = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(|c| peer_identity(c.as_ref()).ok());
    Some((tls, identity))
}

/// How many device connections the listener holds, and how long.
#[derive(Debug, Clone)]
pub struct Limits {
    /// This listener's cap.
    pub max_connections: usize,
    /// The device side's share of file descriptors, shared with the MQTT
    /// gateway (see [`crate::listen`]).
    pub fds: Arc<Semaphore>,
    /// Longest wait for a request's headers, idle or not.
    pub idle_timeout: Duration,
}

/// Accepts device connections until `shutdown` resolves, then lets open
/// connections finish their requests (up to [`SHUTDOWN_GRACE`]).
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
    state: AppState,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let Limits {
        max_connections,
        fds,
        idle_timeout,
    } = limits;
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let permits = Arc::new(Semaphore::new(max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(idle_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(idle_timeout));
    tokio::pin!(shutdown);
    loop {
        // This listener's own cap, then the device side's share of file
        // descriptors (shared with the MQTT gateway).
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            () = &mut shutdown => break,
        };
        let fd = tokio::select! {
            p = fds.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            () = &mut shutdown => break,
        };
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "device accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let router = router.clone();
        let state = state.clone();
        let builder = builder.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let _permit = (permit, fd);
            let Some((tls, identity)) = handshake(&acceptor, tcp, peer, &state).await else {
                return;
            };
            let conn_info = DeviceConn { identity, peer };
            let svc =
                tower::service_fn(move |mut req: axum::http::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(conn_info.clone());
                    router.clone().oneshot(req)
                });
            state.0.metrics.device_connections.inc();
            let conn = builder.serve_connection(TokioIo::new(tls), TowerToHyperService::new(svc));
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = async { stop.wait_for(|s| *s).await.map(|_| ()) } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn.as_mut()).await;
                }
            }
            state.0.metrics.device_connections.dec();
        });
    }
    let _ = stop_tx.send(true);
    // Every connection task holds a permit: all returned means all closed.
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(
        SHUTDOWN_GRACE + Duration::from_secs(1),
        permits.acquire_many(all),
    )
    .await;
}
