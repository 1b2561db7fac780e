// The four example programs, one per pattern, each run against a broker of its own.

package dev.switchyard.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.switchyard.examples.AuctionBids;
import dev.switchyard.examples.ImageWorkers;
import dev.switchyard.examples.OrdersFanout;
import dev.switchyard.examples.VideoTranscode;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ExamplesTest {
  @RegisterExtension final Brokers brokers = new Brokers();

  private String run(ConsoleCapture.Program example) throws Exception {
    return ConsoleCapture.run(example, brokers.start().address());
  }

  private static String summary(String printed) {
    List<String> lines = printed.lines().filter(line -> line.startsWith("summary: ")).toList();
    assertEquals(1, lines.size(), "one summary line in:\n" + printed);
    return lines.get(0);
  }

  @Test
  void ordersFanOutByPattern() throws Exception {
    assertEquals("summary: 4 events; inventory 3, payment 3, email 3, analytics 4", summary(run(OrdersFanout::main)));
  }

  @Test
  void imageWorkersDoEveryJobOnce() throws Exception {
    String line = summary(run(ImageWorkers::main));
    assertTrue(line.matches("summary: jobs: 30 done, 0 lost, 0 done twice, \\d+ redelivered"), line);
  }

  @Test
  void auctionStandbyTakesOverInOrder() throws Exception {
    String printed = run(AuctionBids::main);
    assertTrue(printed.contains("auctioneer-b: dave bids 150 (redelivered, attempt 2): carol keeps the lead\n"), printed);
    assertEquals("summary: lot 7 goes to frank for 175 (7 bids: 3 judged by auctioneer-a, 4 by auctioneer-b after the takeover)",
        summary(printed));
  }

  @Test
  void videoTranscodeAnswersEachRequest() throws Exception {
    String printed = run(VideoTranscode::main);
    assertTrue(printed.contains("requester:  nobody makes thumbnails\n"), printed);
    assertEquals("summary: 2 videos transcoded: https://cdn.example.com/videos/cat-720p.mp4, "
        + "https://cdn.example.com/videos/dog-1080p.mp4", summary(printed));
  }
}
