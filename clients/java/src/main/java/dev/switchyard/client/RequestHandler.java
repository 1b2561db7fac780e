// What a Responder runs for each request.

package dev.switchyard.client;

/**
 * Answers one request. Runs on one of the responder's worker threads, at most {@link
 * ServeOptions#concurrency()} at once.
 */
@FunctionalInterface
public interface RequestHandler {
  /**
   * The reply to request: published to its reply-to with its correlation id, after which the
   * request is acked. Null publishes nothing and still acks it.
   *
   * @throws Exception to reject the request (to the group's dead-letter topic, if it has one); no
   *     reply is sent, so the requester times out
   */
  Reply handle(Message request) throws Exception;
}
