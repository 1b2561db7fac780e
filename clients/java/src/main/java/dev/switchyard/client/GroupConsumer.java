// A consumer of a queue group: its deliveries, read as an EventStream, and their settlements.

package dev.switchyard.client;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import switchyard.v1.BrokerGrpc;
import switchyard.v1.BrokerOuterClass;
import switchyard.v1.BrokerOuterClass.ConsumeRequest;

/**
 * One consumer of a queue group, made by {@link SwitchyardClient#consume}: the {@link Delivery}s
 * this consumer must settle. Within a group each message goes to one consumer; it holds at most its
 * prefetch unsettled. Settlements are batched into few Ack calls.
 *
 * <p>When the connection drops it does not end: it tells {@link
 * ConsumeOptions.Builder#onDisconnect}, joins its group again by itself with backoff, and the broker
 * redelivers what it held. It ends when closed, or when the broker ends it for good (a {@link
 * GroupDeletedException} when its group is deleted), which reads then throw.
 *
 * <p><b>Closing</b> sends the settlements already made (waiting at most the client's call timeout),
 * then leaves the group. What is still unsettled then goes back to the group, as a {@code nack()}
 * of each would, and is redelivered to the group's other consumers with the next attempt; settling
 * it afterwards fails with {@link ClosedException}. Nothing closes a forgotten consumer (its
 * stream stays open and keeps receiving), so close it (try-with-resources), or what it received and
 * nobody took waits for its ack deadline. A {@link Delivery} taken and dropped unsettled, though,
 * is nacked when the garbage collector finds it, unless its id was read: a forgotten settlement
 * costs a redelivery, not a prefetch slot held until the deadline.
 *
 * <pre>{@code
 * try (GroupConsumer workers = client.consume("images.resize", "resizers",
 *     ConsumeOptions.builder().prefetch(10).build())) {
 *   for (Delivery d : workers) {
 *     try {
 *       resize(d.message().payload());
 *       d.ack();
 *     } catch (IOException e) {
 *       d.nack(Duration.ofSeconds(1));
 *     }
 *   }
 * }
 * }</pre>
 */
public final class GroupConsumer extends EventStream<Delivery> {
  private final SwitchyardClient client;
  private final String topic;
  private final String group;
  private final Settler settler;
  private final ResumableStream<ConsumeRequest, BrokerOuterClass.Delivery> stream;

  GroupConsumer(SwitchyardClient client, String topic, String group, ConsumeOptions options) {
    this.client = client;
    this.topic = topic;
    this.group = group;
    this.settler = new Settler(client, options.maxAckBatch());
    ConsumeRequest request =
        ConsumeRequest.newBuilder()
            .setTopic(topic)
            .setGroup(group)
            .setMode(options.mode().toPb())
            .setPrefetch(options.prefetch())
            .setAckDeadlineMs(Wire.millis(options.ackDeadline()))
            .setStandby(options.standby())
            .build();
    this.stream =
        ResumableStream.open(client, BrokerGrpc.getConsumeMethod(), request, "consumer", options.onDisconnect());
  }

  /** The group's topic pattern. */
  public String topic() {
    return topic;
  }

  /** The group's name. */
  public String group() {
    return group;
  }

  @Override
  Delivery take(long timeoutNanos) throws InterruptedException {
    return stream.take(timeoutNanos, this::delivery);
  }

  /**
   * The delivery of an item; null for a drop (told to onDisconnect already) and for what a stream
   * that has since ended delivered, which the broker has taken back.
   */
  private Delivery delivery(ResumableStream.Item<BrokerOuterClass.Delivery> item) {
    if (!(item instanceof ResumableStream.Received<BrokerOuterClass.Delivery> received)
        || received.from().dead) {
      return null;
    }
    BrokerOuterClass.Delivery d = received.value();
    // Made here, once the caller takes it: only then can the caller drop it, and the Delivery
    // registers itself with the cleaner that nacks it if it is collected unsettled.
    return new Delivery(Wire.fromPb(d.getMessage()), d.getDeliveryId(), d.getAttempt(), settler);
  }

  /**
   * A future that completes once every settlement made so far is answered by the broker (or failed);
   * it never fails itself.
   */
  public CompletableFuture<Void> flush() {
    return settler.flush();
  }

  /**
   * Sends the settlements already made, then leaves the group: what is still unsettled goes back to
   * it for redelivery. Reads then throw {@link ClosedException}, and so do later settlements.
   * Idempotent.
   */
  @Override
  public void close() {
    try {
      settler.flush().get(client.callTimeout().toNanos(), TimeUnit.NANOSECONDS);
    } catch (TimeoutException | ExecutionException notAll) {
      // What is not answered by now goes back to the group with the rest when the stream ends.
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    settler.close();
    stream.close();
  }
}
