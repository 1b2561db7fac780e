// A throwaway PKI for the TLS tests, made at run time: a CA, a server certificate for 127.0.0.1
// and localhost, and a client certificate, all signed by the CA, as PEM text and files.

package dev.switchyard.client;

import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.Date;
import java.util.List;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * ECDSA P-256 keys, which rustls and the JDK both take, are quick to make, so every test has its
 * own. BouncyCastle makes the keys and the certificates; keys are written as PKCS#8.
 */
final class Pki {
  private static final java.security.Provider PROVIDER = new org.bouncycastle.jce.provider.BouncyCastleProvider();

  final byte[] caPem;
  final byte[] clientCertPem;
  final byte[] clientKeyPem;
  final Path caFile;
  final Path serverCertFile;
  final Path serverKeyFile;

  private Pki(byte[] caPem, byte[] clientCertPem, byte[] clientKeyPem, Path caFile, Path serverCertFile, Path serverKeyFile) {
    this.caPem = caPem;
    this.clientCertPem = clientCertPem;
    this.clientKeyPem = clientKeyPem;
    this.caFile = caFile;
    this.serverCertFile = serverCertFile;
    this.serverKeyFile = serverKeyFile;
  }

  /** A CA and its certificates, their files written under dir. */
  static Pki create(Path dir) throws Exception {
    KeyPair caKeys = keys();
    X500Name caName = new X500Name("CN=switchyard test CA");
    X509v3CertificateBuilder ca = builder(caName, caName, caKeys, 1)
        .addExtension(Extension.basicConstraints, true, new BasicConstraints(true))
        .addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.digitalSignature));
    X509Certificate caCert = sign(ca, caKeys);

    KeyPair serverKeys = keys();
    X509v3CertificateBuilder server = builder(caName, new X500Name("CN=switchyard test server"), serverKeys, 2)
        .addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.digitalSignature))
        .addExtension(Extension.extendedKeyUsage, false, new ExtendedKeyUsage(KeyPurposeId.id_kp_serverAuth))
        .addExtension(Extension.subjectAlternativeName, false, new GeneralNames(new GeneralName[] {
            new GeneralName(GeneralName.dNSName, "localhost"),
            new GeneralName(GeneralName.iPAddress, "127.0.0.1")}));
    X509Certificate serverCert = sign(server, caKeys);

    KeyPair clientKeys = keys();
    X509v3CertificateBuilder client = builder(caName, new X500Name("CN=switchyard test client"), clientKeys, 3)
        .addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.digitalSignature))
        .addExtension(Extension.extendedKeyUsage, false, new ExtendedKeyUsage(KeyPurposeId.id_kp_clientAuth));
    X509Certificate clientCert = sign(client, caKeys);

    byte[] caPem = pem("CERTIFICATE", caCert.getEncoded());
    return new Pki(
        caPem,
        pem("CERTIFICATE", clientCert.getEncoded()),
        pem("PRIVATE KEY", clientKeys.getPrivate().getEncoded()),
        write(dir.resolve("ca.pem"), caPem),
        write(dir.resolve("server.pem"), pem("CERTIFICATE", serverCert.getEncoded())),
        write(dir.resolve("server.key"), pem("PRIVATE KEY", serverKeys.getPrivate().getEncoded())));
  }

  /** The broker's flags for TLS, and for mutual TLS when clientCa. */
  List<String> serverFlags(boolean clientCa) {
    List<String> tls = List.of("--tls-cert", serverCertFile.toString(), "--tls-key", serverKeyFile.toString());
    if (!clientCa) {
      return tls;
    }
    return java.util.stream.Stream.concat(tls.stream(), java.util.stream.Stream.of("--tls-client-ca", caFile.toString())).toList();
  }

  private static KeyPair keys() throws Exception {
    // BouncyCastle's keys, not the JDK's: its PKCS#8 encoding carries the public key, which ring
    // (under the broker's rustls) requires and the JDK's leaves out.
    KeyPairGenerator generator = KeyPairGenerator.getInstance("EC", PROVIDER);
    generator.initialize(new ECGenParameterSpec("secp256r1"));
    return generator.generateKeyPair();
  }

  private static X509v3CertificateBuilder builder(X500Name issuer, X500Name subject, KeyPair keys, long serial) {
    Instant now = Instant.now();
    return new JcaX509v3CertificateBuilder(
        issuer, BigInteger.valueOf(serial), Date.from(now.minus(Duration.ofHours(1))),
        Date.from(now.plus(Duration.ofDays(1))), subject, keys.getPublic());
  }

  private static X509Certificate sign(X509v3CertificateBuilder builder, KeyPair issuer) throws Exception {
    return new JcaX509CertificateConverter()
        .getCertificate(builder.build(new JcaContentSignerBuilder("SHA256withECDSA").build(issuer.getPrivate())));
  }

  private static byte[] pem(String kind, byte[] der) {
    String body = Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII)).encodeToString(der);
    return ("-----BEGIN " + kind + "-----\n" + body + "\n-----END " + kind + "-----\n").getBytes(StandardCharsets.US_ASCII);
  }

  private static Path write(Path path, byte[] data) throws Exception {
    return Files.write(path, data);
  }
}
