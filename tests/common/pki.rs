//! Certificates made for each test run, never committed: a CA with a server and a client
//! certificate, and a second, untrusted CA with a client certificate of its own.

use std::path::PathBuf;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tempfile::TempDir;

/// The name in the server's certificate; clients connect to 127.0.0.1 and verify this name.
pub const SERVER_NAME: &str = "switchyard.test";

/// A certificate and its key, as PEM text.
pub struct Pem {
    pub cert: String,
    pub key: String,
}

/// One run's certificates: a CA with a server and a client certificate, and a second, untrusted CA
/// with a client certificate of its own. The server's files live in `dir`.
pub struct Pki {
    pub dir: TempDir,
    pub ca: String,
    pub client: Pem,
    pub stranger_ca: String,
    pub stranger_client: Pem,
}

/// A self-signed CA.
fn new_ca() -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::new()).expect("a CA needs no names");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().expect("a CA key");
    CertifiedIssuer::self_signed(params, key).expect("a self-signed CA")
}

/// A leaf certificate for `name`, signed by `ca`.
fn new_leaf(ca: &CertifiedIssuer<'static, KeyPair>, name: &str) -> Pem {
    let params = CertificateParams::new(vec![name.to_owned()]).expect("a valid name");
    let key = KeyPair::generate().expect("a leaf key");
    let cert = params.signed_by(&key, ca).expect("a signed leaf");
    Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

pub fn pki() -> Pki {
    let ca = new_ca();
    let server = new_leaf(&ca, SERVER_NAME);
    let stranger = new_ca();
    let dir = TempDir::new().expect("a temporary directory");
    for (name, text) in [
        ("server.pem", &server.cert),
        ("server.key", &server.key),
        ("ca.pem", &ca.pem()),
    ] {
        std::fs::write(dir.path().join(name), text).expect("write a PEM file");
    }
    Pki {
        ca: ca.pem(),
        client: new_leaf(&ca, "client.test"),
        stranger_ca: stranger.pem(),
        stranger_client: new_leaf(&stranger, "client.test"),
        dir,
    }
}

impl Pki {
    /// A file of the server's in `dir`: `server.pem`, `server.key` or `ca.pem`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}
