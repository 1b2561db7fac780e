// The settlements of one consumer, batched into few Ack calls.

package dev.switchyard.client;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import switchyard.v1.BrokerOuterClass.AckRequest;
import switchyard.v1.BrokerOuterClass.AckResponse;

/**
 * Queues the ack, nack, reject and extend of a consumer's deliveries and sends them in batches. A
 * settlement goes at once while fewer than {@link #CALLS_IN_FLIGHT} batches are on their way; while
 * that many are, new ones queue up and go together in the next (at most the batch size): batches
 * grow with the load without delaying anything when it is light. Waiting to fill a batch would be
 * wrong here: each unsent ack holds one of the consumer's prefetch slots at the broker.
 */
final class Settler {
  /**
   * Batches on their way at once. Against a durable broker an Ack returns once it is on disk; with
   * one at a time, the acks made meanwhile would hold their prefetch slots for that fsync too.
   */
  static final int CALLS_IN_FLIGHT = 4;

  enum Action {
    ACK,
    NACK,
    REJECT,
    EXTEND
  }

  private record Settlement(Action action, String id, int nackDelayMs, CompletableFuture<Void> done) {}

  private final SwitchyardClient client;
  private final int maxBatch;
  private final Set<CompletableFuture<Void>> outstanding = ConcurrentHashMap.newKeySet();

  // Guarded by this.
  private final ArrayDeque<Settlement> queue = new ArrayDeque<>();
  private int inFlight;
  private boolean closed;

  Settler(SwitchyardClient client, int maxBatch) {
    this.client = client;
    this.maxBatch = maxBatch;
  }

  /** Queues one settlement; its future completes once the broker has answered for it. */
  CompletableFuture<Void> settle(Action action, String id, int nackDelayMs) {
    CompletableFuture<Void> done = new CompletableFuture<>();
    List<List<Settlement>> due;
    synchronized (this) {
      if (closed) {
        return CompletableFuture.failedFuture(Errors.closed("the consumer"));
      }
      outstanding.add(done);
      done.whenComplete((ok, error) -> outstanding.remove(done));
      queue.add(new Settlement(action, id, nackDelayMs, done));
      due = takeDue();
    }
    due.forEach(this::send);
    return done;
  }

  /**
   * Nacks, without delay, a delivery the collector found unsettled, batched like any settlement.
   * Called on the cleaner's thread, so it never throws, and nobody waits for its outcome: if it
   * fails (the broker gone, the delivery redelivered already), the ack deadline mends it. Once the
   * consumer or its client is closed it does nothing: closing handed the delivery back already.
   */
  void nackForgotten(String id) {
    try {
      synchronized (this) {
        if (closed || client.isClosed()) {
          return;
        }
      }
      settle(Action.NACK, id, 0);
    } catch (RuntimeException ignored) {
      // Nobody to tell: the cleaner's thread would drop it anyway.
    }
  }

  /** A future that completes once every settlement queued before it is answered; never fails. */
  CompletableFuture<Void> flush() {
    return CompletableFuture.allOf(outstanding.toArray(CompletableFuture[]::new))
        .handle((ignored, error) -> null);
  }

  /** Takes no more settlements: later ones fail with {@link ClosedException}. */
  synchronized void close() {
    closed = true;
  }

  /** The batches to send now, each taking a slot. Caller holds this. */
  private List<List<Settlement>> takeDue() {
    List<List<Settlement>> due = new ArrayList<>();
    while (inFlight < CALLS_IN_FLIGHT && !queue.isEmpty()) {
      List<Settlement> batch = new ArrayList<>(Math.min(queue.size(), maxBatch));
      while (batch.size() < maxBatch && !queue.isEmpty()) {
        batch.add(queue.poll());
      }
      inFlight++;
      due.add(batch);
    }
    return due;
  }

  /**
   * Sends one batch as its Ack calls: one with the acks, rejects, extends and undelayed nacks, and
   * one per other nack delay (a call carries one delay). A delay is kept out of the first call
   * because the broker refuses a whole call whose delay is over its limit, which must not take the
   * acks down with it.
   */
  private void send(List<Settlement> batch) {
    Map<Integer, List<Settlement>> calls = new LinkedHashMap<>();
    for (Settlement s : batch) {
      int key = s.action() == Action.NACK ? s.nackDelayMs() : 0;
      calls.computeIfAbsent(key, k -> new ArrayList<>()).add(s);
    }
    AtomicInteger pending = new AtomicInteger(calls.size());
    calls.forEach(
        (delay, settlements) -> {
          AckRequest.Builder request = AckRequest.newBuilder().setNackDelayMs(delay);
          for (Settlement s : settlements) {
            switch (s.action()) {
              case ACK -> request.addAckIds(s.id());
              case NACK -> request.addNackIds(s.id());
              case REJECT -> request.addRejectIds(s.id());
              case EXTEND -> request.addExtendIds(s.id());
            }
          }
          Unary.<AckResponse>call(observer -> client.unary().ack(request.build(), observer))
              .whenComplete(
                  (response, error) -> {
                    resolve(settlements, response, error);
                    if (pending.decrementAndGet() == 0) {
                      batchDone();
                    }
                  });
        });
  }

  private static void resolve(List<Settlement> settlements, AckResponse response, Throwable error) {
    if (error != null) {
      SwitchyardException why = Errors.fromThrowable(error);
      settlements.forEach(s -> s.done().completeExceptionally(why));
      return;
    }
    Set<String> unknown = new HashSet<>(response.getUnknownIdsList());
    for (Settlement s : settlements) {
      if (unknown.contains(s.id())) {
        s.done().completeExceptionally(UnknownDeliveryException.of(s.id()));
      } else {
        s.done().complete(null);
      }
    }
  }

  private void batchDone() {
    List<List<Settlement>> due;
    synchronized (this) {
      inFlight--;
      due = takeDue();
    }
    due.forEach(this::send);
  }
}
