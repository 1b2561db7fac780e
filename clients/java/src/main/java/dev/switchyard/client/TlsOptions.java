// How the client checks a TLS broker and, for mutual TLS, proves who it is.

package dev.switchyard.client;

import java.util.Optional;

/**
 * TLS to a broker started with {@code --tls-cert} and {@code --tls-key}. {@link #systemRoots()}
 * trusts the JVM's default trust store; {@link #builder()} takes the broker's CA, a client
 * certificate for a broker with {@code --tls-client-ca} (mutual TLS), and the name the broker's
 * certificate must hold when it is not the target's host.
 *
 * <pre>{@code
 * TlsOptions tls = TlsOptions.builder()
 *     .caPem(Files.readAllBytes(Path.of("ca.pem")))
 *     .clientCertificate(Files.readAllBytes(Path.of("client.pem")), Files.readAllBytes(Path.of("client.key")))
 *     .serverName("broker.internal")
 *     .build();
 * }</pre>
 */
public final class TlsOptions {
  private final byte[] caPem;
  private final byte[] certPem;
  private final byte[] keyPem;
  private final String serverName;

  private TlsOptions(Builder b) {
    this.caPem = b.caPem;
    this.certPem = b.certPem;
    this.keyPem = b.keyPem;
    this.serverName = b.serverName;
  }

  /** TLS that trusts the system's roots and presents no certificate. */
  public static TlsOptions systemRoots() {
    return builder().build();
  }

  /** A builder; with nothing set it is {@link #systemRoots()}. */
  public static Builder builder() {
    return new Builder();
  }

  Optional<byte[]> caPem() {
    return Optional.ofNullable(caPem);
  }

  Optional<byte[]> certPem() {
    return Optional.ofNullable(certPem);
  }

  Optional<byte[]> keyPem() {
    return Optional.ofNullable(keyPem);
  }

  Optional<String> serverName() {
    return Optional.ofNullable(serverName);
  }

  /** Builds {@link TlsOptions}. */
  public static final class Builder {
    private byte[] caPem;
    private byte[] certPem;
    private byte[] keyPem;
    private String serverName;

    private Builder() {}

    /**
     * The PEM text of the CA certificates that signed the broker's certificate. Without it, the
     * JVM's default trust store is used.
     */
    public Builder caPem(byte[] pem) {
      this.caPem = pem.clone();
      return this;
    }

    /**
     * The client's certificate chain and its private key, both PEM (the key unencrypted PKCS#8,
     * {@code BEGIN PRIVATE KEY}, RSA or EC), for mutual TLS.
     */
    public Builder clientCertificate(byte[] certChainPem, byte[] privateKeyPem) {
      this.certPem = certChainPem.clone();
      this.keyPem = privateKeyPem.clone();
      return this;
    }

    /**
     * The name the broker's certificate is checked against (and the call's authority), when it is
     * not the target's host: dialling an IP address whose certificate names only {@code
     * broker.internal}, say.
     */
    public Builder serverName(String name) {
      this.serverName = name;
      return this;
    }

    /** The options. */
    public TlsOptions build() {
      return new TlsOptions(this);
    }
  }
}
