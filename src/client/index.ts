/** The sessionbus client SDK. */
export type { EntityRuntimeInfo } from "./admin-conversions.js";
export type { MessageReceiver, ReceiveModeName, ReceiveOptions } from "./base-receiver.js";
export {
  type ConnectionString,
  type FormatConnectionStringOptions,
  formatConnectionString,
  parseConnectionString,
} from "./connection-string.js";
export {
  EntityAlreadyExistsError,
  EntityNotFoundError,
  InvalidArgumentError,
  MessageAlreadySettledError,
  MessageLockedError,
  MessageLockLostError,
  MessageNotFoundError,
  MessageTooLargeError,
  NotSessionEntityError,
  PermissionDeniedError,
  QuotaExceededError,
  RequestTimeoutError,
  SessionBusError,
  type SessionBusErrorInit,
  SessionCannotBeLockedError,
  SessionIdRequiredError,
  SessionLockLostError,
  SessionRequiredError,
  SessionStateTooLargeError,
  StoreUnavailableError,
  UnauthenticatedError,
} from "./errors.js";
export type { FailoverEvent } from "./failover/failover-transport.js";
export {
  deadLetterQueuePath,
  type MessageStateName,
  type MessageToSend,
  type PropertyValue,
  type ReceivedMessage,
  type SendResult,
} from "./message.js";
export type { PeekOptions } from "./peek.js";
export type {
  ListQueuesOptions,
  QueueDescription,
  QueueOptions,
  QueueProperties,
  QueueRuntimeInfo,
} from "./queue-admin.js";
export type { Receiver, ReceiverOptions } from "./receiver.js";
export type { RequestReplyOptions } from "./request-reply.js";
export type { Responder, ResponderHandler, ResponderOptions } from "./responder.js";
export type { CallOptions } from "./rpc.js";
export type {
  CorrelationRuleFilter,
  RuleDescription,
  RuleFilter,
  RuleOptions,
  SqlRuleFilter,
} from "./rule-admin.js";
export {
  type SasCredentialOptions,
  type SharedAccessSignatureSource,
  sasInterceptor,
} from "./sas-authorization.js";
export {
  createSasToken,
  type SasTokenOptions,
  SasTokenProvider,
  type SasTokenProviderOptions,
  sasTokenExpiry,
} from "./sas-token.js";
export type { Sender } from "./sender.js";
export {
  createSessionBusClient,
  type SessionBusClient,
  type SessionBusClientOptions,
} from "./session-bus-client.js";
export type { ListSessionsOptions, SessionInfo } from "./session-listing.js";
export {
  createSessionProcessor,
  type ProcessErrorInfo,
  type ProcessErrorSource,
  type ProcessMessageContext,
  type ProcessorSession,
  type SessionProcessor,
  type SessionProcessorHandlers,
  type SessionProcessorOptions,
} from "./session-processor.js";
export type {
  AcceptNextSessionOptions,
  SessionReceiver,
  SessionReceiverOptions,
} from "./session-receiver.js";
export {
  type CreateSubscriptionOptions,
  type ListSubscriptionsOptions,
  type SubscriptionDescription,
  type SubscriptionOptions,
  type SubscriptionProperties,
  subscriptionPath,
} from "./subscription-admin.js";
export type {
  ListTopicsOptions,
  TopicDescription,
  TopicOptions,
  TopicProperties,
} from "./topic-admin.js";
export { DIAGNOSTIC_ID_PROPERTY } from "./tracing.js";
