// The one table from the broker's reason (or, without one, the gRPC code) to the exception class.

package dev.switchyard.client;

import io.grpc.Status;
import java.util.Map;
import java.util.function.Function;

/**
 * Which exception each reason of the broker's {@code docs/semantics.md} ("Reasons") makes, and, for
 * a status without a reason or with one newer than this client, which its code makes. Every reason
 * of the table is here, so that a test can hold the two side by side.
 */
final class Reasons {
  /** The ErrorInfo domain of the broker's reasons; an ErrorInfo from elsewhere is not read. */
  static final String DOMAIN = "switchyard.dev";

  static final Map<String, Function<ErrorDetails, SwitchyardException>> BY_REASON =
      Map.ofEntries(
          Map.entry("INVALID_ARGUMENT", InvalidArgumentException::new),
          Map.entry("GROUP_FULL", GroupFullException::new),
          Map.entry("GROUP_BYTES_FULL", GroupFullException::new),
          Map.entry("MEMORY_FULL", GroupFullException::new),
          Map.entry("TOO_MANY_STREAMS", ResourceExhaustedException::new),
          Map.entry("DISK_FULL", ResourceExhaustedException::new),
          Map.entry("GROUP_EXCLUSIVE_TAKEN", GroupExclusiveTakenException::new),
          Map.entry("MODE_MISMATCH", GroupConflictException::new),
          Map.entry("GROUP_CONFLICT", GroupConflictException::new),
          Map.entry("UNKNOWN_GROUP", UnknownGroupException::new),
          Map.entry("GROUP_DELETED", GroupDeletedException::new),
          Map.entry("NO_RESPONDERS", NoRespondersException::new),
          Map.entry("SHUTTING_DOWN", UnavailableException::new),
          Map.entry("STORAGE_FAILED", UnavailableException::new),
          Map.entry("CLUSTER_UNAVAILABLE", UnavailableException::new),
          Map.entry("REQUEST_TIMED_OUT", TimedOutException::new),
          Map.entry("UNSUPPORTED", UnsupportedException::new),
          Map.entry("UNAUTHENTICATED", UnauthenticatedException::new),
          Map.entry("PERMISSION_DENIED", PermissionDeniedException::new),
          Map.entry("NOT_ADMIN", PermissionDeniedException::new));

  private static final Map<Status.Code, Function<ErrorDetails, SwitchyardException>> BY_CODE =
      Map.ofEntries(
          Map.entry(Status.Code.INVALID_ARGUMENT, InvalidArgumentException::new),
          Map.entry(Status.Code.RESOURCE_EXHAUSTED, ResourceExhaustedException::new),
          Map.entry(Status.Code.OUT_OF_RANGE, MessageTooLargeException::new),
          Map.entry(Status.Code.FAILED_PRECONDITION, FailedPreconditionException::new),
          Map.entry(Status.Code.NOT_FOUND, NotFoundException::new),
          Map.entry(Status.Code.UNAVAILABLE, UnavailableException::new),
          Map.entry(Status.Code.DEADLINE_EXCEEDED, TimedOutException::new),
          Map.entry(Status.Code.UNAUTHENTICATED, UnauthenticatedException::new),
          Map.entry(Status.Code.PERMISSION_DENIED, PermissionDeniedException::new),
          Map.entry(Status.Code.UNIMPLEMENTED, UnsupportedException::new),
          Map.entry(Status.Code.CANCELLED, CancelledException::new));

  private Reasons() {}

  /** The exception for details: its reason's class, else its code's, else the base class. */
  static SwitchyardException exceptionFor(ErrorDetails details) {
    Function<ErrorDetails, SwitchyardException> make =
        details.reason() == null ? null : BY_REASON.get(details.reason());
    if (make == null) {
      make = BY_CODE.getOrDefault(details.status().getCode(), SwitchyardException::new);
    }
    return make.apply(details);
  }
}
