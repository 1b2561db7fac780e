// A work queue: a pool of workers shares resize jobs; one stops midway and its jobs move on.

package dev.switchyard.examples;

import dev.switchyard.client.ConsumeOptions;
import dev.switchyard.client.Delivery;
import dev.switchyard.client.GroupConfig;
import dev.switchyard.client.GroupConsumer;
import dev.switchyard.client.OutgoingMessage;
import dev.switchyard.client.Publisher;
import dev.switchyard.client.SwitchyardClient;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Three workers join the group {@code resizers}, three jobs at a time each. An uploader queues 30
 * jobs through a {@link Publisher}. worker-2 stops after its fourth job with the next one in hand
 * and its prefetched jobs unacked: the broker hands them to the others, with the next attempt. At
 * the end every job was done exactly once.
 */
public final class ImageWorkers {
  private static final int JOBS = 30;

  private ImageWorkers() {}

  public static void main(String[] args) throws Exception {
    try (SwitchyardClient client = SwitchyardClient.connect(ExampleArgs.address(args))) {
      client.admin().declareGroup(GroupConfig.builder("images.resize", "resizers").build()).join();
      Map<String, String> doneBy = new ConcurrentHashMap<>();
      AtomicInteger doneTwice = new AtomicInteger();
      AtomicInteger redelivered = new AtomicInteger();
      List<Thread> workers = new ArrayList<>();
      for (int w = 1; w <= 3; w++) {
        String name = "worker-" + w;
        GroupConsumer jobs = client.consume("images.resize", "resizers", ConsumeOptions.builder().prefetch(3).build());
        System.out.println(name + ": joined the resizers, 3 jobs at a time");
        int stopAfter = w == 2 ? 4 : Integer.MAX_VALUE;
        Thread worker = new Thread(() -> {
          try (jobs) {
            int done = 0;
            while (doneBy.size() < JOBS) {
              Optional<Delivery> next = jobs.poll(Duration.ofMillis(200));
              if (next.isEmpty()) {
                continue;
              }
              Delivery job = next.get();
              String image = job.message().payloadUtf8();
              if (done == stopAfter) {
                System.out.println(name + ": stops with " + image + " in hand and its prefetched jobs, all unacked");
                return; // closing the consumer hands them back to the group
              }
              Thread.sleep(10); // resizing
              if (doneBy.putIfAbsent(image, name) != null) {
                doneTwice.incrementAndGet();
              }
              if (job.attempt() > 1) {
                redelivered.incrementAndGet();
              }
              System.out.println(name + ": resized " + image + (job.attempt() > 1 ? " (redelivered, attempt " + job.attempt() + ")" : ""));
              job.ack();
              done++;
            }
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
          }
        }, name);
        workers.add(worker);
        worker.start();
      }
      try (Publisher uploader = client.publisher()) {
        for (int i = 0; i < JOBS; i++) {
          uploader.publish(OutgoingMessage.of("images.resize", String.format("img-%03d.jpg", i)));
        }
        uploader.flush().join();
        System.out.println("uploader: queued " + JOBS + " resize jobs");
      }
      for (Thread worker : workers) {
        worker.join(Duration.ofSeconds(30).toMillis());
      }
      int lost = JOBS - doneBy.size();
      System.out.println("summary: jobs: " + doneBy.size() + " done, " + lost + " lost, " + doneTwice.get()
          + " done twice, " + redelivered.get() + " redelivered");
    }
  }
}
