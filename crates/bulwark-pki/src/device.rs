//! [`DeviceKey`]: the device's key pair and its CSR.

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};

use crate::{Result, Secret};

/// A device's private key (ECDSA P-256). Generated on the device; only the
/// CSR built from it is ever sent.
pub struct DeviceKey(KeyPair);

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceKey([redacted])")
    }
}

impl DeviceKey {
    /// Generates a new key pair from the system CSPRNG.
    pub fn generate() -> Result<Self> {
        Ok(Self(KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?))
    }

    /// Loads a key from PKCS#8 PEM.
    pub fn from_pem(pem: &Secret) -> Result<Self> {
        Ok(Self(KeyPair::from_pem(pem.expose())?))
    }

    /// The private key as PKCS#8 PEM, to be written with mode 0600.
    pub fn to_pem(&self) -> Secret {
        Secret::new(self.0.serialize_pem())
    }

    /// A PKCS#10 CSR (PEM) carrying the public key. The subject is only a
    /// hint: the server names the device.
    pub fn csr_pem(&self, hostname: &str) -> Result<String> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        let cn: String = hostname
            .chars()
            .filter(|c| !c.is_control())
            .take(64)
            .collect();
        dn.push(
            DnType::CommonName,
            if cn.is_empty() {
                "bulwark-device".to_owned()
            } else {
                cn
            },
        );
        params.distinguished_name = dn;
        Ok(params.serialize_request(&self.0)?.pem()?)
    }
}
