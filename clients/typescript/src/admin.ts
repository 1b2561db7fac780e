// Group administration: declare a queue group ahead of traffic, list groups, delete one.

import {
  type AdminClient,
  DeclareGroupRequest,
  DeleteGroupRequest,
  ListGroupsRequest,
} from "./gen/switchyard/v1/admin.js";
import { unary } from "./unary.js";
import {
  type ConsumeMode,
  type GroupInfo,
  fromPbGroupInfo,
  toPbMode,
  toUint32,
  toUint32Millis,
  toUint64,
} from "./wire.js";

/** A group to declare. Unset numbers mean the broker's defaults. */
export interface GroupSettings {
  /** The topic pattern the group collects. */
  topic: string;
  /** One token. */
  group: string;
  /** Default `"shared"`. Fixed at creation. */
  mode?: ConsumeMode;
  /** Messages the group holds (waiting, delayed and in flight) before a publish is refused. */
  maxLength?: number;
  /**
   * What the group's messages may take, counted as the broker's memory budget counts them (payload
   * plus a fixed overhead each), before a publish is refused. Unset or 0: no limit in bytes.
   */
  maxBytes?: number;
  /** Default ack deadline of its deliveries, in ms. */
  ackDeadlineMs?: number;
  /** Deliveries of one message before it is dead-lettered. Unset or 0: unlimited. */
  maxDeliveries?: number;
  /** Where rejected and exhausted messages go. Unset: they are discarded. */
  deadLetterTopic?: string;
}

/** The Admin service. Reach it as `client.admin`. */
export class Admin {
  /** @internal Made by `Client`. */
  constructor(
    private readonly service: AdminClient,
    private readonly callTimeoutMs: number,
  ) {}

  /**
   * Creates the group, or succeeds if an identical one exists. A group that exists with other
   * settings is `FAILED_PRECONDITION`, naming the setting. Declared groups stay until deleted.
   */
  async declareGroup(settings: GroupSettings): Promise<void> {
    const request = DeclareGroupRequest.fromPartial({
      topic: settings.topic,
      group: settings.group,
      mode: toPbMode(settings.mode),
      maxLength: toUint32(settings.maxLength ?? 0, "maxLength"),
      maxBytes: toUint64(settings.maxBytes ?? 0, "maxBytes"),
      ackDeadlineMs: toUint32Millis(settings.ackDeadlineMs ?? 0, "ackDeadlineMs"),
      maxDeliveries: toUint32(settings.maxDeliveries ?? 0, "maxDeliveries"),
      deadLetterTopic: settings.deadLetterTopic ?? "",
    });
    await unary(this.service.declareGroup.bind(this.service), request, this.callTimeoutMs);
  }

  /**
   * Deletes the group with its messages; its consumers' iterations throw `NOT_FOUND`. An unknown
   * group is `NOT_FOUND`.
   */
  async deleteGroup(topic: string, group: string): Promise<void> {
    const request = DeleteGroupRequest.fromPartial({ topic, group });
    await unary(this.service.deleteGroup.bind(this.service), request, this.callTimeoutMs);
  }

  /** Every group with its counters. */
  async listGroups(): Promise<GroupInfo[]> {
    const request = ListGroupsRequest.fromPartial({});
    const response = await unary(
      this.service.listGroups.bind(this.service),
      request,
      this.callTimeoutMs,
    );
    return response.groups.map(fromPbGroupInfo);
  }
}
