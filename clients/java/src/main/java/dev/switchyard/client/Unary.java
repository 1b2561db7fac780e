// One unary call of a generated stub as a CompletableFuture failing with the client's exceptions.

package dev.switchyard.client;

import io.grpc.stub.StreamObserver;
import java.util.concurrent.CompletableFuture;

/** Adapts grpc-java's StreamObserver callbacks of one unary call to a CompletableFuture. */
final class Unary {
  private Unary() {}

  /**
   * Runs call with an observer of its one answer and returns the future of that answer; a failed
   * call fails the future with the {@link SwitchyardException} its status stands for.
   */
  static <R> CompletableFuture<R> call(java.util.function.Consumer<StreamObserver<R>> call) {
    CompletableFuture<R> result = new CompletableFuture<>();
    call.accept(
        new StreamObserver<R>() {
          @Override
          public void onNext(R answer) {
            result.complete(answer);
          }

          @Override
          public void onError(Throwable t) {
            result.completeExceptionally(Errors.fromThrowable(t));
          }

          @Override
          public void onCompleted() {
            if (!result.isDone()) {
              result.completeExceptionally(Errors.protocol("the broker sent no answer"));
            }
          }
        });
    return result;
  }
}
