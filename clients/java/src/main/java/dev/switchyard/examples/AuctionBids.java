// An exclusive consumer: one auctioneer judges the bids of a lot in order; a standby takes over.

package dev.switchyard.examples;

import dev.switchyard.client.ConsumeMode;
import dev.switchyard.client.ConsumeOptions;
import dev.switchyard.client.Delivery;
import dev.switchyard.client.GroupConsumer;
import dev.switchyard.client.OutgoingMessage;
import dev.switchyard.client.SwitchyardClient;
import java.util.List;

/**
 * Bids must be judged one at a time, in the order they were made, so the auctioneers of lot 7 are
 * an exclusive group: auctioneer-a is active, auctioneer-b stands by. auctioneer-a stops with a
 * bid in hand, unacked; auctioneer-b takes over everything it had not acked, in order.
 */
public final class AuctionBids {
  private AuctionBids() {}

  /** The lead so far: the highest bid, the first bidder at that amount keeping it. */
  private static final class Lead {
    String bidder = "nobody";
    int amount;
  }

  public static void main(String[] args) {
    List<String> bids = List.of("alice 100", "bob 120", "carol 150", "dave 150", "erin 160", "frank 175", "grace 175");
    try (SwitchyardClient client = SwitchyardClient.connect(ExampleArgs.address(args))) {
      GroupConsumer a = client.consume("auction.lot7", "auctioneers",
          ConsumeOptions.builder().mode(ConsumeMode.EXCLUSIVE).build());
      System.out.println("auctioneer-a: active on lot 7");
      GroupConsumer b = client.consume("auction.lot7", "auctioneers",
          ConsumeOptions.builder().mode(ConsumeMode.EXCLUSIVE).standby(true).build());
      System.out.println("auctioneer-b: standing by");
      for (String bid : bids) {
        client.publish(OutgoingMessage.of("auction.lot7", bid)).join();
      }
      Lead lead = new Lead();
      for (int judged = 0; judged < 3; judged++) {
        judge("auctioneer-a", a.next(), lead);
      }
      Delivery inHand = a.next();
      System.out.println("auctioneer-a: stops with " + inHand.message().payloadUtf8() + " in hand, unacked");
      a.close();
      System.out.println("auctioneer-b: takes over");
      try (b) {
        for (int judged = 3; judged < bids.size(); judged++) {
          judge("auctioneer-b", b.next(), lead);
        }
      }
      System.out.println("summary: lot 7 goes to " + lead.bidder + " for " + lead.amount + " (" + bids.size()
          + " bids: 3 judged by auctioneer-a, " + (bids.size() - 3) + " by auctioneer-b after the takeover)");
    }
  }

  private static void judge(String auctioneer, Delivery bid, Lead lead) {
    String[] parts = bid.message().payloadUtf8().split(" ");
    int amount = Integer.parseInt(parts[1]);
    String again = bid.attempt() > 1 ? " (redelivered, attempt " + bid.attempt() + ")" : "";
    if (amount > lead.amount) {
      lead.bidder = parts[0];
      lead.amount = amount;
      System.out.println(auctioneer + ": " + parts[0] + " bids " + amount + again + ": takes the lead");
    } else {
      System.out.println(auctioneer + ": " + parts[0] + " bids " + amount + again + ": " + lead.bidder + " keeps the lead");
    }
    bid.ack().join(); // judged: the next bid may come
  }
}
