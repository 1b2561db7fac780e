// Requests on the client's shared RequestStream: a broken stream fails what it carried and the
// next request opens another; a broker that stops answering cannot hold a request for good.

package dev.switchyard.client;

import static dev.switchyard.client.Streams.nextMessage;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

@Timeout(value = 60, unit = TimeUnit.SECONDS)
class RequestTest {
  @RegisterExtension final Brokers brokers = new Brokers();

  /**
   * A request in flight when the broker dies fails with DisconnectedException and is not sent again;
   * once a broker is back on the address, the next request opens a new stream and is answered.
   */
  @Test
  void aBrokenStreamFailsItsRequestsAndTheNextOpensAnother() throws Exception {
    Broker first = brokers.start();
    CallCounter calls = new CallCounter();
    SwitchyardClient client = brokers.client(first, b -> b.interceptor(calls));
    Subscription sub = brokers.closeLater(client.subscribe("rpc.restart"));
    CompletableFuture<Message> inFlight = client.request("rpc.restart", "?", Duration.ofSeconds(30));
    nextMessage(sub); // the request is at the broker
    first.kill();
    Await.failure(inFlight, DisconnectedException.class);

    brokers.restart(first);
    Await.until("a request is answered by the new broker", () -> {
      CompletableFuture<Message> attempt = client.request("rpc.none", "?", Duration.ofSeconds(1));
      try {
        attempt.get(Await.WAIT.toMillis(), TimeUnit.MILLISECONDS);
        return false;
      } catch (java.util.concurrent.ExecutionException e) {
        return e.getCause() instanceof NoRespondersException;
      } catch (Exception e) {
        return false;
      }
    });
    assertTrue(calls.count("RequestStream") >= 2, "a new stream after the break");
  }

  /** A broker that stops answering (SIGSTOP) cannot hold a request past its timeout and a grace. */
  @Test
  void aSilentBrokerTimesOutOnTheClient() throws Exception {
    Broker broker = brokers.start();
    SwitchyardClient client = brokers.client(broker);
    brokers.closeLater(client.serve("rpc.echo", "echo", request -> Reply.of(request.payload())));
    assertEquals("warm", Await.result(client.request("rpc.echo", "warm", Duration.ofSeconds(5))).payloadUtf8());
    broker.pause();
    try {
      TimedOutException e = Await.failure(client.request("rpc.echo", "x", Duration.ofMillis(500)), TimedOutException.class);
      assertTrue(e.reason().isEmpty(), "the client's own timeout has no broker reason");
    } finally {
      broker.resume();
    }
    // The stream was not broken by that: the next request goes on it and is answered.
    assertEquals("again", Await.result(client.request("rpc.echo", "again", Duration.ofSeconds(5))).payloadUtf8());
  }

  /** Closing the client fails the requests waiting on its stream, and later ones. */
  @Test
  void closingTheClientFailsWhatWaits() throws Exception {
    Broker broker = brokers.start();
    SwitchyardClient client = SwitchyardClient.connect(broker.address());
    Subscription sub = client.subscribe("rpc.silent");
    CompletableFuture<Message> waiting = client.request("rpc.silent", "?", Duration.ofSeconds(30));
    nextMessage(sub);
    client.close();
    Await.failure(waiting, ClosedException.class);
    Await.failure(client.request("rpc.silent", "?", Duration.ofSeconds(1)), ClosedException.class);
    org.junit.jupiter.api.Assertions.assertThrows(ClosedException.class, () -> sub.poll(Await.WAIT));
  }
}
