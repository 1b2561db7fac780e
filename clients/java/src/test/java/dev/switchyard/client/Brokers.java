// The JUnit extension that gives a test its brokers and clients and cleans them up after it.

package dev.switchyard.client;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Registered in a test class with {@code @RegisterExtension}: brokers and clients made through it
 * are closed after each test, clients first, and a failed test prints its brokers' logs. Files a
 * test needs (ready files, logs, certificates, token files) go under one directory, removed after it.
 */
final class Brokers implements AfterEachCallback {
  private final List<Broker> brokers = new ArrayList<>();
  private final List<AutoCloseable> closeables = new ArrayList<>();
  private Path files;

  /** A broker with extra flags. */
  Broker start(String... flags) throws Exception {
    return keep(Broker.start(List.of(flags), files()));
  }

  /** The test's directory, made at the first call and removed after the test. */
  Path files() throws IOException {
    if (files == null) {
      files = Files.createTempDirectory("switchyard-java-test");
    }
    return files;
  }

  /** broker restarted on its address, kept for the cleanup. */
  Broker restart(Broker broker) throws Exception {
    return keep(broker.restart());
  }

  /** A plaintext client of broker with a 10 s call timeout. */
  SwitchyardClient client(Broker broker) {
    return client(broker, b -> b);
  }

  /** A client of broker configured by options. */
  SwitchyardClient client(Broker broker, UnaryOperator<ClientBuilder> options) {
    return closeLater(options.apply(SwitchyardClient.builder(broker.address())).build());
  }

  /** Closes closeable after the test, before the brokers. */
  <T extends AutoCloseable> T closeLater(T closeable) {
    closeables.add(closeable);
    return closeable;
  }

  private Broker keep(Broker broker) {
    brokers.add(broker);
    return broker;
  }

  @Override
  public void afterEach(ExtensionContext context) throws Exception {
    for (int i = closeables.size() - 1; i >= 0; i--) {
      try {
        closeables.get(i).close();
      } catch (Exception e) {
        System.err.println("cleanup: " + e);
      }
    }
    closeables.clear();
    if (context.getExecutionException().isPresent()) {
      for (Broker b : brokers) {
        System.err.println("switchyard log of " + b.address() + ":\n" + b.log());
      }
    }
    for (Broker b : brokers) {
      b.close();
    }
    brokers.clear();
    if (files != null) {
      try (var paths = Files.walk(files)) {
        for (Path path : paths.sorted(Comparator.reverseOrder()).toList()) {
          Files.delete(path);
        }
      }
      files = null;
    }
  }
}
