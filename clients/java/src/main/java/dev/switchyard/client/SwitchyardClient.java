// The client: one gRPC channel to a broker, and every pattern on it.

package dev.switchyard.client;

import io.grpc.ManagedChannel;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import switchyard.v1.BrokerGrpc;
import switchyard.v1.BrokerOuterClass.PublishRequest;
import switchyard.v1.BrokerOuterClass.PublishResponse;

/**
 * A client of one Switchyard broker: publish/subscribe, work queues, exclusive consumers,
 * request/reply and group administration, over one HTTP/2 connection. Thread-safe; make one and
 * share it. Close it when done: that ends every stream made from it.
 *
 * <pre>{@code
 * try (SwitchyardClient client = SwitchyardClient.connect("127.0.0.1:50051")) {
 *   client.publish("orders.created", "A1").join();
 * }
 * }</pre>
 *
 * <p>Unary calls ({@code publish*}, {@link #admin()}) return a {@link CompletableFuture} that fails
 * with a {@link SwitchyardException} of the broker's reason, bounded by the call timeout. Streams
 * ({@link #subscribe}, {@link #consume}) are opened before the method returns, so a refusal is
 * thrown there, and reconnect by themselves when the connection drops. {@link #request} pipelines
 * on one RequestStream that every caller of this client shares.
 *
 * <p>Futures complete on gRPC's threads: keep what you chain on them short, or use the {@code
 * *Async} variants of {@link CompletableFuture}.
 */
public final class SwitchyardClient implements AutoCloseable {
  private final ManagedChannel channel;
  private final Duration callTimeout;
  private final BrokerGrpc.BrokerStub broker;
  private final Admin admin;
  private final Requester requester;

  SwitchyardClient(ManagedChannel channel, Duration callTimeout) {
    this.channel = channel;
    this.callTimeout = callTimeout;
    this.broker = BrokerGrpc.newStub(channel);
    this.admin = new Admin(this);
    this.requester = new Requester(this);
  }

  /** A builder of a client of the broker at target ({@code host:port}, or an http(s) URL). */
  public static ClientBuilder builder(String target) {
    return new ClientBuilder(target);
  }

  /** A client of the broker at target, plaintext, no token, the default call timeout. */
  public static SwitchyardClient connect(String target) {
    return builder(target).build();
  }

  /** Publishes one message with a UTF-8 payload. */
  public CompletableFuture<Published> publish(String topic, String payload) {
    return publish(OutgoingMessage.of(topic, payload));
  }

  /** Publishes one message. */
  public CompletableFuture<Published> publish(String topic, byte[] payload) {
    return publish(OutgoingMessage.of(topic, payload));
  }

  /**
   * Publishes one message (with headers, key, reply-to or correlation id as it has them) to every
   * matching subscription and group. Publishing to a topic nobody listens on is not an error: the
   * {@link Published} says how many took it.
   */
  public CompletableFuture<Published> publish(OutgoingMessage message) {
    return publishBatch(List.of(message)).thenApply(published -> published.get(0));
  }

  /**
   * Publishes messages in one call, all or nothing: if any is invalid ({@link
   * InvalidArgumentException} whose field is like {@code messages[2].topic}) or any group it would go
   * to is full ({@link GroupFullException}), none is published. The answers are in the order given.
   */
  public CompletableFuture<List<Published>> publishBatch(List<OutgoingMessage> messages) {
    PublishRequest.Builder request = PublishRequest.newBuilder();
    messages.forEach(m -> request.addMessages(Wire.toPb(m)));
    int count = messages.size();
    return Unary.<PublishResponse>call(observer -> unary().publish(request.build(), observer))
        .thenApply(
            response -> {
          if (response.getPublishedCount() != count) {
            throw Errors.protocol(
                "the broker answered for " + response.getPublishedCount() + " of " + count + " messages");
          }
          List<Published> out = new ArrayList<>(count);
          response.getPublishedList().forEach(p -> out.add(Wire.fromPb(p)));
          return List.copyOf(out);
            });
  }

  /** A batching publisher on a PublishStream with the default options. */
  public Publisher publisher() {
    return publisher(PublisherOptions.defaults());
  }

  /** A batching publisher on a PublishStream; see {@link Publisher}. */
  public Publisher publisher(PublisherOptions options) {
    return new Publisher(this, options);
  }

  /**
   * Subscribes to pattern ({@code orders.>}, {@code *.created}: {@code *} is one token, {@code >}
   * as the last token one or more). When it returns, the subscription is active: every message
   * published after that reaches it.
   *
   * @throws SwitchyardException the broker's refusal: an {@link InvalidArgumentException} for a bad
   *     pattern, a {@link PermissionDeniedException}, or a {@link TimedOutException} if it was not
   *     accepted within the call timeout
   */
  public Subscription subscribe(String pattern) {
    return new Subscription(this, Objects.requireNonNull(pattern, "pattern"));
  }

  /** Joins the group (topic pattern, group) with the default options; see {@link #consume(String, String, ConsumeOptions)}. */
  public GroupConsumer consume(String topic, String group) {
    return consume(topic, group, ConsumeOptions.defaults());
  }

  /**
   * Joins the group (topic pattern, group), creating it with the broker's defaults if it does not
   * exist (use {@link Admin#declareGroup} for other settings). When it returns, the consumer is
   * attached (a standby is queued).
   *
   * @throws GroupExclusiveTakenException an exclusive group that has its active consumer, when not
   *     asked to stand by
   * @throws GroupConflictException the group exists in the other mode
   */
  public GroupConsumer consume(String topic, String group, ConsumeOptions options) {
    return new GroupConsumer(this, topic, group, options);
  }

  /** Sends a request with a UTF-8 payload; see {@link #request(OutgoingMessage, Duration)}. */
  public CompletableFuture<Message> request(String topic, String payload, Duration timeout) {
    return request(OutgoingMessage.of(topic, payload), timeout);
  }

  /** Sends a request; see {@link #request(OutgoingMessage, Duration)}. */
  public CompletableFuture<Message> request(String topic, byte[] payload, Duration timeout) {
    return request(OutgoingMessage.of(topic, payload), timeout);
  }

  /**
   * Publishes request with a fresh reply inbox and completes with the first reply, waiting at most
   * timeout (at most the broker's {@code --max-request-timeout}; zero is the broker's default,
   * 5 s). Set the message's correlation id to choose the one the reply must carry. Requests from
   * every thread go pipelined on one RequestStream this client shares; one that breaks fails the
   * requests it carried with a {@link DisconnectedException} (they are never sent again, as they
   * may have been handled) and the next request opens a new one.
   *
   * <p>Fails with {@link NoRespondersException} at once when nobody subscribes to or consumes the
   * topic, and {@link TimedOutException} when nobody answers in time.
   */
  public CompletableFuture<Message> request(OutgoingMessage request, Duration timeout) {
    return requester.request(request, timeout);
  }

  /** Answers requests on topic as a member of group; see {@link #serve(String, String, RequestHandler, ServeOptions)}. */
  public Responder serve(String topic, String group, RequestHandler handler) {
    return serve(topic, group, handler, ServeOptions.defaults());
  }

  /**
   * Answers requests on topic as a member of group with handler, at most {@code
   * options.concurrency()} at once: each reply is published to the request's reply-to with its
   * correlation id, then the request is acked; a handler that throws rejects its request. The
   * responder is attached when this returns. Close it to stop gracefully.
   */
  public Responder serve(String topic, String group, RequestHandler handler, ServeOptions options) {
    return new Responder(this, topic, group, handler, options);
  }

  /** Group administration: declare, delete and list groups. */
  public Admin admin() {
    return admin;
  }

  /**
   * Closes the connection: every stream and call on it ends ({@link ClosedException} for streams),
   * and what waits on the shared RequestStream fails. Idempotent.
   */
  @Override
  public void close() {
    requester.close();
    channel.shutdownNow();
    try {
      channel.awaitTermination(callTimeout.toMillis(), TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  // --- for the rest of the package ------------------------------------------------------------

  ManagedChannel channel() {
    return channel;
  }

  Duration callTimeout() {
    return callTimeout;
  }

  ScheduledExecutorService scheduler() {
    return ClientThreads.TIMER;
  }

  /** Where the client runs what must not run on the caller's thread or under its locks. */
  ExecutorService callbacks() {
    return ClientThreads.CALLBACKS;
  }

  boolean isClosed() {
    return channel.isShutdown();
  }

  /** The async stub with the call timeout as its deadline, for one unary call. */
  BrokerGrpc.BrokerStub unary() {
    return broker.withDeadlineAfter(callTimeout.toNanos(), TimeUnit.NANOSECONDS);
  }
}
