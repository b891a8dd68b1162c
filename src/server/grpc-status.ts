import { create, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { AnySchema, anyPack } from "@bufbuild/protobuf/wkt";
import type { ConnectError } from "@connectrpc/connect";
import { Metadata, type status as Status, type StatusObject } from "@grpc/grpc-js";

/** The trailer that carries a `google.rpc.Status` with the error's details. */
export const STATUS_DETAILS_TRAILER = "grpc-status-details-bin";

/**
 * The grpc-js status of a ConnectError from the one error mapping (error-mapping.ts): the
 * same code and text, and the details (`ErrorDetail`) as `grpc-status-details-bin`, as
 * connect-node sends them on the HTTP port.
 */
export function grpcStatusOf(error: ConnectError): StatusObject {
  const metadata = new Metadata();
  if (error.details.length > 0) {
    metadata.set(STATUS_DETAILS_TRAILER, Buffer.from(encodeRpcStatus(error)));
  }
  // Connect's codes are gRPC's, number for number.
  return { code: error.code as number as Status, details: error.rawMessage, metadata };
}

/**
 * `google.rpc.Status` {code = 1, message = 2, repeated Any details = 3}, written field by
 * field: the three fields are all this needs, and no generated type for it is in gen/.
 */
function encodeRpcStatus(error: ConnectError): Uint8Array {
  const writer = new BinaryWriter();
  writer.tag(1, WireType.Varint).int32(error.code);
  writer.tag(2, WireType.LengthDelimited).string(error.rawMessage);
  for (const detail of error.details) {
    // Outgoing details are {desc, value}; incoming ones (never thrown here) are raw.
    if (!("desc" in detail)) continue;
    const any = anyPack(detail.desc, create(detail.desc, detail.value));
    writer.tag(3, WireType.LengthDelimited).bytes(toBinary(AnySchema, any));
  }
  return writer.finish();
}
