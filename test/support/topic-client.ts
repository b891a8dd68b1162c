/** A grpc-js client for topics, subscriptions and rules, on top of the session client. */
import * as grpc from "@grpc/grpc-js";
import type {
  DurationInput,
  EntityRuntimeInfo,
  PropertyValue,
  ReceivedMessage,
  Timestamp,
} from "./grpc-client.js";
import { SessionClient } from "./session-client.js";

export interface TopicPropertiesInput {
  defaultMessageTtl?: DurationInput;
  maxMessageSizeBytes?: number;
  requiresDuplicateDetection?: boolean;
  duplicateDetectionWindow?: DurationInput;
  maxSizeBytes?: number;
}

export interface SubscriptionPropertiesInput {
  requiresSession?: boolean;
  lockDuration?: DurationInput;
  maxDeliveryCount?: number;
  defaultMessageTtl?: DurationInput;
  deadLetteringOnMessageExpiration?: boolean;
  maxSessionStateSizeBytes?: number;
}

export interface CorrelationFilterInput {
  correlationId?: string;
  messageId?: string;
  to?: string;
  replyTo?: string;
  subject?: string;
  sessionId?: string;
  replyToSessionId?: string;
  contentType?: string;
  applicationProperties?: Record<string, PropertyValue>;
}

export interface RuleInput {
  name: string;
  sqlFilter?: { expression: string };
  correlationFilter?: CorrelationFilterInput;
  trueFilter?: Record<string, never>;
  falseFilter?: Record<string, never>;
}

export interface Rule extends RuleInput {
  filter: "sqlFilter" | "correlationFilter" | "trueFilter" | "falseFilter";
  createdAt: Timestamp | null;
}

export interface Topic {
  name: string;
  properties: Record<string, unknown>;
  runtimeInfo: EntityRuntimeInfo;
  subscriptionCount: number;
}

export interface Subscription {
  topicName: string;
  name: string;
  properties: Record<string, unknown> & { requiresSession: boolean };
  runtimeInfo: EntityRuntimeInfo;
}

/** How long copies may take to reach a subscription's stream after the send returned. */
const COPY_BOUND_MS = 15_000;

export class TopicClient extends SessionClient {
  /** Topics this client created, deleted with the queues at the end. */
  readonly createdTopics = new Set<string>();

  async createTopic(name: string, properties?: TopicPropertiesInput): Promise<Topic> {
    const response = await this.unary<{ topic: Topic }>("AdminService", "CreateTopic", {
      name,
      properties,
    });
    this.createdTopics.add(name);
    return response.topic;
  }

  async getTopic(name: string): Promise<Topic> {
    return (await this.unary<{ topic: Topic }>("AdminService", "GetTopic", { name })).topic;
  }

  async listTopics(
    pageSize = 0,
    pageToken = "",
  ): Promise<{ topics: Topic[]; nextPageToken: string }> {
    return this.unary("AdminService", "ListTopics", { pageSize, pageToken });
  }

  async deleteTopic(name: string): Promise<void> {
    await this.unary("AdminService", "DeleteTopic", { name });
    this.createdTopics.delete(name);
  }

  async createSubscription(
    topicName: string,
    name: string,
    properties?: SubscriptionPropertiesInput,
    rule?: RuleInput,
  ): Promise<Subscription> {
    const response = await this.unary<{ subscription: Subscription }>(
      "AdminService",
      "CreateSubscription",
      { topicName, name, properties, rule },
    );
    return response.subscription;
  }

  async getSubscription(topicName: string, name: string): Promise<Subscription> {
    const response = await this.unary<{ subscription: Subscription }>(
      "AdminService",
      "GetSubscription",
      { topicName, name },
    );
    return response.subscription;
  }

  async listSubscriptions(
    topicName: string,
    pageSize = 0,
    pageToken = "",
  ): Promise<{ subscriptions: Subscription[]; nextPageToken: string }> {
    return this.unary("AdminService", "ListSubscriptions", { topicName, pageSize, pageToken });
  }

  async deleteSubscription(topicName: string, name: string): Promise<void> {
    await this.unary("AdminService", "DeleteSubscription", { topicName, name });
  }

  async createRule(topicName: string, subscriptionName: string, rule: RuleInput): Promise<Rule> {
    const response = await this.unary<{ rule: Rule }>("AdminService", "CreateRule", {
      topicName,
      subscriptionName,
      rule,
    });
    return response.rule;
  }

  async listRules(topicName: string, subscriptionName: string): Promise<Rule[]> {
    const response = await this.unary<{ rules: Rule[] }>("AdminService", "ListRules", {
      topicName,
      subscriptionName,
    });
    return response.rules;
  }

  async deleteRule(topicName: string, subscriptionName: string, ruleName: string): Promise<void> {
    await this.unary("AdminService", "DeleteRule", { topicName, subscriptionName, ruleName });
  }

  /**
   * Peeks the whole entity until it holds `count` messages (copies arrive asynchronously) or
   * COPY_BOUND_MS has passed; returns what it holds then.
   */
  async peekUntilHolding(path: string, count: number): Promise<ReceivedMessage[]> {
    const deadline = Date.now() + COPY_BOUND_MS;
    for (;;) {
      const found = await this.peekAll(path);
      if (found.length >= count || Date.now() > deadline) return found;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Deletes the topics this client created (with their subscriptions), then its queues. */
  override async deleteCreatedQueues(keep: string[] = []): Promise<void> {
    for (const name of [...this.createdTopics]) {
      if (keep.includes(name)) continue;
      try {
        await this.deleteTopic(name);
      } catch (error) {
        if ((error as Partial<grpc.ServiceError>).code !== grpc.status.NOT_FOUND) throw error;
      }
      this.createdTopics.delete(name);
    }
    await super.deleteCreatedQueues(keep);
  }
}
