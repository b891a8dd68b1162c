import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  type AccessRight,
  type AuthorizationRule,
  AuthorizationRuleSchema,
  RuleKey,
} from "../../gen/ts/sessionbus/v1/authorization_pb.js";
import { type Right, rightFromProto, rightToProto } from "../auth/access-rights.js";
import type { KeyChoice } from "../auth/authorization-rule-admin.js";
import { InvalidArgumentError } from "../broker/errors.js";
import type { AuthorizationRuleRecord } from "../store/authorization-rule-store.js";

export function authorizationRuleToProto(rule: AuthorizationRuleRecord): AuthorizationRule {
  return create(AuthorizationRuleSchema, {
    name: rule.name,
    rights: rule.rights.map(rightToProto),
    primaryKey: rule.primaryKey,
    secondaryKey: rule.secondaryKey,
    createdTime: timestampFromMs(rule.createdMs),
    updatedTime: timestampFromMs(rule.updatedMs),
  });
}

export function rightsFromProto(rights: readonly AccessRight[]): Right[] {
  return rights.map((right, index) => {
    const known = rightFromProto(right);
    if (known === undefined) {
      throw new InvalidArgumentError(
        `rights[${index}]`,
        `rights[${index}] is ${right}, not a right: use ACCESS_RIGHT_MANAGE, ACCESS_RIGHT_SEND or ACCESS_RIGHT_LISTEN.`,
      );
    }
    return known;
  });
}

export function keyChoiceFromProto(key: RuleKey): KeyChoice {
  if (key === RuleKey.PRIMARY) return "primary";
  if (key === RuleKey.SECONDARY) return "secondary";
  throw new InvalidArgumentError("key", "key must be RULE_KEY_PRIMARY or RULE_KEY_SECONDARY.");
}
