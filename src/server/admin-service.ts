import { create } from "@bufbuild/protobuf";
import {
  AdminService,
  type GetQueueResponse,
  GetQueueResponseSchema,
} from "../../gen/ts/sessionbus/v1/admin_service_pb.js";
import type { Broker } from "../broker/broker.js";
import { ruleToProto } from "../rules/rule-record.js";
import {
  authorizationRuleToProto,
  keyChoiceFromProto,
  rightsFromProto,
} from "./authorization-rule-mapping.js";
import { queueToProto, settingsFromProto } from "./queue-mapping.js";
import { AnswersByRecord } from "./reused-answers.js";
import type { RouteRegistry } from "./route-table.js";
import {
  subscriptionSettingsFromProto,
  subscriptionToProto,
  topicSettingsFromProto,
  topicToProto,
} from "./topic-mapping.js";
import { withErrorMapping } from "./with-error-mapping.js";

export function registerAdminService(router: RouteRegistry, broker: Broker): void {
  const { queues, topics, subscriptions, rules, authorizationRules } = broker;
  const getQueueAnswers = new AnswersByRecord<GetQueueResponse>();
  router.service(
    AdminService,
    withErrorMapping(AdminService, {
      async createQueue(req) {
        return {
          queue: queueToProto(await queues.create(req.name, settingsFromProto(req.properties))),
        };
      },
      async getQueue(req) {
        const view = await queues.get(req.name);
        return getQueueAnswers.get(view, () =>
          create(GetQueueResponseSchema, { queue: queueToProto(view) }),
        );
      },
      async listQueues(req) {
        const page = await queues.list(req.pageSize, req.pageToken);
        return { queues: page.queues.map(queueToProto), nextPageToken: page.nextPageToken };
      },
      async updateQueue(req) {
        return {
          queue: queueToProto(await queues.update(req.name, settingsFromProto(req.properties))),
        };
      },
      async deleteQueue(req) {
        await queues.delete(req.name);
        return {};
      },

      async createTopic(req) {
        return {
          topic: topicToProto(
            await topics.create(req.name, topicSettingsFromProto(req.properties)),
          ),
        };
      },
      async getTopic(req) {
        return { topic: topicToProto(await topics.get(req.name)) };
      },
      async listTopics(req) {
        const page = await topics.list(req.pageSize, req.pageToken);
        return { topics: page.topics.map(topicToProto), nextPageToken: page.nextPageToken };
      },
      async updateTopic(req) {
        return {
          topic: topicToProto(
            await topics.update(req.name, topicSettingsFromProto(req.properties)),
          ),
        };
      },
      async deleteTopic(req) {
        await topics.delete(req.name);
        return {};
      },

      async createSubscription(req) {
        const view = await subscriptions.create(
          req.topicName,
          req.name,
          subscriptionSettingsFromProto(req.properties),
          req.rule,
        );
        return { subscription: subscriptionToProto(view) };
      },
      async getSubscription(req) {
        return {
          subscription: subscriptionToProto(await subscriptions.get(req.topicName, req.name)),
        };
      },
      async listSubscriptions(req) {
        const page = await subscriptions.list(req.topicName, req.pageSize, req.pageToken);
        return {
          subscriptions: page.subscriptions.map(subscriptionToProto),
          nextPageToken: page.nextPageToken,
        };
      },
      async updateSubscription(req) {
        const view = await subscriptions.update(
          req.topicName,
          req.name,
          subscriptionSettingsFromProto(req.properties),
        );
        return { subscription: subscriptionToProto(view) };
      },
      async deleteSubscription(req) {
        await subscriptions.delete(req.topicName, req.name);
        return {};
      },

      async createRule(req) {
        return {
          rule: ruleToProto(await rules.create(req.topicName, req.subscriptionName, req.rule)),
        };
      },
      async listRules(req) {
        const found = await rules.list(req.topicName, req.subscriptionName);
        return { rules: found.map(ruleToProto) };
      },
      async deleteRule(req) {
        await rules.delete(req.topicName, req.subscriptionName, req.ruleName);
        return {};
      },

      async createAuthorizationRule(req) {
        const rule = await authorizationRules.create(
          req.entityPath,
          req.name,
          rightsFromProto(req.rights),
          { primaryKey: req.primaryKey, secondaryKey: req.secondaryKey },
        );
        return { rule: authorizationRuleToProto(rule) };
      },
      async getAuthorizationRule(req) {
        return {
          rule: authorizationRuleToProto(await authorizationRules.get(req.entityPath, req.name)),
        };
      },
      async listAuthorizationRules(req) {
        const found = await authorizationRules.list(req.entityPath);
        return { rules: found.map(authorizationRuleToProto) };
      },
      async updateAuthorizationRule(req) {
        const rule = await authorizationRules.updateRights(
          req.entityPath,
          req.name,
          rightsFromProto(req.rights),
        );
        return { rule: authorizationRuleToProto(rule) };
      },
      async regenerateAuthorizationRuleKey(req) {
        const rule = await authorizationRules.regenerateKey(
          req.entityPath,
          req.name,
          keyChoiceFromProto(req.key),
          req.value,
        );
        return { rule: authorizationRuleToProto(rule) };
      },
      async deleteAuthorizationRule(req) {
        await authorizationRules.delete(req.entityPath, req.name);
        return {};
      },
    }),
  );
}
