import type { DescMethod } from "@bufbuild/protobuf";
import type { Right } from "./access-rights.js";

/** One right a call needs, on an entity path as the request names it ("" = the namespace). */
export interface Need {
  right: Right;
  path: string;
}

/**
 * What a method requires of its caller:
 * - `public`: nothing (health checks and reflection, which show no entity);
 * - `call`: a token granting every need, read from the request before the handler runs;
 * - `frames`: a valid token to open the stream, and `right` on each frame's entity_path,
 *   checked per frame by the handler (a refused frame fails alone, as other frame errors do).
 */
export type MethodAccess =
  | { kind: "public" }
  | { kind: "call"; needs(request: never): Need[] }
  | { kind: "frames"; right: Right };

const on =
  (right: Right) =>
  (request: { entityPath: string }): Need[] => [{ right, path: request.entityPath }];
const manage = (path: (request: never) => string): MethodAccess => ({
  kind: "call",
  needs: (request: never) => [{ right: "Manage", path: path(request) }],
});
const manageNamespace = manage(() => "");
const manageNamed = manage((request: { name: string }) => request.name);
const manageEntityPath = manage((request: { entityPath: string }) => request.entityPath);
const manageSubscription = manage(
  (request: { topicName: string; name: string }) =>
    `${request.topicName}/subscriptions/${request.name}`,
);
const manageSubscriptionRules = manage(
  (request: { topicName: string; subscriptionName: string }) =>
    `${request.topicName}/subscriptions/${request.subscriptionName}`,
);
const send: MethodAccess = { kind: "call", needs: on("Send") };
const listen: MethodAccess = { kind: "call", needs: on("Listen") };
const PUBLIC: MethodAccess = { kind: "public" };

/** Every method the broker serves, by "<service type name>/<method name>". */
const ACCESS: Record<string, MethodAccess> = {
  "sessionbus.v1.AdminService/CreateQueue": manageNamed,
  "sessionbus.v1.AdminService/GetQueue": manageNamed,
  "sessionbus.v1.AdminService/ListQueues": manageNamespace,
  "sessionbus.v1.AdminService/UpdateQueue": manageNamed,
  "sessionbus.v1.AdminService/DeleteQueue": manageNamed,
  "sessionbus.v1.AdminService/CreateTopic": manageNamed,
  "sessionbus.v1.AdminService/GetTopic": manageNamed,
  "sessionbus.v1.AdminService/ListTopics": manageNamespace,
  "sessionbus.v1.AdminService/UpdateTopic": manageNamed,
  "sessionbus.v1.AdminService/DeleteTopic": manageNamed,
  "sessionbus.v1.AdminService/CreateSubscription": manageSubscription,
  "sessionbus.v1.AdminService/GetSubscription": manageSubscription,
  "sessionbus.v1.AdminService/ListSubscriptions": manage(
    (request: { topicName: string }) => request.topicName,
  ),
  "sessionbus.v1.AdminService/UpdateSubscription": manageSubscription,
  "sessionbus.v1.AdminService/DeleteSubscription": manageSubscription,
  "sessionbus.v1.AdminService/CreateRule": manageSubscriptionRules,
  "sessionbus.v1.AdminService/ListRules": manageSubscriptionRules,
  "sessionbus.v1.AdminService/DeleteRule": manageSubscriptionRules,
  "sessionbus.v1.AdminService/CreateAuthorizationRule": manageEntityPath,
  "sessionbus.v1.AdminService/GetAuthorizationRule": manageEntityPath,
  "sessionbus.v1.AdminService/ListAuthorizationRules": manageEntityPath,
  "sessionbus.v1.AdminService/UpdateAuthorizationRule": manageEntityPath,
  "sessionbus.v1.AdminService/RegenerateAuthorizationRuleKey": manageEntityPath,
  "sessionbus.v1.AdminService/DeleteAuthorizationRule": manageEntityPath,

  "sessionbus.v1.MessagingService/Send": send,
  "sessionbus.v1.MessagingService/SendStream": { kind: "frames", right: "Send" },
  "sessionbus.v1.MessagingService/ScheduleMessages": send,
  "sessionbus.v1.MessagingService/CancelScheduledMessages": send,
  "sessionbus.v1.MessagingService/Peek": listen,
  "sessionbus.v1.MessagingService/ReceiveStream": listen,
  "sessionbus.v1.MessagingService/Settle": listen,
  "sessionbus.v1.MessagingService/SettleStream": { kind: "frames", right: "Listen" },
  "sessionbus.v1.MessagingService/RenewMessageLock": listen,
  "sessionbus.v1.MessagingService/ReceiveDeferred": listen,
  "sessionbus.v1.MessagingService/AcceptSession": listen,
  "sessionbus.v1.MessagingService/RenewSessionLock": listen,
  "sessionbus.v1.MessagingService/CloseSession": listen,
  "sessionbus.v1.MessagingService/GetSessionState": listen,
  "sessionbus.v1.MessagingService/SetSessionState": listen,
  "sessionbus.v1.MessagingService/ListSessions": listen,
  "sessionbus.v1.MessagingService/PeekSessionState": listen,
  // Reads and deletes in the dead-letter queue, and stores in the entity.
  "sessionbus.v1.MessagingService/ResubmitDeadLetteredMessages": {
    kind: "call",
    needs: (request: { entityPath: string }) => [
      { right: "Listen", path: request.entityPath },
      { right: "Send", path: request.entityPath },
    ],
  },
  "sessionbus.v1.MessagingService/PurgeDeadLetteredMessages": listen,
  "sessionbus.v1.MessagingService/RequestReply": {
    kind: "call",
    // The request goes out on one entity and the reply is taken from another.
    needs: (request: { entityPath: string; replyTo: string }) => [
      { right: "Send", path: request.entityPath },
      { right: "Listen", path: request.replyTo },
    ],
  },

  "grpc.health.v1.Health/Check": PUBLIC,
  "grpc.health.v1.Health/Watch": PUBLIC,
  "grpc.reflection.v1.ServerReflection/ServerReflectionInfo": PUBLIC,
  "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": PUBLIC,
};

/**
 * The access rule of a method. Throws for a method without one, so a new RPC cannot be
 * served before someone decides who may call it.
 */
export function accessOf(method: DescMethod): MethodAccess {
  const access = ACCESS[`${method.parent.typeName}/${method.name}`];
  if (!access) {
    throw new Error(
      `${method.parent.typeName}/${method.name} has no access rule: add it to src/auth/method-access.ts`,
    );
  }
  return access;
}
