// One group's state and counters, as ListGroups reports them.

package dev.switchyard.client;

/**
 * A group as the broker lists it.
 *
 * @param topic the group's topic pattern
 * @param group the group's name
 * @param mode shared or exclusive
 * @param ready messages waiting, delayed redeliveries included
 * @param inFlight messages delivered and not yet settled
 * @param consumers attached consumers, standbys included
 * @param delivered deliveries made, redeliveries included
 * @param acked messages acked
 * @param redelivered redeliveries made
 * @param deadLettered messages dead-lettered (or dropped for want of a dead-letter topic)
 * @param bytes what the held messages are charged, as the memory budget counts them
 */
public record GroupInfo(
    String topic,
    String group,
    ConsumeMode mode,
    long ready,
    long inFlight,
    int consumers,
    long delivered,
    long acked,
    long redelivered,
    long deadLettered,
    long bytes) {}
