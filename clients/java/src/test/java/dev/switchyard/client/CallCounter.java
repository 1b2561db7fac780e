// An interceptor that counts the calls a client makes, by method, for tests of batching.

package dev.switchyard.client;

import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.MethodDescriptor;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/** Counts calls per bare method name ("Ack", "RequestStream", ...). */
final class CallCounter implements ClientInterceptor {
  private final Map<String, AtomicInteger> calls = new ConcurrentHashMap<>();

  @Override
  public <Q, R> ClientCall<Q, R> interceptCall(MethodDescriptor<Q, R> method, CallOptions options, Channel next) {
    calls.computeIfAbsent(method.getBareMethodName(), m -> new AtomicInteger()).incrementAndGet();
    return next.newCall(method, options);
  }

  int count(String method) {
    AtomicInteger n = calls.get(method);
    return n == null ? 0 : n.get();
  }
}
