// Reading the PEM text of TLS options into trust and key managers, with errors naming the option.

package dev.switchyard.client;

import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.TrustManagerFactory;

/**
 * Parses TLS material when the client is built, so that a CA that is not PEM or a key that does not
 * fit fails {@link ClientBuilder#build()} with an {@link InvalidArgumentException} naming the option
 * ({@code tls.ca}, {@code tls.cert}), instead of the first call failing far from its cause.
 */
final class Pem {
  private static final Pattern PRIVATE_KEY =
      Pattern.compile("-----BEGIN PRIVATE KEY-----([A-Za-z0-9+/=\\s]+)-----END PRIVATE KEY-----");

  private Pem() {}

  /** The certificates in pem, at least one, or an InvalidArgumentException on field. */
  static List<Certificate> certificates(byte[] pem, String field) {
    try {
      List<Certificate> certs =
          new ArrayList<>(
              CertificateFactory.getInstance("X.509")
                  .generateCertificates(new ByteArrayInputStream(pem)));
      if (certs.isEmpty()) {
        throw Errors.invalidArgument(field, "no PEM certificate in it");
      }
      return certs;
    } catch (CertificateException e) {
      throw Errors.invalidArgument(field, "not PEM certificates: " + e.getMessage());
    }
  }

  /** A trust manager factory that trusts exactly the CA certificates in pem. */
  static TrustManagerFactory trust(byte[] pem) {
    try {
      KeyStore store = emptyStore();
      int i = 0;
      for (Certificate ca : certificates(pem, "tls.ca")) {
        store.setCertificateEntry("ca-" + i++, ca);
      }
      TrustManagerFactory factory =
          TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
      factory.init(store);
      return factory;
    } catch (GeneralSecurityException | java.io.IOException e) {
      throw Errors.invalidArgument("tls.ca", e.getMessage());
    }
  }

  /** A key manager factory presenting the chain in certPem with the PKCS#8 key in keyPem. */
  static KeyManagerFactory identity(byte[] certPem, byte[] keyPem) {
    List<Certificate> chain = certificates(certPem, "tls.cert");
    PrivateKey key = privateKey(keyPem);
    try {
      KeyStore store = emptyStore();
      char[] password = new char[0];
      store.setKeyEntry("client", key, password, chain.toArray(Certificate[]::new));
      KeyManagerFactory factory =
          KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
      factory.init(store, password);
      return factory;
    } catch (GeneralSecurityException | java.io.IOException e) {
      throw Errors.invalidArgument("tls.cert", "the certificate and key do not go together: " + e.getMessage());
    }
  }

  private static PrivateKey privateKey(byte[] pem) {
    Matcher m = PRIVATE_KEY.matcher(new String(pem, StandardCharsets.US_ASCII));
    if (!m.find()) {
      throw Errors.invalidArgument("tls.key", "no unencrypted PKCS#8 key (BEGIN PRIVATE KEY) in it");
    }
    byte[] der = Base64.getMimeDecoder().decode(m.group(1));
    for (String algorithm : List.of("EC", "RSA", "Ed25519")) {
      try {
        return KeyFactory.getInstance(algorithm).generatePrivate(new PKCS8EncodedKeySpec(der));
      } catch (GeneralSecurityException notThisOne) {
        // Try the next algorithm: PKCS#8 names it inside, but KeyFactory wants it up front.
      }
    }
    throw Errors.invalidArgument("tls.key", "not an EC, RSA or Ed25519 private key");
  }

  private static KeyStore emptyStore() throws GeneralSecurityException, java.io.IOException {
    KeyStore store = KeyStore.getInstance(KeyStore.getDefaultType());
    store.load(null, null);
    return store;
  }
}
