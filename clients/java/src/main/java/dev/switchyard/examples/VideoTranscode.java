// Request/reply: requesters ask a pool of transcoders and wait for the answer, with a timeout.

package dev.switchyard.examples;

import dev.switchyard.client.Message;
import dev.switchyard.client.NoRespondersException;
import dev.switchyard.client.Reply;
import dev.switchyard.client.Responder;
import dev.switchyard.client.ServeOptions;
import dev.switchyard.client.SwitchyardClient;
import dev.switchyard.client.TimedOutException;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;

/**
 * A transcoder serves {@code video.transcode} two requests at a time; each takes a while. The
 * requester asks for two videos at once, each with a deadline, and gets a URL back for each. A
 * request for a service nobody runs fails at once by its reason.
 */
public final class VideoTranscode {
  private VideoTranscode() {}

  public static void main(String[] args) {
    try (SwitchyardClient client = SwitchyardClient.connect(ExampleArgs.address(args))) {
      try (Responder transcoder = client.serve("video.transcode", "transcoders", request -> {
        String[] job = request.payloadUtf8().split(" ");
        System.out.println("transcoder: transcoding " + job[0] + " to " + job[1]);
        Thread.sleep(300); // the work
        String name = job[0].substring(job[0].lastIndexOf('/') + 1, job[0].lastIndexOf('.'));
        return Reply.of("https://cdn.example.com/videos/" + name + "-" + job[1] + ".mp4");
      }, ServeOptions.builder().concurrency(2).build())) {
        List<String> jobs = List.of("uploads/cat.mov 720p", "uploads/dog.mov 1080p");
        List<CompletableFuture<Message>> answers = jobs.stream().map(job -> {
          System.out.println("requester:  asks for " + job + " (waits up to 10s)");
          return client.request("video.transcode", job, Duration.ofSeconds(10));
        }).toList();
        List<String> urls = answers.stream().map(answer -> answer.join().payloadUtf8()).toList();
        urls.forEach(url -> System.out.println("requester:  got " + url));
        try {
          client.request("video.thumbnail", "uploads/cat.mov", Duration.ofSeconds(10)).join();
        } catch (CompletionException e) {
          if (e.getCause() instanceof NoRespondersException) {
            System.out.println("requester:  nobody makes thumbnails");
          } else if (e.getCause() instanceof TimedOutException) {
            System.out.println("requester:  no thumbnail in time");
          }
        }
        System.out.println("summary: " + urls.size() + " videos transcoded: " + String.join(", ", urls));
      }
    }
  }
}
