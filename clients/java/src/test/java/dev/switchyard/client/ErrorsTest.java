// The reason table against the broker's documentation, and the reading of google.rpc details from
// trailers and StreamError frames, without a broker.

package dev.switchyard.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Any;
import com.google.rpc.BadRequest;
import com.google.rpc.ErrorInfo;
import com.google.rpc.RetryInfo;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CompletionException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import switchyard.v1.BrokerOuterClass.StreamError;

class ErrorsTest {
  private static final Path SEMANTICS = Path.of("../../docs/semantics.md");

  /** Rows of the "Reasons" table: reason to its gRPC code. */
  private static Map<String, Status.Code> documentedReasons() throws Exception {
    String doc = Files.readString(SEMANTICS);
    String table = doc.substring(doc.indexOf("### Reasons"));
    Map<String, Status.Code> reasons = new LinkedHashMap<>();
    Matcher row = Pattern.compile("(?m)^\\| `([A-Z_]+)` \\| `([A-Z_]+)` \\|").matcher(table);
    while (row.find()) {
      reasons.put(row.group(1), Status.Code.valueOf(row.group(2)));
    }
    assertTrue(reasons.size() >= 20, "the table of " + SEMANTICS + " has " + reasons.size() + " rows");
    return reasons;
  }

  /**
   * Every reason of the documented table makes an exception of its own family: the class the
   * reason names, which its code's class is (or is a subclass of), with the reason kept.
   */
  @Test
  void everyDocumentedReasonHasItsClass() throws Exception {
    Map<String, Status.Code> documented = documentedReasons();
    assertEquals(documented.keySet(), Reasons.BY_REASON.keySet(), "the client's table and the documentation's");
    documented.forEach((reason, code) -> {
      ErrorDetails details = new ErrorDetails(Status.fromCode(code), reason, Map.of(), null, null);
      SwitchyardException byReason = Reasons.exceptionFor(details);
      SwitchyardException byCode = Reasons.exceptionFor(ErrorDetails.of(Status.fromCode(code)));
      assertTrue(byCode.getClass().isInstance(byReason),
          reason + ": " + byReason.getClass().getSimpleName() + " is not a " + byCode.getClass().getSimpleName());
      assertEquals(reason, byReason.reason().orElseThrow());
      assertEquals(code, byReason.code());
    });
  }

  /** The classes the callers match on, reason by reason. */
  @Test
  void reasonsPickTheirClass() {
    Map<String, Class<? extends SwitchyardException>> want = Map.of(
        "NO_RESPONDERS", NoRespondersException.class,
        "REQUEST_TIMED_OUT", TimedOutException.class,
        "GROUP_EXCLUSIVE_TAKEN", GroupExclusiveTakenException.class,
        "GROUP_FULL", GroupFullException.class,
        "MEMORY_FULL", GroupFullException.class,
        "UNKNOWN_GROUP", UnknownGroupException.class,
        "GROUP_DELETED", GroupDeletedException.class,
        "INVALID_ARGUMENT", InvalidArgumentException.class,
        "UNAUTHENTICATED", UnauthenticatedException.class,
        "NOT_ADMIN", PermissionDeniedException.class);
    want.forEach((reason, type) -> assertInstanceOf(type,
        Reasons.exceptionFor(new ErrorDetails(Status.UNKNOWN, reason, Map.of(), null, null)), reason));
    // A reason newer than this client takes its code's class.
    assertInstanceOf(UnavailableException.class,
        Reasons.exceptionFor(new ErrorDetails(Status.UNAVAILABLE, "SOMETHING_NEW", Map.of(), null, null)));
    assertInstanceOf(UnavailableException.class, Reasons.exceptionFor(ErrorDetails.of(Status.UNAVAILABLE)));
    assertSame(SwitchyardException.class, Reasons.exceptionFor(ErrorDetails.of(Status.DATA_LOSS)).getClass());
  }

  /** ErrorInfo (of the broker's domain only), BadRequest and RetryInfo are read from the trailer. */
  @Test
  void detailsComeFromTheStatusTrailer() {
    com.google.rpc.Status rpc = com.google.rpc.Status.newBuilder()
        .setCode(Status.Code.RESOURCE_EXHAUSTED.value())
        .setMessage("messages[0]: group g is full")
        .addDetails(Any.pack(ErrorInfo.newBuilder().setDomain("switchyard.dev").setReason("GROUP_FULL")
            .putMetadata("group", "g").putMetadata("max_length", "3").build()))
        .addDetails(Any.pack(BadRequest.newBuilder().addFieldViolations(
            BadRequest.FieldViolation.newBuilder().setField("messages[0]").setDescription("full")).build()))
        .addDetails(Any.pack(RetryInfo.newBuilder()
            .setRetryDelay(com.google.protobuf.Duration.newBuilder().setNanos(100_000_000)).build()))
        .build();
    StatusRuntimeException wire = StatusProto.toStatusRuntimeException(rpc);
    SwitchyardException e = Errors.fromThrowable(new CompletionException(wire));
    GroupFullException full = assertInstanceOf(GroupFullException.class, e);
    assertEquals("GROUP_FULL", full.reason().orElseThrow());
    assertEquals(Map.of("group", "g", "max_length", "3"), full.metadata());
    assertEquals("messages[0]", full.field().orElseThrow());
    assertEquals(Duration.ofMillis(100), full.retryAfter().orElseThrow());
    assertEquals("messages[0]: group g is full", full.status().getDescription());
    assertSame(wire, full.getCause());

    com.google.rpc.Status foreign = rpc.toBuilder().clearDetails()
        .addDetails(Any.pack(ErrorInfo.newBuilder().setDomain("proxy.example").setReason("GROUP_FULL").build())).build();
    SwitchyardException fromProxy = Errors.fromThrowable(StatusProto.toStatusRuntimeException(foreign));
    assertSame(ResourceExhaustedException.class, fromProxy.getClass(), "a reason of another domain is not read");
    assertTrue(fromProxy.reason().isEmpty());
  }

  /** A refused frame's StreamError makes the exception a unary call's status would. */
  @Test
  void streamErrorsAreMappedByReason() {
    SwitchyardException e = Errors.fromStreamError(StreamError.newBuilder()
        .setCode(Status.Code.UNAVAILABLE.value()).setMessage("no responders for svc.x").setReason("NO_RESPONDERS").build());
    assertInstanceOf(NoRespondersException.class, e);
    assertEquals(Status.Code.UNAVAILABLE, e.code());
    SwitchyardException noReason = Errors.fromStreamError(StreamError.newBuilder()
        .setCode(Status.Code.DEADLINE_EXCEEDED.value()).setMessage("late").build());
    assertInstanceOf(TimedOutException.class, noReason);
    assertTrue(noReason.reason().isEmpty());
  }

  /** Durations go to the wire in whole milliseconds, rounded up, never 0 for a positive one. */
  @Test
  void millisRoundUp() {
    assertEquals(0, Wire.millis(Duration.ZERO));
    assertEquals(0, Wire.millis(Duration.ofMillis(-5)));
    assertEquals(1, Wire.millis(Duration.ofNanos(1)));
    assertEquals(1500, Wire.millis(Duration.ofMillis(1500)));
    assertEquals(-1, Wire.millis(Duration.ofDays(365 * 1000)), "past the wire's range: the largest uint32");
  }

  /** The reconnect waits grow from about 100 ms to at most 5 s, and are jittered. */
  @Test
  void backoffGrowsWithinItsBoundsWithJitter() {
    Backoff backoff = new Backoff();
    long[] waits = new long[20];
    for (int i = 0; i < waits.length; i++) {
      waits[i] = backoff.next().toMillis();
      assertTrue(waits[i] >= Backoff.FIRST.toMillis() && waits[i] <= Backoff.MAX.toMillis(), "wait " + waits[i]);
    }
    assertTrue(waits[0] < 2 * Backoff.FIRST.toMillis());
    assertTrue(waits[4] >= 16 * Backoff.FIRST.toMillis());
    assertTrue(waits[19] >= Backoff.MAX.toMillis() / 2);
    boolean jittered = false;
    for (int i = 11; i < waits.length; i++) {
      jittered |= waits[i] != waits[i - 1];
    }
    assertTrue(jittered, "the waits at the cap are all equal");
    backoff.reset();
    assertTrue(backoff.next().toMillis() < 2 * Backoff.FIRST.toMillis());
  }
}
