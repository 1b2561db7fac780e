// One bidirectional stream of numbered frames, each answered by a frame with its number: what the
// Publisher's PublishStream and the client's shared RequestStream are built on.

package dev.switchyard.client;

import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.function.LongFunction;
import java.util.function.ToLongFunction;

/**
 * Sends frames numbered from 1 and completes each one's future with the answer that carries its
 * number, in whatever order they come. Once the stream ends, every frame still waiting fails with
 * a {@link DisconnectedException} (it may or may not have been handled; it is never sent again),
 * or with the {@link ClosedException} it was ended with, and so does every later send: the owner
 * then opens a new stream.
 */
final class FrameStream<Q, R> {
  private final ClientCall<Q, R> call;
  private final ToLongFunction<R> sequenceOf;
  private final Executor callbacks;
  private final String what;

  // Guarded by this.
  private final Map<Long, CompletableFuture<R>> waiting = new HashMap<>();
  private long lastSequence;
  private SwitchyardException failed;

  /** One frame sent: its number, and the future of its answer. */
  record Sent<R>(long sequence, CompletableFuture<R> answer) {}

  private FrameStream(
      ClientCall<Q, R> call, ToLongFunction<R> sequenceOf, Executor callbacks, String what) {
    this.call = call;
    this.sequenceOf = sequenceOf;
    this.callbacks = callbacks;
    this.what = what;
  }

  /** Opens a stream of method on the client's channel. It does not wait for the broker. */
  static <Q, R> FrameStream<Q, R> open(
      SwitchyardClient client, MethodDescriptor<Q, R> method, ToLongFunction<R> sequenceOf, String what) {
    FrameStream<Q, R> stream =
        new FrameStream<>(
            client.channel().newCall(method, CallOptions.DEFAULT), sequenceOf, client.callbacks(), what);
    synchronized (stream) {
      stream.call.start(stream.new Answers(), new Metadata());
      stream.call.request(ResumableStream.WINDOW);
    }
    return stream;
  }

  /**
   * Sends the frame that frameOf makes for the next number. The answer's future completes on a
   * gRPC thread, or on the client's callback executor if the stream had already ended.
   */
  synchronized Sent<R> send(LongFunction<Q> frameOf) {
    CompletableFuture<R> answer = new CompletableFuture<>();
    long sequence = ++lastSequence;
    if (failed != null) {
      SwitchyardException why = failed;
      // Never completed on the caller's thread: the caller may hold locks its callbacks take.
      callbacks.execute(() -> answer.completeExceptionally(why));
      return new Sent<>(sequence, answer);
    }
    waiting.put(sequence, answer);
    // An error here means the stream broke: onClose has the status and fails what waits.
    call.sendMessage(frameOf.apply(sequence));
    return new Sent<>(sequence, answer);
  }

  /** Drops a frame its sender no longer waits for; its answer, if it comes, is ignored. */
  synchronized void forget(long sequence) {
    waiting.remove(sequence);
  }

  /** Whether the stream has ended: the next frame should go on a new one. */
  synchronized boolean broken() {
    return failed != null;
  }

  /** Ends the stream: what waits fails with why, and the call is cancelled. */
  void end(SwitchyardException why) {
    if (fail(why)) {
      synchronized (this) {
        call.cancel(what + " closed", null);
      }
    }
  }

  /** Marks the stream failed with why and fails what waits; false if it had failed already. */
  private boolean fail(SwitchyardException why) {
    List<CompletableFuture<R>> failing;
    synchronized (this) {
      if (failed != null) {
        return false;
      }
      failed = why;
      failing = new ArrayList<>(waiting.values());
      waiting.clear();
    }
    failing.forEach(answer -> answer.completeExceptionally(why));
    return true;
  }

  /** The listener of the call: answers by number, and the end. */
  private final class Answers extends ClientCall.Listener<R> {
    @Override
    public void onMessage(R answer) {
      CompletableFuture<R> waiter;
      synchronized (FrameStream.this) {
        waiter = waiting.remove(sequenceOf.applyAsLong(answer));
      }
      if (waiter != null) {
        waiter.complete(answer);
      }
      call.request(1);
    }

    @Override
    public void onClose(Status status, Metadata trailers) {
      Status why = status.isOk() ? Status.UNAVAILABLE.withDescription("the broker ended the " + what + " stream") : status;
      fail(Errors.disconnected(Errors.fromStatus(why, trailers)));
    }
  }
}
