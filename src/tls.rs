//! The server's TLS settings: the PEM files named in the [`Config`], read and checked once at start.

use std::path::{Path, PathBuf};

use rustls::{
    InconsistentKeys, RootCertStore,
    crypto::ring::default_provider,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    sign::CertifiedKey,
};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::config::Config;

/// A TLS file named in the configuration cannot be used; each names its setting and its file.
#[derive(Debug, thiserror::Error)]
pub enum TlsFileError {
    #[error("{setting}: cannot read {}: {source}", path.display())]
    Read {
        setting: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{setting}: {} holds no PEM certificate ({reason})", path.display())]
    NoCertificate {
        setting: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("tls_key: {} holds no PEM private key ({reason})", path.display())]
    NoKey { path: PathBuf, reason: String },
    /// The key is not one rustls can sign with, or is not the key of `tls_cert`'s first
    /// certificate.
    #[error("tls_key: {} cannot serve tls_cert {}: {reason}", key.display(), cert.display())]
    Unusable {
        key: PathBuf,
        cert: PathBuf,
        reason: String,
    },
}

/// What an unusable key is most often, said beside rustls's own words: PKCS#8 EC keys written
/// without their public key (as Java's `PrivateKey.getEncoded()` writes them), which ring
/// cannot load.
const KEY_HINT: &str = "RSA (2048 to 8192 bits), ECDSA (P-256, P-384, with its public key \
                        inside) and Ed25519 keys are supported; `openssl pkey -in KEY -out \
                        NEW_KEY` rewrites an EC key that lacks its public key";

/// The TLS configuration `config` asks for; `None` serves plaintext. The files are parsed here, and
/// the key is loaded and matched against the certificate, so a bad file stops the start with an
/// error naming it rather than with tonic's bare "transport error".
pub fn server_tls(config: &Config) -> Result<Option<ServerTlsConfig>, TlsFileError> {
    let (Some(cert_path), Some(key_path)) = (&config.tls_cert, &config.tls_key) else {
        return Ok(None);
    };
    let cert = read("tls_cert", cert_path)?;
    let key = read("tls_key", key_path)?;
    check_identity(&cert, cert_path, &key, key_path)?;
    let mut tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(cert, key))
        .timeout(config.tls_handshake_timeout);
    if let Some(client_ca_path) = &config.tls_client_ca {
        let client_ca = read("tls_client_ca", client_ca_path)?;
        check_client_ca(client_ca_path, &client_ca)?;
        tls = tls.client_ca_root(Certificate::from_pem(client_ca));
    }
    Ok(Some(tls))
}

/// Checks that `key` (PEM) is a key rustls can sign with and belongs to the first certificate of
/// `cert` (PEM), as the handshake will need.
fn check_identity(
    cert: &[u8],
    cert_path: &Path,
    key: &[u8],
    key_path: &Path,
) -> Result<(), TlsFileError> {
    let chain = certificates("tls_cert", cert_path, cert)?;
    let private_key = PrivateKeyDer::from_pem_slice(key).map_err(|error| TlsFileError::NoKey {
        path: key_path.to_owned(),
        reason: error.to_string(),
    })?;
    let unusable = |reason: String| TlsFileError::Unusable {
        key: key_path.to_owned(),
        cert: cert_path.to_owned(),
        reason,
    };
    match CertifiedKey::from_der(chain, private_key, &default_provider()) {
        Ok(_) => Ok(()),
        Err(rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => Err(unusable(
            "it is not the key of the first certificate in tls_cert".to_owned(),
        )),
        Err(rustls::Error::InvalidCertificate(error)) => Err(TlsFileError::NoCertificate {
            setting: "tls_cert",
            path: cert_path.to_owned(),
            reason: format!("its first certificate does not parse: {error}"),
        }),
        Err(error) => Err(unusable(format!("{error}; {KEY_HINT}"))),
    }
}

/// Checks that a client CA file holds certificates rustls can verify clients with.
fn check_client_ca(path: &Path, pem: &[u8]) -> Result<(), TlsFileError> {
    let mut roots = RootCertStore::empty();
    let (added, ignored) =
        roots.add_parsable_certificates(certificates("tls_client_ca", path, pem)?);
    match added {
        0 => Err(TlsFileError::NoCertificate {
            setting: "tls_client_ca",
            path: path.to_owned(),
            reason: format!("none of its {ignored} certificates parses"),
        }),
        _ => Ok(()),
    }
}

/// The certificates of a PEM file: at least one, each a well-formed PEM section.
fn certificates(
    setting: &'static str,
    path: &Path,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    let no_certificate = |reason: String| TlsFileError::NoCertificate {
        setting,
        path: path.to_owned(),
        reason,
    };
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| no_certificate(error.to_string()))?;
    if chain.is_empty() {
        return Err(no_certificate("no CERTIFICATE section".to_owned()));
    }
    Ok(chain)
}

fn read(setting: &'static str, path: &Path) -> Result<Vec<u8>, TlsFileError> {
    std::fs::read(path).map_err(|source| TlsFileError::Read {
        setting,
        path: path.to_owned(),
        source,
    })
}
