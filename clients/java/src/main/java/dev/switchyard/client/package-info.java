// The package's overview, for javadoc.

/**
 * The Java client of the Switchyard message broker.
 *
 * <p>Start with {@link dev.switchyard.client.SwitchyardClient}: {@code publish}, {@code
 * publishBatch} and {@code publisher()} to publish; {@code subscribe} for publish/subscribe; {@code
 * consume} for work queues and exclusive consumers; {@code request} and {@code serve} for
 * request/reply; {@code admin()} for groups. Every failure is a {@link
 * dev.switchyard.client.SwitchyardException} of the broker's reason.
 */
package dev.switchyard.client;
