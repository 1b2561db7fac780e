//! TLS over a real loopback server, with certificates made for each test run (never committed): a
//! client that trusts the CA works and one that does not is refused; with mutual TLS, a client
//! without a certificate from the client CA is refused and one with it works; a connection that
//! never starts its handshake is closed after the handshake timeout.

mod common;

use std::time::Duration;

use common::{
    pki::{Pem, Pki, SERVER_NAME, pki},
    process::{self, cli},
    *,
};
use switchyard::config::Config;
use switchyard_client::Client;
use tokio::{io::AsyncReadExt, net::TcpStream, time::Instant};

impl Pki {
    /// A server speaking TLS with the server certificate, asking for client certificates signed by
    /// the CA when `mutual`.
    async fn server(&self, mutual: bool) -> TestServer {
        let config = Config {
            tls_cert: Some(self.path("server.pem")),
            tls_key: Some(self.path("server.key")),
            tls_client_ca: mutual.then(|| self.path("ca.pem")),
            ..test_config()
        };
        TestServer::with_config(config).await
    }
}

/// Connects over TLS trusting `ca`, presenting `identity` if given, and publishes once.
async fn publish_over_tls(
    server: &TestServer,
    ca: &str,
    identity: Option<&Pem>,
) -> switchyard_client::Result<()> {
    let mut builder = Client::builder(format!("https://{}", server.addr))
        .tls_ca_pem(ca)
        .tls_domain_name(SERVER_NAME);
    if let Some(identity) = identity {
        builder = builder.tls_identity_pem(&identity.cert, &identity.key);
    }
    let client = within("connect over TLS", builder.connect()).await?;
    within("Publish over TLS", client.publish("tls.check", "x")).await?;
    Ok(())
}

/// A client that trusts the server's CA publishes; one that trusts another CA, or speaks plaintext,
/// does not get through.
#[tokio::test]
async fn only_a_client_that_trusts_the_ca_gets_through() {
    let pki = pki();
    let server = pki.server(false).await;
    publish_over_tls(&server, &pki.ca, None)
        .await
        .expect("a client trusting the CA publishes");

    let untrusting = publish_over_tls(&server, &pki.stranger_ca, None).await;
    assert!(
        untrusting.is_err(),
        "a client trusting another CA must fail"
    );

    let plaintext = within(
        "plaintext against TLS",
        Client::builder(format!("http://{}", server.addr))
            .connect_timeout(Duration::from_secs(1))
            .connect(),
    )
    .await;
    if let Ok(client) = plaintext {
        let published = within("plaintext Publish", client.publish("tls.check", "x")).await;
        assert!(
            published.is_err(),
            "plaintext must not get through: {published:?}"
        );
    }
}

/// Over TLS without a CA of its own (`--tls-ca`), a client trusts the system's roots: here the PEM
/// file that `SSL_CERT_FILE` names, which the system loader reads instead of the platform's store.
/// A broker whose CA is there is reached; with only another CA there, the handshake fails. The
/// client runs as the `switchyard pub` command, so that the variable is its own process's.
#[tokio::test]
async fn without_a_ca_of_its_own_a_client_trusts_the_system_roots() {
    let pki = pki();
    let server = pki.server(false).await;
    let stranger = pki.dir.path().join("stranger-ca.pem");
    std::fs::write(&stranger, &pki.stranger_ca).expect("write a PEM file");
    let publish = |roots: std::path::PathBuf| {
        let url = format!("https://{}", server.addr);
        let mut command = cli(
            &url,
            &["pub", "tls.roots", "x", "--tls-domain", SERVER_NAME],
        );
        command
            .env("SSL_CERT_FILE", roots)
            .env_remove("SSL_CERT_DIR");
        process::run(command, None)
    };
    let trusted = publish(pki.path("ca.pem")).await;
    assert!(
        trusted.status.success(),
        "a client whose system roots hold the CA publishes: {:?}",
        trusted.stderr
    );
    let untrusted = publish(stranger).await;
    assert!(
        !untrusted.status.success(),
        "a client whose system roots lack the CA must fail"
    );
}

/// With mutual TLS, a client without a certificate, or with one from another CA, is refused; one
/// with a certificate from the client CA publishes.
#[tokio::test]
async fn mutual_tls_needs_a_client_certificate_from_the_client_ca() {
    let pki = pki();
    let server = pki.server(true).await;
    let without = publish_over_tls(&server, &pki.ca, None).await;
    assert!(without.is_err(), "no client certificate must fail");
    let stranger = publish_over_tls(&server, &pki.ca, Some(&pki.stranger_client)).await;
    assert!(stranger.is_err(), "a certificate from another CA must fail");
    publish_over_tls(&server, &pki.ca, Some(&pki.client))
        .await
        .expect("a client certificate from the client CA gets through");
}

/// A client that opens a TCP connection and never sends a byte is disconnected once the handshake
/// timeout has passed (and not before).
#[tokio::test]
async fn a_silent_connection_is_closed_after_the_handshake_timeout() {
    let pki = pki();
    let timeout = Duration::from_millis(500);
    let config = Config {
        tls_cert: Some(pki.path("server.pem")),
        tls_key: Some(pki.path("server.key")),
        tls_handshake_timeout: timeout,
        ..test_config()
    };
    let server = TestServer::with_config(config).await;
    // Wait for the server to accept connections at all.
    publish_over_tls(&server, &pki.ca, None)
        .await
        .expect("the server is up");

    // The server's clock starts when it accepts, which is after this.
    let connecting = Instant::now();
    let mut silent = TcpStream::connect(server.addr)
        .await
        .expect("a TCP connection");
    let mut buffer = [0u8; 64];
    let closed = within_for(
        timeout + SLACK,
        "the server to close",
        silent.read(&mut buffer),
    )
    .await;
    assert!(
        connecting.elapsed() >= timeout,
        "closed {:?} after connecting, before the {timeout:?} timeout",
        connecting.elapsed()
    );
    assert!(
        matches!(closed, Ok(0) | Err(_)),
        "expected the connection closed, got {closed:?}"
    );
}

/// `key` (a P-256 key's PKCS#8 DER, as rcgen writes it, with the public key) rewritten as Java's
/// `PrivateKey.getEncoded()` writes it: the same private scalar without the public key, which
/// ring cannot load.
fn without_public_key(pkcs8: &[u8]) -> String {
    use base64::Engine;
    // ECPrivateKey: version 1, then the 32-byte scalar as an OCTET STRING.
    const SCALAR: [u8; 5] = [0x02, 0x01, 0x01, 0x04, 0x20];
    let at = pkcs8
        .windows(SCALAR.len())
        .position(|window| window == SCALAR)
        .expect("a P-256 ECPrivateKey")
        + SCALAR.len();
    let mut der = vec![
        0x30, 0x41, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02,
        0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x04, 0x27, 0x30, 0x25,
    ];
    der.extend_from_slice(&SCALAR);
    der.extend_from_slice(&pkcs8[at..at + 32]);
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    format!("-----BEGIN PRIVATE KEY-----\n{text}\n-----END PRIVATE KEY-----\n")
}

/// TLS files that cannot serve stop the start with status 2, an error naming the setting and the
/// file, and a hint where one helps; the broker never serves.
#[tokio::test]
async fn tls_files_that_cannot_serve_are_refused_naming_the_setting() {
    use rustls::pki_types::pem::PemObject;
    let pki = pki();
    let dir = pki.dir.path();
    let server_key = std::fs::read_to_string(pki.path("server.key")).expect("the server key");
    let server_der =
        rustls::pki_types::PrivateKeyDer::from_pem_slice(server_key.as_bytes()).expect("a PEM key");
    let files = [
        ("no-public.key", without_public_key(server_der.secret_der())),
        ("client.key", pki.client.key.clone()),
        ("garbage.pem", "not a PEM file\n".to_owned()),
    ];
    for (name, text) in &files {
        std::fs::write(dir.join(name), text).expect("write a PEM file");
    }
    let server_pem = pki.path("server.pem");
    let server_pem = server_pem.to_str().expect("a UTF-8 path");
    let path = |name: &str| dir.join(name).to_str().expect("a UTF-8 path").to_owned();
    for (cert, key, needles) in [
        (
            server_pem.to_owned(),
            path("no-public.key"),
            &["tls_key", "no-public.key", "openssl pkey"][..],
        ),
        (
            server_pem.to_owned(),
            path("client.key"),
            &[
                "tls_key",
                "client.key",
                "not the key of the first certificate",
            ][..],
        ),
        (
            server_pem.to_owned(),
            path("garbage.pem"),
            &["tls_key", "garbage.pem", "no PEM private key"][..],
        ),
        (
            path("garbage.pem"),
            pki.path("server.key")
                .to_str()
                .expect("a UTF-8 path")
                .to_owned(),
            &["tls_cert", "garbage.pem", "no PEM certificate"][..],
        ),
    ] {
        let command = process::switchyard([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
        ]);
        let output = process::run(command, None).await;
        let stderr = output.stderr.join("\n");
        assert_eq!(output.status.code(), Some(2), "{key}: {stderr}");
        for needle in needles {
            assert!(stderr.contains(needle), "{key}: no {needle:?} in {stderr}");
        }
        assert!(
            !stderr.contains("serving"),
            "{key}: it must not serve: {stderr}"
        );
    }

    // A client CA whose certificate does not parse.
    std::fs::write(
        dir.join("bad-ca.pem"),
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .expect("write a PEM file");
    let key = pki.path("server.key");
    let command = process::switchyard([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        server_pem,
        "--tls-key",
        key.to_str().expect("a UTF-8 path"),
        "--tls-client-ca",
        &path("bad-ca.pem"),
    ]);
    let output = process::run(command, None).await;
    let stderr = output.stderr.join("\n");
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("tls_client_ca") && stderr.contains("bad-ca.pem"),
        "{stderr}"
    );
}
