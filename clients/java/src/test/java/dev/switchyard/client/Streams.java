// Reading subscriptions, consumers and group counters in tests, each read bounded.

package dev.switchyard.client;

import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.List;

/** Helpers that fail the test, rather than block it, when what is expected does not come. */
final class Streams {
  private Streams() {}

  /** The next event of sub, which must be a message. */
  static Message nextMessage(Subscription sub) {
    SubscriptionEvent event = nextEvent(sub);
    return assertInstanceOf(SubscriptionEvent.Received.class, event, () -> "want a message, got " + event).message();
  }

  /** The next event of sub, whatever it is. */
  static SubscriptionEvent nextEvent(Subscription sub) {
    return sub.poll(Await.WAIT).orElseGet(() -> fail("no event within " + Await.WAIT));
  }

  /** The next delivery of consumer. */
  static Delivery nextDelivery(GroupConsumer consumer) {
    return consumer.poll(Await.WAIT).orElseGet(() -> fail("no delivery within " + Await.WAIT));
  }

  /** The counters of one group. */
  static GroupInfo group(SwitchyardClient client, String topic, String name) {
    List<GroupInfo> groups = Await.result(client.admin().listGroups());
    return groups.stream()
        .filter(g -> g.topic().equals(topic) && g.group().equals(name))
        .findFirst()
        .orElseGet(() -> fail("group " + topic + "/" + name + " not listed in " + groups));
  }
}
