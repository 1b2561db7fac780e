// Group administration: declare groups ahead of traffic, delete them, list their state.

package dev.switchyard.client;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import switchyard.v1.AdminGrpc;
import switchyard.v1.AdminOuterClass.DeclareGroupRequest;
import switchyard.v1.AdminOuterClass.DeclareGroupResponse;
import switchyard.v1.AdminOuterClass.DeleteGroupRequest;
import switchyard.v1.AdminOuterClass.DeleteGroupResponse;
import switchyard.v1.AdminOuterClass.GroupInfo;
import switchyard.v1.AdminOuterClass.ListGroupsRequest;
import switchyard.v1.AdminOuterClass.ListGroupsResponse;

/**
 * The Admin service, from {@link SwitchyardClient#admin()}. With authentication on, its calls need
 * an admin token ({@link PermissionDeniedException} with reason {@code NOT_ADMIN} otherwise).
 */
public final class Admin {
  private final SwitchyardClient client;
  private final AdminGrpc.AdminStub stub;

  Admin(SwitchyardClient client) {
    this.client = client;
    this.stub = AdminGrpc.newStub(client.channel());
  }

  /**
   * Creates a group, or succeeds if an identical one exists; one with other settings fails with
   * {@link GroupConflictException} naming the setting. A declared group stays until deleted, and
   * keeps what is published to it whether or not consumers are attached.
   */
  public CompletableFuture<Void> declareGroup(GroupConfig config) {
    DeclareGroupRequest request =
        DeclareGroupRequest.newBuilder()
            .setTopic(config.topic())
            .setGroup(config.group())
            .setMode(config.mode().toPb())
            .setMaxLength(config.maxLength())
            .setMaxBytes(config.maxBytes())
            .setAckDeadlineMs(Wire.millis(config.ackDeadline()))
            .setMaxDeliveries(config.maxDeliveries())
            .setDeadLetterTopic(config.deadLetterTopic())
            .build();
    return Unary.<DeclareGroupResponse>call(observer -> timed().declareGroup(request, observer))
        .thenApply(response -> null);
  }

  /**
   * Deletes the group with its messages; its consumers end with {@link GroupDeletedException}. An
   * unknown group fails with {@link UnknownGroupException}.
   */
  public CompletableFuture<Void> deleteGroup(String topic, String group) {
    DeleteGroupRequest request = DeleteGroupRequest.newBuilder().setTopic(topic).setGroup(group).build();
    return Unary.<DeleteGroupResponse>call(observer -> timed().deleteGroup(request, observer))
        .thenApply(response -> null);
  }

  /** Every group with its counters. */
  public CompletableFuture<List<dev.switchyard.client.GroupInfo>> listGroups() {
    return Unary.<ListGroupsResponse>call(
            observer -> timed().listGroups(ListGroupsRequest.getDefaultInstance(), observer))
        .thenApply(response -> response.getGroupsList().stream().map(Admin::info).toList());
  }

  private static dev.switchyard.client.GroupInfo info(GroupInfo g) {
    return new dev.switchyard.client.GroupInfo(
        g.getTopic(),
        g.getGroup(),
        ConsumeMode.fromPb(g.getMode()),
        g.getReady(),
        g.getInFlight(),
        g.getConsumers(),
        g.getDelivered(),
        g.getAcked(),
        g.getRedelivered(),
        g.getDeadLettered(),
        g.getBytes());
  }

  private AdminGrpc.AdminStub timed() {
    return stub.withDeadlineAfter(client.callTimeout().toNanos(), java.util.concurrent.TimeUnit.NANOSECONDS);
  }
}
