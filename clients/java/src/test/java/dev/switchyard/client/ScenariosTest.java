// The scenarios every Switchyard client implements under the same names, against the real broker.

package dev.switchyard.client;

import static dev.switchyard.client.Streams.group;
import static dev.switchyard.client.Streams.nextDelivery;
import static dev.switchyard.client.Streams.nextEvent;
import static dev.switchyard.client.Streams.nextMessage;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Status;
import java.lang.ref.Reference;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * One test per scenario of the shared suite, named {@code scenario_<id>}: a later CI step checks
 * that each language has them all.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ScenariosTest {
  @RegisterExtension final Brokers brokers = new Brokers();

  /**
   * Every subscription whose pattern matches gets each message, in publish order ({@code *} one
   * token, {@code >} one or more); a subscriber that falls behind its {@code --subscriber-buffer}
   * gets a gap with the exact count of what it missed, then messages again.
   */
  @Test
  void scenario_fanout_wildcards_gap() throws Exception {
    SwitchyardClient client = brokers.client(brokers.start("--subscriber-buffer", "8"));
    Map<String, List<String>> want = new LinkedHashMap<>();
    want.put("orders.*", List.of("orders.created"));
    want.put("orders.>", List.of("orders.created", "orders.eu.created", "orders.eu.shipped"));
    want.put("*.created", List.of("orders.created", "payments.created"));
    want.put("orders.*.created", List.of("orders.eu.created"));
    want.put("orders.eu.created", List.of("orders.eu.created"));
    want.put(">", List.of("orders", "orders.created", "orders.eu.created", "payments.created", "orders.eu.shipped"));
    // Each subscriber's fence is the last message it matches: what came before is all it gets.
    Map<String, String> fences = Map.of(
        "orders.*", "orders.fence", "orders.>", "orders.fence", "*.created", "fence.created",
        "orders.*.created", "orders.fence.created", "orders.eu.created", "orders.eu.created", ">", "fence");
    Map<String, Subscription> subs = new LinkedHashMap<>();
    for (String pattern : want.keySet()) {
      subs.put(pattern, client.subscribe(pattern));
    }
    Subscription twin = client.subscribe("orders.eu.created");

    for (String topic : want.get(">")) {
      Published p = Await.result(client.publish(topic, "data"));
      long matching = want.values().stream().filter(topics -> topics.contains(topic)).count()
          + (topic.equals("orders.eu.created") ? 1 : 0);
      assertEquals(matching, p.subscribers(), "subscribers offered " + topic);
    }
    List<OutgoingMessage> fenceBatch = new ArrayList<>();
    for (String topic : List.of("orders.fence", "fence.created", "orders.fence.created", "orders.eu.created", "fence")) {
      fenceBatch.add(OutgoingMessage.of(topic, "fence"));
    }
    Await.result(client.publishBatch(fenceBatch));

    for (Map.Entry<String, List<String>> e : want.entrySet()) {
      assertEquals(e.getValue(), readUntilFence(subs.get(e.getKey()), fences.get(e.getKey())), "pattern " + e.getKey());
    }
    assertEquals(List.of("orders.eu.created"), readUntilFence(twin, "orders.eu.created"), "a second subscriber of one pattern");
    subs.values().forEach(Subscription::close);
    twin.close();

    // Far more than the broker's buffer of 8 and the transport's windows hold, while nobody reads.
    Subscription slow = client.subscribe("firehose");
    int total = 2000;
    String payload = "x".repeat(8 << 10);
    for (int i = 0; i < total; i += 100) {
      List<OutgoingMessage> batch = new ArrayList<>();
      for (int j = 0; j < 100; j++) {
        batch.add(OutgoingMessage.of("firehose", payload));
      }
      Await.result(client.publishBatch(batch));
    }
    long messages = 0;
    long missed = 0;
    int gaps = 0;
    while (messages + missed < total) {
      SubscriptionEvent event = nextEvent(slow);
      if (event instanceof SubscriptionEvent.Gap gap) {
        gaps++;
        missed += gap.missed();
      } else {
        assertInstanceOf(SubscriptionEvent.Received.class, event);
        messages++;
      }
    }
    assertTrue(gaps > 0, "a subscriber that fell behind got no gap");
    assertEquals(total, messages + missed, messages + " messages and " + missed + " missed");
    Await.result(client.publish("firehose", "after"));
    assertEquals("after", nextMessage(slow).payloadUtf8(), "caught up, it gets messages again");
  }

  private static List<String> readUntilFence(Subscription sub, String fence) {
    List<String> topics = new ArrayList<>();
    while (true) {
      Message m = nextMessage(sub);
      if (m.payloadUtf8().equals("fence")) {
        if (m.topic().equals(fence)) {
          return topics;
        }
        continue;
      }
      topics.add(m.topic());
    }
  }

  /** Consumers of one group get disjoint sets of the messages, which together are all of them. */
  @Test
  void scenario_competing_consumers_disjoint() throws Exception {
    SwitchyardClient client = brokers.client(brokers.start());
    int consumers = 3;
    int perConsumer = 10;
    List<GroupConsumer> group = new ArrayList<>();
    for (int i = 0; i < consumers; i++) {
      // Each holds at most perConsumer unacked and acks nothing until all are out: all must share.
      group.add(brokers.closeLater(client.consume("jobs", "workers", ConsumeOptions.builder().prefetch(perConsumer).build())));
    }
    List<OutgoingMessage> batch = new ArrayList<>();
    for (int i = 0; i < consumers * perConsumer; i++) {
      batch.add(OutgoingMessage.of("jobs", Integer.toString(i)));
    }
    List<Published> published = Await.result(client.publishBatch(batch));
    assertEquals(1, published.get(0).groups());

    Map<String, Integer> owner = new HashMap<>();
    List<Delivery> held = new ArrayList<>();
    for (int c = 0; c < consumers; c++) {
      for (int n = 0; n < perConsumer; n++) {
        Delivery d = nextDelivery(group.get(c));
        Integer before = owner.put(d.message().payloadUtf8(), c);
        assertEquals(null, before, "message " + d.message().payloadUtf8() + " went to two consumers");
        assertEquals(1, d.attempt());
        held.add(d);
      }
    }
    assertEquals(consumers * perConsumer, owner.size(), "every message was delivered");
    for (Delivery d : held) {
      Await.result(d.ack());
    }
    GroupInfo g = group(client, "jobs", "workers");
    assertEquals(consumers * perConsumer, g.acked());
    assertEquals(0, g.ready());
    assertEquals(0, g.inFlight());
    assertEquals(0, g.redelivered());
    Await.failure(held.get(0).ack(), UnknownDeliveryException.class);
  }

  /** A delivery not settled within its ack deadline comes back with the next attempt and a new id. */
  @Test
  void scenario_redelivery_after_deadline() throws Exception {
    SwitchyardClient client = brokers.client(brokers.start());
    GroupConsumer consumer = brokers.closeLater(client.consume("jobs", "workers",
        ConsumeOptions.builder().ackDeadline(Duration.ofMillis(300)).build()));
    Published p = Await.result(client.publish("jobs", "late"));
    Delivery first = nextDelivery(consumer);
    Delivery again = nextDelivery(consumer); // the deadline passes unsettled
    assertEquals(p.id(), again.message().id());
    assertEquals("late", again.message().payloadUtf8());
    assertEquals(1, first.attempt());
    assertEquals(2, again.attempt());
    assertNotEquals(first.id(), again.id());
    Await.failure(first.ack(), UnknownDeliveryException.class);
    Await.result(again.ack());
    GroupInfo g = group(client, "jobs", "workers");
    assertEquals(1, g.redelivered());
    assertEquals(1, g.acked());
  }

  /** A nacked message comes back after its delay, not before, without holding back the next. */
  @Test
  void scenario_nack_with_delay() throws Exception {
    SwitchyardClient client = brokers.client(brokers.start());
    GroupConsumer consumer = brokers.closeLater(client.consume("jobs", "workers"));
    Await.result(client.publish("jobs", "a"));
    Delivery a = nextDelivery(consumer);
    // Long enough that "b" comes well within it on a loaded machine: the test checks the order of
    // events around the delay, not how fast the broker is.
    Duration delay = Duration.ofSeconds(2);
    long nacked = System.nanoTime();
    Await.result(a.nack(delay));
    Await.result(client.publish("jobs", "b"));
    Delivery b = nextDelivery(consumer);
    assertEquals("b", b.message().payloadUtf8(), "b is delivered while a waits out its delay");
    Delivery again = nextDelivery(consumer);
    Duration waited = Duration.ofNanos(System.nanoTime() - nacked);
    assertEquals("a", again.message().payloadUtf8());
    assertEquals(2, again.attempt());
    // The broker starts the delay when it gets the nack, after nacked.
    assertTrue(waited.compareTo(delay) >= 0, "redelivered after " + waited + ", before the " + delay + " delay");
    Await.result(b.ack());
    Await.result(again.ack());
  }

  /**
   * After max_deliveries a failing message goes to the dead-letter topic with its id and the
   * x-dead-letter headers; a rejected one goes there at once.
   */
  @Test
  void scenario_dead_letter() throws Exception {
    SwitchyardClient client = brokers.client(brokers.start());
    Await.result(client.admin().declareGroup(GroupConfig.builder("images.resize", "workers")
        .maxDeliveries(2).deadLetterTopic("images.dead").build()));
    Subscription dead = brokers.closeLater(client.subscribe("images.dead"));
    GroupConsumer consumer = brokers.closeLater(client.consume("images.resize", "workers"));
    Published poison = Await.result(client.publish("images.resize", "poison"));
    for (int attempt = 1; attempt <= 2; attempt++) {
      Delivery d = nextDelivery(consumer);
      assertEquals(attempt, d.attempt());
      assertEquals(poison.id(), d.message().id());
      Await.result(d.nack());
    }
    Message letter = nextMessage(dead);
    assertEquals(poison.id(), letter.id());
    assertEquals("poison", letter.payloadUtf8());
    assertEquals("images.dead", letter.topic());
    assertEquals("max-deliveries", letter.headers().get("x-dead-letter-reason"));
    assertEquals("images.resize", letter.headers().get("x-original-topic"));
    assertEquals("workers", letter.headers().get("x-dead-letter-group"));
    assertEquals("2", letter.headers().get("x-delivery-attempts"));

    Published bad = Await.result(client.publish("images.resize", "bad"));
    Await.result(nextDelivery(consumer).reject());
    letter = nextMessage(dead);
    assertEquals(bad.id(), letter.id());
    assertEquals("rejected", letter.headers().get("x-dead-letter-reason"));
    GroupInfo g = group(client, "images.resize", "workers");
    assertEquals(2, g.deadLettered());
    assertEquals(0, g.ready());
    assertEquals(0, g.inFlight());
  }

  /** A second consumer of an exclusive group is refused by reason, until the active one leaves. */
  @Test
  void scenario_exclusive_rejected() throws Exception {
    SwitchyardClient client = brokers.client(brokers.start());
    ConsumeOptions exclusive = ConsumeOptions.builder().mode(ConsumeMode.EXCLUSIVE).build();
    GroupConsumer active = client.consume("bids", "auction", exclusive);
    GroupExclusiveTakenException taken =
        assertThrows(GroupExclusiveTakenException.class, () -> client.consume("bids", "auction", exclusive));
    assertEquals("GROUP_EXCLUSIVE_TAKEN", taken.reason().orElseThrow());
    assertEquals(Status.Code.FAILED_PRECONDITION, taken.code());
    assertEquals("auction", taken.metadata().get("group"));
    assertInstanceOf(FailedPreconditionException.class, taken);
    GroupConflictException otherMode =
        assertThrows(GroupConflictException.class, () -> client.consume("bids", "auction"));
    assertEquals("MODE_MISMATCH", otherMode.reason().orElseThrow());

    active.close();
    // The broker sees the active consumer leave a moment after the client closes it.
    AtomicReference<GroupConsumer> next = new AtomicReference<>();
    Await.until("a new exclusive consumer is accepted", () -> {
      try {
        next.set(client.consume("bids", "auction", exclusive));
        return true;
      } catch (GroupExclusiveTakenException stillTaken) {
        return false;
      }
    });
    next.get().close();
  }

  /** A standby waits, then takes over what the active consumer had not acked, in publish order. */
  @Test
  void scenario_exclusive_standby_takeover() throws Exception {
    SwitchyardClient client = brokers.client(brokers.start());
    GroupConsumer active = client.consume("bids", "auction", ConsumeOptions.builder().mode(ConsumeMode.EXCLUSIVE).build());
    GroupConsumer standby = brokers.closeLater(client.consume("bids", "auction",
        ConsumeOptions.builder().mode(ConsumeMode.EXCLUSIVE).standby(true).build()));
    GroupInfo g = group(client, "bids", "auction");
    assertEquals(2, g.consumers());
    assertEquals(ConsumeMode.EXCLUSIVE, g.mode());

    List<String> want = new ArrayList<>();
    for (int i = 0; i < 6; i++) {
      want.add(Integer.toString(i));
      Await.result(client.publish("bids", Integer.toString(i)));
    }
    List<String> got = new ArrayList<>();
    // Held until the active consumer closes: one collected unsettled before that would be nacked,
    // and come back to the active consumer first, an attempt further on.
    List<Delivery> unacked = new ArrayList<>();
    for (int i = 0; i < 6; i++) {
      Delivery d = nextDelivery(active);
      got.add(d.message().payloadUtf8());
      if (i < 2) {
        Await.result(d.ack());
      } else {
        unacked.add(d);
      }
    }
    assertEquals(want, got, "the active consumer gets them in publish order");

    active.close();
    Reference.reachabilityFence(unacked);
    got.clear();
    for (int i = 0; i < 4; i++) {
      Delivery d = nextDelivery(standby);
      got.add(d.message().payloadUtf8());
      assertEquals(2, d.attempt(), "taken over " + d.message().payloadUtf8());
      Await.result(d.ack());
    }
    assertEquals(want.subList(2, 6), got, "the standby takes over what was not acked, in order");
    Await.result(client.publish("bids", "6"));
    Delivery after = nextDelivery(standby);
    assertEquals("6", after.message().payloadUtf8());
    assertEquals(1, after.attempt());
  }

  /** A responder answers each request with its correlation id; concurrent requests get their own. */
  @Test
  void scenario_request_reply() throws Exception {
    SwitchyardClient client = brokers.client(brokers.start());
    brokers.closeLater(client.serve("svc.upper", "upper",
        request -> Reply.of(request.payloadUtf8().toUpperCase()).withHeader("by", "upper"),
        ServeOptions.builder().concurrency(4).build()));
    Message reply = Await.result(client.request("svc.upper", "ping", Duration.ofSeconds(5)));
    assertEquals("PING", reply.payloadUtf8());
    assertEquals("upper", reply.headers().get("by"));
    assertFalse(reply.correlationId().isEmpty());

    List<CompletableFuture<Message>> replies = new ArrayList<>();
    for (int i = 0; i < 10; i++) {
      replies.add(client.request(
          OutgoingMessage.builder("svc.upper").payload("corr-" + i).correlationId("corr-" + i).build(),
          Duration.ofSeconds(5)));
    }
    for (int i = 0; i < 10; i++) {
      Message r = Await.result(replies.get(i));
      assertEquals("corr-" + i, r.correlationId());
      assertEquals("CORR-" + i, r.payloadUtf8());
    }
  }

  /**
   * A request nobody can answer fails at once, matched by its reason, not by waiting it out. (It
   * comes on the RequestStream, whose StreamError carries the reason and its metadata.)
   */
  @Test
  void scenario_no_responders_by_reason() throws Exception {
    SwitchyardClient client = brokers.client(brokers.start());
    // Far longer than the test's wait: only a refusal at once ends it in time.
    NoRespondersException e =
        Await.failure(client.request("svc.nobody", "?", Duration.ofSeconds(60)), NoRespondersException.class);
    assertEquals("NO_RESPONDERS", e.reason().orElseThrow());
    assertEquals("svc.nobody", e.metadata().get("topic"));
    assertEquals(Status.Code.UNAVAILABLE, e.code());
    assertInstanceOf(UnavailableException.class, e);
  }

  /** Over TLS with the broker's CA and a known token, streams, unary and admin calls work. */
  @Test
  void scenario_tls_and_token() throws Exception {
    Pki pki = Pki.create(brokers.files());
    Broker broker = SecureBroker.start(brokers, pki, false);
    SwitchyardClient client = brokers.client(broker,
        b -> b.tls(SecureBroker.trusting(pki)).token(SecureBroker.ADMIN_TOKEN));
    Subscription sub = brokers.closeLater(client.subscribe("secure.>"));
    Await.result(client.publish("secure.hello", "over tls"));
    assertEquals("over tls", nextMessage(sub).payloadUtf8());
    Await.result(client.admin().listGroups());
  }

  /** No token, or one the broker does not know, is UNAUTHENTICATED on unary calls and streams. */
  @Test
  void scenario_wrong_token() throws Exception {
    Broker broker = brokers.start("--auth-token", "right-token");
    for (SwitchyardClient client : List.of(
        brokers.client(broker, b -> b.token("wrong-token")), brokers.client(broker))) {
      UnauthenticatedException e =
          Await.failure(client.publish("secure.x", "x"), UnauthenticatedException.class);
      assertEquals("UNAUTHENTICATED", e.reason().orElseThrow());
      assertEquals(Status.Code.UNAUTHENTICATED, e.code());
      assertThrows(UnauthenticatedException.class, () -> client.subscribe("secure.>"));
      assertThrows(UnauthenticatedException.class, () -> client.consume("secure.x", "workers"));
    }
    SwitchyardClient right = brokers.client(broker, b -> b.token("right-token"));
    Await.result(right.publish("secure.x", "x"));
  }

  /**
   * A subscription and a consumer whose broker is killed and restarted on the same address do not
   * end: the subscription yields one Disconnected event, the consumer tells onDisconnect, and both
   * carry on with what is published once the broker is back.
   */
  @Test
  void scenario_reconnect_after_restart() throws Exception {
    Broker first = brokers.start();
    SwitchyardClient client = brokers.client(first);
    LinkedBlockingQueue<DisconnectedException> drops = new LinkedBlockingQueue<>();
    Subscription sub = brokers.closeLater(client.subscribe("news.>"));
    GroupConsumer consumer = brokers.closeLater(client.consume("jobs.restart", "workers",
        ConsumeOptions.builder().onDisconnect(drops::add).build()));
    Await.result(client.publish("news.a", "before"));
    Await.result(client.publish("jobs.restart", "before"));
    assertEquals("before", nextMessage(sub).payloadUtf8());
    Delivery held = nextDelivery(consumer);
    assertEquals("before", held.message().payloadUtf8());

    first.kill();
    SubscriptionEvent.Disconnected gap = assertInstanceOf(SubscriptionEvent.Disconnected.class, nextEvent(sub));
    assertInstanceOf(UnavailableException.class, gap.cause());
    DisconnectedException drop = drops.poll(Await.WAIT.toMillis(), TimeUnit.MILLISECONDS);
    assertInstanceOf(DisconnectedException.class, drop, "onDisconnect was told");

    brokers.restart(first);
    // The restarted broker is empty: declare the group so that it keeps what is published before
    // the consumer has joined again. The client's connection comes back by itself meanwhile.
    Await.until("the group is declared on the new broker", () -> {
      try {
        Await.result(client.admin().declareGroup(GroupConfig.builder("jobs.restart", "workers").build()));
        return true;
      } catch (AssertionError notYet) {
        return false;
      }
    });
    Await.failure(held.ack(), UnknownDeliveryException.class);

    // Publish until one arrives: the subscription is back at some point of the sequence, and from
    // there on it gets every message in order.
    int sent = 0;
    Message firstBack = null;
    while (firstBack == null) {
      Await.result(client.publish("news.a", "after-" + sent++));
      firstBack = sub.poll(Duration.ofMillis(50)).map(e -> assertInstanceOf(SubscriptionEvent.Received.class, e).message()).orElse(null);
      assertTrue(sent < 200, "nothing arrived after the restart");
    }
    int from = Integer.parseInt(firstBack.payloadUtf8().substring("after-".length()));
    Await.result(client.publish("news.a", "last"));
    for (int n = from + 1; n < sent; n++) {
      assertEquals("after-" + n, nextMessage(sub).payloadUtf8());
    }
    assertEquals("last", nextMessage(sub).payloadUtf8());

    Await.result(client.publish("jobs.restart", "after"));
    Delivery after = nextDelivery(consumer);
    assertEquals("after", after.message().payloadUtf8());
    assertEquals(1, after.attempt());
    Await.result(after.ack());
    assertTrue(drops.isEmpty(), "onDisconnect was told once: " + drops);
  }

  /** A burst of concurrent requests, all on the client's one RequestStream, each gets its own reply. */
  @Test
  void scenario_pipelined_request_burst() throws Exception {
    Broker broker = brokers.start();
    CallCounter calls = new CallCounter();
    SwitchyardClient client = brokers.client(broker, b -> b.interceptor(calls));
    brokers.closeLater(client.serve("rpc.burst", "echo", request -> Reply.of(request.payload()),
        ServeOptions.builder().concurrency(32).build()));
    int total = 200;
    List<CompletableFuture<Message>> replies = new ArrayList<>();
    for (int i = 0; i < total; i++) {
      replies.add(client.request("rpc.burst", "request " + i, Duration.ofSeconds(10)));
    }
    Set<String> answered = new HashSet<>();
    for (int i = 0; i < total; i++) {
      Message reply = Await.result(replies.get(i));
      assertEquals("request " + i, reply.payloadUtf8());
      answered.add(reply.correlationId());
    }
    assertEquals(total, answered.size(), "each reply answers its own request");
    assertEquals(1, calls.count("RequestStream"), "all the requests went on one stream");
  }

  /**
   * A Publisher with a small queue, publishing into a group that is full (the broker holds its
   * frames until there is room), makes the caller wait rather than lose or refuse anything; once a
   * consumer drains the group, every message goes through, once, in order.
   */
  @Test
  void scenario_publish_backpressure() throws Exception {
    SwitchyardClient client = brokers.client(brokers.start("--max-publish-wait", "30s"));
    Await.result(client.admin().declareGroup(GroupConfig.builder("pub.room", "capped").maxLength(5).build()));
    Publisher publisher = brokers.closeLater(client.publisher(PublisherOptions.builder()
        .maxBatch(1).maxInFlight(2).queueSize(4).brokerWaitsForRoom(true).build()));
    int total = 60;
    AtomicInteger returned = new AtomicInteger();
    List<CompletableFuture<Published>> outcomes = new ArrayList<>();
    Thread producer = new Thread(() -> {
      for (int i = 0; i < total; i++) {
        CompletableFuture<Published> outcome = publisher.publish(OutgoingMessage.of("pub.room", Integer.toString(i)));
        synchronized (outcomes) {
          outcomes.add(outcome);
        }
        returned.incrementAndGet();
      }
    }, "producer");
    producer.setDaemon(true);
    producer.start();

    // 5 routed (the group's room), 2 frames held by the broker, 4 queued: the 12th call waits.
    int taken = 5 + 2 + 4;
    Await.until("the producer waits for room", () -> returned.get() == taken && producer.getState() == Thread.State.WAITING);
    assertFalse(publisher.waitForRoom(Duration.ofMillis(300)), "the queue has no room");
    assertEquals(taken, returned.get(), "the producer is still held");
    assertEquals(Thread.State.WAITING, producer.getState());

    GroupConsumer consumer = brokers.closeLater(client.consume("pub.room", "capped"));
    List<String> got = new ArrayList<>();
    while (got.size() < total) {
      Delivery d = nextDelivery(consumer);
      got.add(d.message().payloadUtf8());
      Await.result(d.ack());
    }
    producer.join(Await.WAIT.toMillis());
    assertFalse(producer.isAlive());
    Await.result(publisher.flush());
    Set<String> ids = new HashSet<>();
    for (CompletableFuture<Published> outcome : outcomes) {
      ids.add(Await.result(outcome).id());
    }
    assertEquals(total, ids.size(), "every message was published, once");
    List<String> want = new ArrayList<>();
    for (int i = 0; i < total; i++) {
      want.add(Integer.toString(i));
    }
    assertEquals(want, got, "nothing lost, nothing twice, in order");
    assertTrue(consumer.poll(Duration.ofMillis(200)).isEmpty(), "nothing more");
  }
}
