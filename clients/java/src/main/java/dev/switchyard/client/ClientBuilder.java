// The options of a client: where the broker is, TLS, the bearer token and the per-call timeout.

package dev.switchyard.client;

import io.grpc.ChannelCredentials;
import io.grpc.ClientInterceptor;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.TlsChannelCredentials;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * Builds a {@link SwitchyardClient}. The connection is plaintext without a token unless told
 * otherwise; an {@code https://} target, or {@link #tls(TlsOptions)}, turns TLS on.
 *
 * <pre>{@code
 * SwitchyardClient client = SwitchyardClient.builder("broker.internal:50051")
 *     .tls(TlsOptions.builder().caPem(caPem).build())
 *     .token(System.getenv("SWITCHYARD_TOKEN"))
 *     .callTimeout(Duration.ofSeconds(5))
 *     .build();
 * }</pre>
 *
 * <p>{@link #build()} does not wait for the connection: the first call makes it, and a failed
 * handshake fails that call with an {@link UnavailableException}. Options that cannot be used (a CA
 * that is not PEM, a certificate without its key, a token that is not printable ASCII) fail {@link
 * #build()} with an {@link InvalidArgumentException} whose {@code field()} names the option.
 */
public final class ClientBuilder {
  /** The per-call timeout unless told otherwise. */
  public static final Duration DEFAULT_CALL_TIMEOUT = Duration.ofSeconds(10);

  private static final int MAX_INBOUND_MESSAGE_BYTES = 64 << 20;

  private final String target;
  private TlsOptions tls;
  private String token;
  private Duration callTimeout = DEFAULT_CALL_TIMEOUT;
  private final List<ClientInterceptor> interceptors = new ArrayList<>();

  ClientBuilder(String target) {
    this.target = Objects.requireNonNull(target, "target");
  }

  /**
   * Speak TLS, checked as tls says: {@link TlsOptions#systemRoots()} to trust the JVM's default
   * trust store, or a builder with the broker's CA, a client certificate and a server name.
   */
  public ClientBuilder tls(TlsOptions tls) {
    this.tls = Objects.requireNonNull(tls, "tls");
    return this;
  }

  /**
   * Send {@code authorization: Bearer <token>} with every call, streams included, for a broker
   * started with {@code --auth-file} or {@code --auth-token}. Without TLS the token crosses the
   * connection in clear text: fine to a broker on loopback, readable by anyone on the path between
   * two hosts.
   */
  public ClientBuilder token(String token) {
    this.token = Objects.requireNonNull(token, "token");
    return this;
  }

  /**
   * How long each unary call (publish, admin, ack) may take, and how long opening a stream may wait
   * for the broker to accept it. Streams themselves and requests (which have their own timeout) are
   * not bounded by it. Default {@link #DEFAULT_CALL_TIMEOUT}.
   */
  public ClientBuilder callTimeout(Duration timeout) {
    if (timeout.isNegative() || timeout.isZero()) {
      throw Errors.invalidArgument("callTimeout", "must be positive");
    }
    this.callTimeout = timeout;
    return this;
  }

  /**
   * A grpc-java interceptor on every call, for what this client does not wrap (tracing, metrics).
   * Interceptors run in the order added, after the token's.
   */
  public ClientBuilder interceptor(ClientInterceptor interceptor) {
    interceptors.add(Objects.requireNonNull(interceptor, "interceptor"));
    return this;
  }

  /** The client, with its channel made (not yet connected). */
  public SwitchyardClient build() {
    String address = target;
    TlsOptions transport = tls;
    if (address.startsWith("https://")) {
      address = address.substring("https://".length());
      transport = transport == null ? TlsOptions.systemRoots() : transport;
    } else if (address.startsWith("http://")) {
      if (transport != null) {
        throw Errors.invalidArgument("target", "an http:// target with TLS options");
      }
      address = address.substring("http://".length());
    }
    List<ClientInterceptor> all = new ArrayList<>();
    if (token != null) {
      all.add(BearerToken.of(token));
    }
    all.addAll(interceptors);
    ManagedChannelBuilder<?> channel =
        Grpc.newChannelBuilder(address, credentials(transport))
            .maxInboundMessageSize(MAX_INBOUND_MESSAGE_BYTES)
            .intercept(reversed(all));
    if (transport != null) {
      transport.serverName().ifPresent(channel::overrideAuthority);
    }
    ManagedChannel built = channel.build();
    return new SwitchyardClient(built, callTimeout);
  }

  /** ManagedChannelBuilder.intercept runs the last given first; the order here is the one added. */
  private static List<ClientInterceptor> reversed(List<ClientInterceptor> interceptors) {
    List<ClientInterceptor> out = new ArrayList<>(interceptors);
    java.util.Collections.reverse(out);
    return out;
  }

  private static ChannelCredentials credentials(TlsOptions tls) {
    if (tls == null) {
      return InsecureChannelCredentials.create();
    }
    TlsChannelCredentials.Builder creds = TlsChannelCredentials.newBuilder();
    // Without a CA the builder keeps grpc-java's default: the JVM's trust store.
    tls.caPem().ifPresent(pem -> creds.trustManager(Pem.trust(pem).getTrustManagers()));
    if (tls.certPem().isPresent() != tls.keyPem().isPresent()) {
      throw Errors.invalidArgument("tls.cert", "a client certificate needs its key, and a key its certificate");
    }
    if (tls.certPem().isPresent()) {
      creds.keyManager(Pem.identity(tls.certPem().get(), tls.keyPem().get()).getKeyManagers());
    }
    return creds.build();
  }
}
