// A broker with TLS (mutual TLS if asked) and a token file, for the security tests.

package dev.switchyard.client;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** The token file of the security tests: an admin, and a token that may subscribe but publish nothing. */
final class SecureBroker {
  static final String ADMIN_TOKEN = "ops-secret";
  static final String READER_TOKEN = "reader-secret";

  private static final String TOKENS =
      """
      {"tokens": [
        {"name": "ops", "token": "ops-secret", "admin": true},
        {"name": "reader", "token": "reader-secret", "publish": {"allow": []}}
      ]}
      """;

  private SecureBroker() {}

  /** Starts a broker serving TLS with pki's server certificate, the CA's clients only if clientCa. */
  static Broker start(Brokers brokers, Pki pki, boolean clientCa) throws Exception {
    Path tokens = Files.writeString(brokers.files().resolve("tokens.json"), TOKENS);
    List<String> flags = new ArrayList<>(pki.serverFlags(clientCa));
    flags.add("--auth-file");
    flags.add(tokens.toString());
    return brokers.start(flags.toArray(String[]::new));
  }

  /** TLS that trusts pki's CA. */
  static TlsOptions trusting(Pki pki) {
    return TlsOptions.builder().caPem(pki.caPem).build();
  }
}
