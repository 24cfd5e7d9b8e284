//! [`DeviceCa`]: signs device and server certificates.

use std::fmt;

use bulwark_proto::DeviceId;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls_pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer as _, GeneralName, ParsedExtension, X509Certificate};

use crate::{Error, RandomSource, Result, Secret};

/// The device certificate authority: its certificate and (unsealed) key.
pub struct DeviceCa {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for DeviceCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceCa")
            .field("key", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// A certificate the CA issued.
#[derive(Debug, Clone)]
pub struct IssuedCert {
    /// PEM encoding.
    pub pem: String,
    /// DER encoding.
    pub der: CertificateDer<'static>,
    /// Serial number, lowercase hex.
    pub serial_hex: String,
    /// End of validity.
    pub not_after: OffsetDateTime,
}

/// Who a verified device certificate names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The device id from the SAN URI.
    pub device_id: DeviceId,
    /// The certificate serial, lowercase hex.
    pub serial_hex: String,
}

const CA_VALIDITY: Duration = Duration::days(20 * 365);

fn serial(rng: &dyn RandomSource) -> Result<(SerialNumber, String)> {
    let mut bytes = [0u8; 16];
    rng.fill(&mut bytes)?;
    // Positive and of fixed length: clear the top bit, set the next one.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok((SerialNumber::from_slice(&bytes), hex::encode(bytes)))
}

impl DeviceCa {
    /// Creates a new self-signed CA (ECDSA P-256, 20 years). Returns the CA
    /// and its private key PEM, which the caller must seal before storing.
    pub fn generate(common_name: &str, now: OffsetDateTime) -> Result<(Self, Secret)> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        dn.push(DnType::OrganizationName, "Bulwark");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = now - Duration::minutes(5);
        params.not_after = now + CA_VALIDITY;
        let cert = params.self_signed(&key)?;
        let key_pem = Secret::new(key.serialize_pem());
        let ca = Self::from_pem(&cert.pem(), &key_pem)?;
        Ok((ca, key_pem))
    }

    /// Loads a CA from its certificate and private key (both PEM).
    pub fn from_pem(cert_pem: &str, key_pem: &Secret) -> Result<Self> {
        let key = KeyPair::from_pem(key_pem.expose())?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)?;
        let cert_der = pem_to_der(cert_pem)?;
        Ok(Self {
            cert_pem: cert_pem.to_owned(),
            cert_der,
            issuer,
        })
    }

    /// The CA certificate, PEM (what agents pin).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER (the device listener's client trust anchor).
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// Verifies a device's CSR and issues its certificate. Everything in the
    /// CSR except the public key is ignored: the subject and SAN are the
    /// device id, the key usage is TLS client authentication only.
    pub fn sign_device_csr(
        &self,
        csr_pem: &str,
        device_id: DeviceId,
        rng: &dyn RandomSource,
        now: OffsetDateTime,
        validity: Duration,
    ) -> Result<IssuedCert> {
        let mut csr =
            CertificateSigningRequestParams::from_pem(csr_pem).map_err(|e| Error::InvalidCsr {
                reason: e.to_string(),
            })?;
        let alg = csr.public_key.algorithm();
        let allowed = [
            &rcgen::PKCS_ECDSA_P256_SHA256,
            &rcgen::PKCS_ECDSA_P384_SHA384,
            &rcgen::PKCS_ED25519,
        ];
        if !allowed.contains(&alg) {
            return Err(Error::InvalidCsr {
                reason: "key algorithm must be ECDSA P-256, P-384 or Ed25519".into(),
            });
        }
        let (serial, serial_hex) = serial(rng)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, device_id.to_string());
        dn.push(DnType::OrganizationName, "Bulwark device");
        params.distinguished_name = dn;
        params.subject_alt_names = vec![SanType::URI(device_id.to_san_uri().try_into()?)];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.serial_number = Some(serial);
        params.not_before = now - Duration::minutes(5);
        params.not_after = now + validity;
        params.use_authority_key_identifier_extension = true;
        csr.params = params;
        let cert = csr.signed_by(&self.issuer)?;
        Ok(IssuedCert {
            pem: cert.pem(),
            der: cert.der().clone(),
            serial_hex,
            not_after: now + validity,
        })
    }

    /// Issues the device listener's TLS server certificate for `names` (DNS
    /// names or IP addresses). Returns the certificate and its key PEM.
    pub fn issue_server_cert(
        &self,
        names: &[String],
        rng: &dyn RandomSource,
        now: OffsetDateTime,
        validity: Duration,
    ) -> Result<(IssuedCert, Secret)> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::new(names.to_vec())?;
        let (serial, serial_hex) = serial(rng)?;
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            names.first().map(String::as_str).unwrap_or("bulwark"),
        );
        params.distinguished_name = dn;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.serial_number = Some(serial);
        params.not_before = now - Duration::minutes(5);
        params.not_after = now + validity;
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok((
            IssuedCert {
                pem: cert.pem(),
                der: cert.der().clone(),
                serial_hex,
                not_after: now + validity,
            },
            Secret::new(key.serialize_pem()),
        ))
    }
}

fn pem_to_der(pem: &str) -> Result<CertificateDer<'static>> {
    use rustls_pki_types::pem::PemObject as _;
    CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| Error::InvalidCertificate {
        reason: e.to_string(),
    })
}

/// Reads the device identity out of a certificate (DER) that TLS already
/// verified against the device CA: the single `urn:bulwark:device:` URI in
/// its SAN, and its serial.
pub fn peer_identity(der: &[u8]) -> Result<PeerIdentity> {
    let bad = |reason: &str| Error::InvalidCertificate {
        reason: reason.to_owned(),
    };
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|_| bad("not a DER X.509 certificate"))?;
    let mut found = None;
    for ext in cert.extensions() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext.parsed_extension() {
            for name in &san.general_names {
                if let GeneralName::URI(uri) = name {
                    if found.is_some() {
                        return Err(bad("more than one URI in the subject alternative name"));
                    }
                    found = Some(
                        DeviceId::from_san_uri(uri)
                            .map_err(|_| bad("SAN URI is not a Bulwark device id"))?,
                    );
                }
            }
        }
    }
    let device_id = found.ok_or_else(|| bad("no device id in the subject alternative name"))?;
    Ok(PeerIdentity {
        device_id,
        serial_hex: hex::encode(cert.raw_serial()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DeviceKey, SystemRandom};

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-11-23 00:00 UTC)
    }

    #[test]
    fn device_cert_names_the_device_and_survives_reload() {
        let (ca, key_pem) = DeviceCa::generate("test CA", now()).unwrap();
        let ca = DeviceCa::from_pem(ca.cert_pem(), &key_pem).unwrap();
        let key = DeviceKey::generate().unwrap();
        let id = DeviceId::parse("5f0c6a4e-8d5e-4b8e-9c57-2f4f7d1b2a10").unwrap();
        let cert = ca
            .sign_device_csr(
                &key.csr_pem("host").unwrap(),
                id,
                &SystemRandom,
                now(),
                Duration::days(1),
            )
            .unwrap();
        let who = peer_identity(&cert.der).unwrap();
        assert_eq!(who.device_id, id);
        assert_eq!(who.serial_hex, cert.serial_hex);
        assert_eq!(cert.serial_hex.len(), 32);
    }

    #[test]
    fn garbage_and_tampered_csrs_are_refused() {
        let (ca, _) = DeviceCa::generate("test CA", now()).unwrap();
        let id = DeviceId::from_uuid(uuid::Uuid::nil());
        let sign = |csr: &str| ca.sign_device_csr(csr, id, &SystemRandom, now(), Duration::days(1));
        assert!(matches!(sign(""), Err(Error::InvalidCsr { .. })));
        assert!(matches!(
            sign("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"),
            Err(Error::InvalidCsr { .. })
        ));
        // Flip one byte inside the signed body: the self-signature must fail.
        let good = DeviceKey::generate().unwrap().csr_pem("host").unwrap();
        use rustls_pki_types::pem::PemObject as _;
        let mut der =
            rustls_pki_types::CertificateSigningRequestDer::from_pem_slice(good.as_bytes())
                .unwrap()
                .as_ref()
                .to_vec();
        let i = der.len() / 3;
        der[i] ^= 0x01;
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &der);
        let tampered = format!(
            "-----BEGIN CERTIFICATE REQUEST-----\n{b64}\n-----END CERTIFICATE REQUEST-----\n"
        );
        assert!(matches!(sign(&tampered), Err(Error::InvalidCsr { .. })));
    }

    #[test]
    fn peer_identity_refuses_certs_without_device_uri() {
        let (ca, _) = DeviceCa::generate("test CA", now()).unwrap();
        let (server, _) = ca
            .issue_server_cert(
                &["localhost".into()],
                &SystemRandom,
                now(),
                Duration::days(1),
            )
            .unwrap();
        assert!(matches!(
            peer_identity(&server.der),
            Err(Error::InvalidCertificate { .. })
        ));
        assert!(peer_identity(b"junk").is_err());
    }
}
