// Group administration: declare, list with counters, delete.

package dev.switchyard.client;

import static dev.switchyard.client.Streams.group;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

@Timeout(value = 60, unit = TimeUnit.SECONDS)
class AdminTest {
  @RegisterExtension final Brokers brokers = new Brokers();

  /** A declared group keeps what is published before anyone consumes, and lists it; delete drops it. */
  @Test
  void declareListDelete() throws Exception {
    SwitchyardClient client = brokers.client(brokers.start());
    Await.result(client.admin().declareGroup(GroupConfig.builder("orders.>", "audit")
        .mode(ConsumeMode.EXCLUSIVE).maxLength(100).ackDeadline(Duration.ofSeconds(5))
        .maxDeliveries(3).deadLetterTopic("audit.dead").build()));
    Published p = Await.result(client.publish("orders.created", "A1"));
    assertEquals(1, p.groups());
    GroupInfo g = group(client, "orders.>", "audit");
    assertEquals(ConsumeMode.EXCLUSIVE, g.mode());
    assertEquals(1, g.ready());
    assertEquals(0, g.consumers());
    assertTrue(g.bytes() > 0, "the message is charged: " + g);

    Await.result(client.admin().deleteGroup("orders.>", "audit"));
    assertTrue(Await.result(client.admin().listGroups()).isEmpty());
    assertEquals(0, Await.result(client.publish("orders.created", "A2")).groups());
  }
}
