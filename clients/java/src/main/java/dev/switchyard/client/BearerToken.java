// The bearer token, sent as "authorization: Bearer <token>" with every call, streams included.

package dev.switchyard.client;

import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ForwardingClientCall;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;

/**
 * An interceptor rather than grpc-java's CallCredentials: the broker accepts a token over plaintext
 * (the usual setup on loopback), and an interceptor sends it whatever the transport.
 */
final class BearerToken implements ClientInterceptor {
  private static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

  private final String header;

  private BearerToken(String token) {
    this.header = "Bearer " + token;
  }

  /** The interceptor for token, or an InvalidArgumentException on field "token". */
  static BearerToken of(String token) {
    if (token == null || token.isEmpty()) {
      throw Errors.invalidArgument("token", "is empty");
    }
    // gRPC metadata values are visible ASCII and spaces; anything else would fail every call with
    // an error far from its cause. The token itself is never repeated in an error.
    for (int i = 0; i < token.length(); i++) {
      char c = token.charAt(i);
      if (c < 0x20 || c > 0x7e) {
        throw Errors.invalidArgument("token", "may hold only printable ASCII");
      }
    }
    return new BearerToken(token);
  }

  @Override
  public <Q, R> ClientCall<Q, R> interceptCall(
      MethodDescriptor<Q, R> method, CallOptions options, Channel next) {
    return new ForwardingClientCall.SimpleForwardingClientCall<>(next.newCall(method, options)) {
      @Override
      public void start(Listener<R> listener, Metadata headers) {
        headers.put(AUTHORIZATION, header);
        super.start(listener, headers);
      }
    };
  }
}
