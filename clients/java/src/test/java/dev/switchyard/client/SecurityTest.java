// TLS, mutual TLS and bearer tokens against brokers started with them: what works, and how each
// refusal reaches the caller.

package dev.switchyard.client;

import static dev.switchyard.client.Streams.nextMessage;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

@Timeout(value = 60, unit = TimeUnit.SECONDS)
class SecurityTest {
  @RegisterExtension final Brokers brokers = new Brokers();

  /** Subscribes, publishes and reads the message back: the token rides on the stream and the call. */
  private void roundtrip(SwitchyardClient client) {
    Subscription sub = brokers.closeLater(client.subscribe("secure.>"));
    Await.result(client.publish("secure.hello", "over tls"));
    assertEquals("over tls", nextMessage(sub).payloadUtf8());
  }

  /** A broker with --tls-client-ca serves a client with a certificate its CA signed, and refuses one without. */
  @Test
  void mutualTls() throws Exception {
    Pki pki = Pki.create(brokers.files());
    Broker broker = SecureBroker.start(brokers, pki, true);
    roundtrip(brokers.client(broker, b -> b.token(SecureBroker.ADMIN_TOKEN)
        .tls(TlsOptions.builder().caPem(pki.caPem).clientCertificate(pki.clientCertPem, pki.clientKeyPem).build())));
    SwitchyardClient without = brokers.client(broker, b -> b.token(SecureBroker.ADMIN_TOKEN).tls(SecureBroker.trusting(pki)));
    // Only the class is checked: in TLS 1.3 the client's side of the handshake is done before the
    // broker refuses it, so the failure may read as the broker's alert or as a closed socket.
    Await.failure(without.publish("secure.x", "x"), UnavailableException.class);
  }

  /** The server name is what the certificate is checked against: "localhost" is in it, another name is not. */
  @Test
  void serverNameOverride() throws Exception {
    Pki pki = Pki.create(brokers.files());
    Broker broker = SecureBroker.start(brokers, pki, false);
    SwitchyardClient named = brokers.client(broker, b -> b.token(SecureBroker.ADMIN_TOKEN)
        .tls(TlsOptions.builder().caPem(pki.caPem).serverName("localhost").build()));
    Await.result(named.publish("secure.named", "ok"));
    SwitchyardClient wrong = brokers.client(broker, b -> b.token(SecureBroker.ADMIN_TOKEN)
        .tls(TlsOptions.builder().caPem(pki.caPem).serverName("elsewhere.example").build()));
    Await.failure(wrong.publish("secure.named", "no"), UnavailableException.class);
  }

  /** Without the broker's CA the JVM's trust store is used, which does not trust a test CA. */
  @Test
  void systemRootsByDefault() throws Exception {
    Pki pki = Pki.create(brokers.files());
    Broker broker = SecureBroker.start(brokers, pki, false);
    SwitchyardClient client = brokers.client(broker, b -> b.token(SecureBroker.ADMIN_TOKEN).tls(TlsOptions.systemRoots()));
    Await.failure(client.publish("secure.x", "x"), UnavailableException.class);
    SwitchyardClient https = brokers.closeLater(
        SwitchyardClient.builder("https://" + broker.address()).token(SecureBroker.ADMIN_TOKEN).build());
    Await.failure(https.publish("secure.x", "x"), UnavailableException.class);
  }

  /** A token works over plaintext too (the broker allows it; on loopback it is the usual setup). */
  @Test
  void tokenOverPlaintext() throws Exception {
    Broker broker = brokers.start("--auth-token", "plain-secret");
    roundtrip(brokers.client(broker, b -> b.token("plain-secret")));
    SwitchyardClient http = brokers.closeLater(
        SwitchyardClient.builder("http://" + broker.address()).token("plain-secret").build());
    Await.result(http.publish("secure.x", "x"));
  }

  /** Options that cannot be used fail build() with an InvalidArgumentException naming the option. */
  @Test
  void badOptionsAreRefusedAtBuild() throws Exception {
    Pki pki = Pki.create(brokers.files());
    String target = "127.0.0.1:1";
    expectField("tls.ca", () -> SwitchyardClient.builder(target)
        .tls(TlsOptions.builder().caPem("not pem".getBytes(StandardCharsets.US_ASCII)).build()).build());
    expectField("tls.key", () -> SwitchyardClient.builder(target)
        .tls(TlsOptions.builder().clientCertificate(pki.clientCertPem, pki.caPem).build()).build());
    expectField("tls.cert", () -> SwitchyardClient.builder(target)
        .tls(TlsOptions.builder().clientCertificate("nothing".getBytes(StandardCharsets.US_ASCII), pki.clientKeyPem).build()).build());
    expectField("token", () -> SwitchyardClient.builder(target).token("two\nlines").build());
    expectField("token", () -> SwitchyardClient.builder(target).token("").build());
    expectField("target", () -> SwitchyardClient.builder("http://" + target).tls(TlsOptions.systemRoots()).build());
  }

  private static void expectField(String field, org.junit.jupiter.api.function.Executable build) {
    InvalidArgumentException e = assertThrows(InvalidArgumentException.class, build);
    assertEquals(field, e.field().orElseThrow(), e.getMessage());
  }
}
