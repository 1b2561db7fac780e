// The broker's reasons, read from the details of real refusals: the class each one makes, and the
// metadata, field and retry delay that come with it.

package dev.switchyard.client;

import static dev.switchyard.client.Streams.nextMessage;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Status;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ReasonsTest {
  @RegisterExtension final Brokers brokers = new Brokers();

  /** A group at its max_length is GROUP_FULL with its limit, and waiting may help. */
  @Test
  void groupFullNamesTheGroupAndSaysWhenToRetry() throws Exception {
    SwitchyardClient client = brokers.client(brokers.start());
    Await.result(client.admin().declareGroup(GroupConfig.builder("jobs", "one").maxLength(1).build()));
    Await.result(client.publish("jobs", "fits"));
    GroupFullException e = Await.failure(client.publish("jobs", "does not"), GroupFullException.class);
    assertEquals("GROUP_FULL", e.reason().orElseThrow());
    assertEquals(Status.Code.RESOURCE_EXHAUSTED, e.code());
    assertEquals("one", e.metadata().get("group"));
    assertEquals("1", e.metadata().get("max_length"));
    assertTrue(e.retryAfter().orElseThrow().compareTo(Duration.ZERO) > 0, "RetryInfo: " + e.retryAfter());
    assertInstanceOf(ResourceExhaustedException.class, e);
  }

  /** The same refusal on a PublishStream frame carries its reason in StreamError, and the stream goes on. */
  @Test
  void aRefusedFrameCarriesTheReason() throws Exception {
    SwitchyardClient client = brokers.client(brokers.start());
    Await.result(client.admin().declareGroup(GroupConfig.builder("jobs", "one").maxLength(1).build()));
    Publisher publisher = brokers.closeLater(client.publisher());
    Await.result(publisher.publish(OutgoingMessage.of("jobs", "fits")));
    GroupFullException e = Await.failure(publisher.publish(OutgoingMessage.of("jobs", "does not")), GroupFullException.class);
    assertEquals("GROUP_FULL", e.reason().orElseThrow());
    Await.result(publisher.publish(OutgoingMessage.of("elsewhere", "still fine")));
  }

  /** Malformed input is INVALID_ARGUMENT with the path of the field, from the BadRequest. */
  @Test
  void invalidArgumentNamesTheField() throws Exception {
    SwitchyardClient client = brokers.client(brokers.start());
    InvalidArgumentException e = Await.failure(
        client.publishBatch(java.util.List.of(OutgoingMessage.of("ok", "x"), OutgoingMessage.of("bad..topic", "x"))),
        InvalidArgumentException.class);
    assertEquals("INVALID_ARGUMENT", e.reason().orElseThrow());
    assertEquals("messages[1].topic", e.field().orElseThrow());
    InvalidArgumentException pattern = assertThrows(InvalidArgumentException.class, () -> client.subscribe("a.>.b"));
    assertEquals("topic", pattern.field().orElseThrow());
  }

  /** Declaring a group again in the other mode is MODE_MISMATCH, with another setting GROUP_CONFLICT. */
  @Test
  void conflictsNameTheSetting() throws Exception {
    SwitchyardClient client = brokers.client(brokers.start());
    Await.result(client.admin().declareGroup(GroupConfig.builder("jobs", "workers").maxLength(10).build()));
    Await.result(client.admin().declareGroup(GroupConfig.builder("jobs", "workers").maxLength(10).build()));
    GroupConflictException mode = Await.failure(
        client.admin().declareGroup(GroupConfig.builder("jobs", "workers").mode(ConsumeMode.EXCLUSIVE).maxLength(10).build()),
        GroupConflictException.class);
    assertEquals("MODE_MISMATCH", mode.reason().orElseThrow());
    assertEquals("workers", mode.metadata().get("group"));
    GroupConflictException setting = Await.failure(
        client.admin().declareGroup(GroupConfig.builder("jobs", "workers").maxLength(11).build()),
        GroupConflictException.class);
    assertEquals("GROUP_CONFLICT", setting.reason().orElseThrow());
    assertEquals("10", setting.metadata().get("existing"));
    assertEquals("11", setting.metadata().get("requested"));
    assertInstanceOf(FailedPreconditionException.class, setting);
  }

  /** Deleting an unknown group is UNKNOWN_GROUP; deleting a consumer's group ends it with GROUP_DELETED. */
  @Test
  void unknownAndDeletedGroups() throws Exception {
    SwitchyardClient client = brokers.client(brokers.start());
    UnknownGroupException unknown =
        Await.failure(client.admin().deleteGroup("jobs", "nobody"), UnknownGroupException.class);
    assertEquals("nobody", unknown.metadata().get("group"));
    assertEquals(Status.Code.NOT_FOUND, unknown.code());

    GroupConsumer consumer = brokers.closeLater(client.consume("jobs", "workers"));
    Await.result(client.admin().deleteGroup("jobs", "workers"));
    GroupDeletedException deleted = assertThrows(GroupDeletedException.class, () -> consumer.poll(Await.WAIT));
    assertEquals("GROUP_DELETED", deleted.reason().orElseThrow());
    // Every later read ends the same way, the iterator included.
    assertThrows(GroupDeletedException.class, () -> consumer.poll(Duration.ZERO));
    assertThrows(GroupDeletedException.class, () -> consumer.iterator().hasNext());
  }

  /** A request a subscriber takes but never answers is REQUEST_TIMED_OUT when its timeout passes. */
  @Test
  void requestTimedOut() throws Exception {
    SwitchyardClient client = brokers.client(brokers.start());
    Subscription silent = brokers.closeLater(client.subscribe("svc.silent"));
    TimedOutException e =
        Await.failure(client.request("svc.silent", "hello?", Duration.ofMillis(300)), TimedOutException.class);
    assertEquals("REQUEST_TIMED_OUT", e.reason().orElseThrow());
    assertEquals(Status.Code.DEADLINE_EXCEEDED, e.code());
    Message asked = nextMessage(silent);
    assertTrue(!asked.replyTo().isEmpty() && !asked.correlationId().isEmpty(), "the request as delivered: " + asked);
  }

  /** A known token that may not publish is PERMISSION_DENIED naming the token and the topic; an admin call NOT_ADMIN. */
  @Test
  void permissionDeniedAndNotAdmin() throws Exception {
    Pki pki = Pki.create(brokers.files());
    Broker broker = SecureBroker.start(brokers, pki, false);
    SwitchyardClient reader = brokers.client(broker, b -> b.tls(SecureBroker.trusting(pki)).token(SecureBroker.READER_TOKEN));
    brokers.closeLater(reader.subscribe("secure.>"));
    PermissionDeniedException denied = Await.failure(reader.publish("secure.x", "x"), PermissionDeniedException.class);
    assertEquals("PERMISSION_DENIED", denied.reason().orElseThrow());
    assertEquals("reader", denied.metadata().get("token"));
    assertEquals("secure.x", denied.metadata().get("topic"));
    assertEquals("messages[0].topic", denied.field().orElseThrow());
    PermissionDeniedException notAdmin = Await.failure(reader.admin().listGroups(), PermissionDeniedException.class);
    assertEquals("NOT_ADMIN", notAdmin.reason().orElseThrow());
  }
}
