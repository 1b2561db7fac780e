// Turning what grpc-java reports (a status, its trailers, a StreamError frame) into the client's
// exceptions, with the broker's google.rpc details read from grpc-status-details-bin.

package dev.switchyard.client;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.BadRequest;
import com.google.rpc.ErrorInfo;
import com.google.rpc.RetryInfo;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.protobuf.StatusProto;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import switchyard.v1.BrokerOuterClass.StreamError;

/** Builds {@link SwitchyardException}s; never reads a message's text. */
final class Errors {
  private Errors() {}

  /**
   * The exception for anything a call failed with: a {@link SwitchyardException} as it is (unwrapped
   * from a CompletableFuture's wrappers), a grpc-java status exception with its details, or anything
   * else as an {@code UNKNOWN} status.
   */
  static SwitchyardException fromThrowable(Throwable failure) {
    Throwable t = failure;
    while ((t instanceof CompletionException || t instanceof ExecutionException)
        && t.getCause() != null) {
      t = t.getCause();
    }
    if (t instanceof SwitchyardException known) {
      return known;
    }
    Status status = Status.fromThrowable(t);
    return fromStatus(status, StatusProto.fromThrowable(t), t);
  }

  /** The exception for a call that closed with status and trailers (a ClientCall's onClose). */
  static SwitchyardException fromStatus(Status status, Metadata trailers) {
    return fromStatus(status, StatusProto.fromStatusAndTrailers(status, trailers), status.getCause());
  }

  /**
   * The exception for a refused PublishStream or RequestStream frame: the code, message and reason a
   * unary call's status would have carried.
   */
  static SwitchyardException fromStreamError(StreamError error) {
    Status status = Status.fromCodeValue(error.getCode()).withDescription(error.getMessage());
    String reason = error.getReason().isEmpty() ? null : error.getReason();
    return Reasons.exceptionFor(
        new ErrorDetails(status, reason, Map.copyOf(error.getMetadataMap()), null, null));
  }

  /** A stream that ended under a call, with the status it ended with. */
  static DisconnectedException disconnected(SwitchyardException why) {
    return new DisconnectedException(why.details(), why);
  }

  /** The client's own refusal of an option or argument, naming it as the broker would. */
  static InvalidArgumentException invalidArgument(String field, String message) {
    Status status = Status.INVALID_ARGUMENT.withDescription(field + ": " + message);
    return new InvalidArgumentException(new ErrorDetails(status, null, Map.of(), field, null));
  }

  /** What fails once its publisher, requester, subscription or consumer is closed. */
  static ClosedException closed(String what) {
    return new ClosedException(ErrorDetails.of(Status.CANCELLED.withDescription(what + " is closed")));
  }

  /** A wait the client bounded itself that ran out. */
  static TimedOutException timedOut(String message) {
    return new TimedOutException(ErrorDetails.of(Status.DEADLINE_EXCEEDED.withDescription(message)));
  }

  /** What a thread interrupted while it waited gets; its interrupt flag is set again. */
  static CancelledException interrupted(InterruptedException e) {
    Thread.currentThread().interrupt();
    return new CancelledException(
        ErrorDetails.of(Status.CANCELLED.withDescription("interrupted while waiting").withCause(e)));
  }

  /** The broker answered something the client cannot make sense of (a bug, or a schema mismatch). */
  static SwitchyardException protocol(String message) {
    return new SwitchyardException(ErrorDetails.of(Status.INTERNAL.withDescription(message)));
  }

  private static SwitchyardException fromStatus(
      Status status, com.google.rpc.Status details, Throwable cause) {
    String reason = null;
    Map<String, String> metadata = Map.of();
    String field = null;
    Duration retryAfter = null;
    if (details != null) {
      for (Any detail : details.getDetailsList()) {
        try {
          if (detail.is(ErrorInfo.class)) {
            ErrorInfo info = detail.unpack(ErrorInfo.class);
            if (Reasons.DOMAIN.equals(info.getDomain())) {
              reason = info.getReason();
              metadata = info.getMetadataMap();
            }
          } else if (detail.is(BadRequest.class)) {
            BadRequest bad = detail.unpack(BadRequest.class);
            if (field == null && bad.getFieldViolationsCount() > 0) {
              field = bad.getFieldViolations(0).getField();
            }
          } else if (detail.is(RetryInfo.class)) {
            com.google.protobuf.Duration delay = detail.unpack(RetryInfo.class).getRetryDelay();
            retryAfter = Duration.ofSeconds(delay.getSeconds(), delay.getNanos());
          }
        } catch (InvalidProtocolBufferException skipped) {
          // A detail that does not decode is skipped like one of a type this client does not know:
          // the status itself still says what happened.
        }
      }
    }
    // The cause rides on the status: the exception's constructor takes it from there.
    Status withCause = cause == null || status.getCause() != null ? status : status.withCause(cause);
    return Reasons.exceptionFor(new ErrorDetails(withCause, reason, metadata, field, retryAfter));
  }
}
