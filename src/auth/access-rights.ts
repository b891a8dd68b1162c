import { AccessRight } from "../../gen/ts/sessionbus/v1/authorization_pb.js";

/** The rights of Service Bus shared access policies; Manage implies the other two. */
export type Right = "Manage" | "Send" | "Listen";

export const ALL_RIGHTS: readonly Right[] = ["Manage", "Send", "Listen"];

/** Whether a rule with `rights` may do what needs `needed`. */
export function grants(rights: readonly Right[], needed: Right): boolean {
  return rights.includes(needed) || rights.includes("Manage");
}

export function rightFromProto(right: AccessRight): Right | undefined {
  switch (right) {
    case AccessRight.MANAGE:
      return "Manage";
    case AccessRight.SEND:
      return "Send";
    case AccessRight.LISTEN:
      return "Listen";
    default:
      return undefined;
  }
}

export function rightToProto(right: Right): AccessRight {
  return right === "Manage"
    ? AccessRight.MANAGE
    : right === "Send"
      ? AccessRight.SEND
      : AccessRight.LISTEN;
}
