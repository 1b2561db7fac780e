// What the broker did with one published message.

package dev.switchyard.client;

/**
 * The broker's answer for one published message.
 *
 * @param id the broker's UUID v7 for it
 * @param subscribers how many subscriptions (and waiting requests) it was offered to
 * @param groups how many queue groups stored a copy
 */
public record Published(String id, int subscribers, int groups) {}
