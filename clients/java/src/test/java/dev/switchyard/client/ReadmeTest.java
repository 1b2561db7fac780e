// The README's quickstart: it is the example program, verbatim, and it prints what the README says.

package dev.switchyard.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.switchyard.examples.Quickstart;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ReadmeTest {
  private static final Path README = Path.of("README.md");
  private static final Path QUICKSTART = Path.of("src/main/java/dev/switchyard/examples/Quickstart.java");

  @RegisterExtension final Brokers brokers = new Brokers();

  /** The README shows the quickstart program as it is. */
  @Test
  void readmeShowsTheQuickstartFile() throws Exception {
    assertEquals(Files.readString(QUICKSTART), block("quickstart"),
        "README.md's quickstart block differs from " + QUICKSTART + ": copy the file into the README");
  }

  /** The quickstart prints, against a real broker, exactly what the README says it prints. */
  @Test
  void quickstartPrintsWhatTheReadmeSays() throws Exception {
    Broker broker = brokers.start();
    assertEquals(block("quickstart-output"), ConsoleCapture.run(Quickstart::main, broker.address()));
  }

  /** The fenced code block that follows the line {@code <!-- name -->} in the README. */
  private static String block(String name) throws Exception {
    String readme = Files.readString(README);
    String marker = "<!-- " + name + " -->\n";
    int at = readme.indexOf(marker);
    assertTrue(at >= 0, "README.md has no " + marker.trim() + " marker");
    String after = readme.substring(at + marker.length());
    assertTrue(after.startsWith("```"), "README.md: no code block after " + marker.trim());
    String body = after.substring(after.indexOf('\n') + 1);
    int end = body.indexOf("\n```\n");
    assertTrue(end >= 0, "README.md: the code block after " + marker.trim() + " is not closed");
    return body.substring(0, end + 1);
  }
}
