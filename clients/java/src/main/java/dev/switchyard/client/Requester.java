// Request/reply from the requesting side: every request of a client pipelined on one shared
// RequestStream, opened at the first request and again after a break.

package dev.switchyard.client;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import switchyard.v1.BrokerGrpc;
import switchyard.v1.BrokerOuterClass.RequestStreamRequest;
import switchyard.v1.BrokerOuterClass.RequestStreamResponse;

/** The shared RequestStream of one client; see {@link SwitchyardClient#request}. */
final class Requester {
  /** The broker's request timeout when a request gives none (its {@code --default-request-timeout}). */
  private static final Duration BROKER_DEFAULT = Duration.ofSeconds(5);

  /**
   * How much longer than the request's own timeout it waits for the broker's answer here, so that
   * the broker's {@code REQUEST_TIMED_OUT} normally ends a request nobody answered, and a broker that
   * answers nothing at all cannot hold it for good.
   */
  private static final Duration GRACE = Duration.ofSeconds(1);

  private final SwitchyardClient client;

  // Guarded by this.
  private FrameStream<RequestStreamRequest, RequestStreamResponse> stream;
  private boolean closed;

  Requester(SwitchyardClient client) {
    this.client = client;
  }

  CompletableFuture<Message> request(OutgoingMessage request, Duration timeout) {
    int timeoutMs = Wire.millis(timeout);
    FrameStream<RequestStreamRequest, RequestStreamResponse> on;
    try {
      on = current();
    } catch (ClosedException e) {
      return CompletableFuture.failedFuture(e);
    }
    FrameStream.Sent<RequestStreamResponse> sent =
        on.send(
            sequence ->
                RequestStreamRequest.newBuilder()
                    .setSequence(sequence)
                    .setMessage(Wire.toPb(request))
                    .setTimeoutMs(timeoutMs)
                    .build());
    Duration wait = (timeoutMs == 0 ? BROKER_DEFAULT : Duration.ofMillis(timeoutMs)).plus(GRACE);
    ScheduledFuture<?> giveUp =
        client
            .scheduler()
            .schedule(
                () -> {
                  on.forget(sent.sequence());
                  sent.answer()
                      .completeExceptionally(
                          Errors.timedOut("no answer from the broker within " + wait.toMillis() + " ms"));
                },
                wait.toNanos(),
                TimeUnit.NANOSECONDS);
    CompletableFuture<Message> reply =
        sent.answer()
            .thenApply(
                answer -> {
                  if (answer.hasError()) {
                    throw Errors.fromStreamError(answer.getError());
                  }
                  if (!answer.hasReply()) {
                    throw Errors.protocol("the broker sent an answer without a reply or an error");
                  }
                  return Wire.fromPb(answer.getReply());
                });
    reply.whenComplete(
        (message, error) -> {
          giveUp.cancel(false);
          if (reply.isCancelled()) {
            on.forget(sent.sequence());
          }
        });
    return reply;
  }

  /** Fails what waits with {@link ClosedException}; later requests fail with it too. */
  void close() {
    FrameStream<RequestStreamRequest, RequestStreamResponse> last;
    synchronized (this) {
      closed = true;
      last = stream;
      stream = null;
    }
    if (last != null) {
      last.end(Errors.closed("the client"));
    }
  }

  /** The open stream, or a new one in place of a broken one. */
  private synchronized FrameStream<RequestStreamRequest, RequestStreamResponse> current() {
    if (closed) {
      throw Errors.closed("the client");
    }
    if (stream == null || stream.broken()) {
      stream =
          FrameStream.open(
              client, BrokerGrpc.getRequestStreamMethod(), RequestStreamResponse::getSequence, "request");
    }
    return stream;
  }
}
