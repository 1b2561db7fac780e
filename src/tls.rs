//! The server's TLS settings: the PEM files named in the [`Config`], read once at start.

use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::config::Config;

/// A PEM file named in the configuration could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: cannot read {}: {source}", path.display())]
pub struct TlsFileError {
    pub setting: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// The TLS configuration `config` asks for; `None` serves plaintext. Whether the PEM contents are
/// valid is found out when the server takes the configuration (a transport error).
pub fn server_tls(config: &Config) -> Result<Option<ServerTlsConfig>, TlsFileError> {
    let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else {
        return Ok(None);
    };
    let identity = Identity::from_pem(read("tls_cert", cert)?, read("tls_key", key)?);
    let mut tls = ServerTlsConfig::new()
        .identity(identity)
        .timeout(config.tls_handshake_timeout);
    if let Some(client_ca) = &config.tls_client_ca {
        tls = tls.client_ca_root(Certificate::from_pem(read("tls_client_ca", client_ca)?));
    }
    Ok(Some(tls))
}

fn read(setting: &'static str, path: &Path) -> Result<Vec<u8>, TlsFileError> {
    std::fs::read(path).map_err(|source| TlsFileError {
        setting,
        path: path.to_owned(),
        source,
    })
}
