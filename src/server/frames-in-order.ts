import { create } from "@bufbuild/protobuf";
import { ErrorDetailSchema } from "../../gen/ts/sessionbus/v1/error_detail_pb.js";
import {
  type FrameError,
  FrameErrorSchema,
} from "../../gen/ts/sessionbus/v1/messaging_service_pb.js";
import { toConnectError } from "./error-mapping.js";

/** Frames of one stream worked on at once; the stream stops reading beyond that. */
export const MAX_FRAMES_IN_FLIGHT = 64;

/**
 * Answers the request frames of a bidirectional stream one to one, in the order they came,
 * while working on up to `MAX_FRAMES_IN_FLIGHT` of them at once (a client pipelines
 * frames; answering one at a time would cost it a round trip per frame). Frames that share
 * an ordering key (`keysOf`, e.g. entity and session id) are worked on one after the other,
 * so two frames to one session are stored in the order sent. `answer` must not throw: a
 * failed frame is answered with its error (see `frameError`).
 */
export async function* answerInOrder<Request, Response>(
  requests: AsyncIterable<Request>,
  keysOf: (request: Request) => Iterable<string>,
  answer: (request: Request) => Promise<Response>,
): AsyncGenerator<Response> {
  const pending: Promise<Response>[] = [];
  // The last frame started per key: a frame waits for those of its keys.
  const lastOfKey = new Map<string, Promise<unknown>>();
  const start = (request: Request): Promise<Response> => {
    const keys = [...new Set(keysOf(request))];
    const before = keys.flatMap((key) => lastOfKey.get(key) ?? []);
    const done =
      before.length === 0 ? answer(request) : Promise.all(before).then(() => answer(request));
    for (const key of keys) {
      lastOfKey.set(key, done);
      void done.then(() => {
        if (lastOfKey.get(key) === done) lastOfKey.delete(key);
      });
    }
    return done;
  };
  let reading = true;
  let readError: unknown;
  let wakeWriter: (() => void) | undefined;
  let wakeReader: (() => void) | undefined;
  const reader = (async () => {
    try {
      for await (const request of requests) {
        pending.push(start(request));
        wakeWriter?.();
        if (pending.length >= MAX_FRAMES_IN_FLIGHT) {
          await new Promise<void>((resolve) => {
            wakeReader = resolve;
          });
        }
      }
    } catch (error) {
      readError = error;
    } finally {
      reading = false;
      wakeWriter?.();
    }
  })();
  for (;;) {
    const next = pending[0];
    if (next === undefined) {
      if (!reading) break;
      await new Promise<void>((resolve) => {
        wakeWriter = resolve;
      });
      wakeWriter = undefined;
      continue;
    }
    const response = await next;
    pending.shift();
    wakeReader?.();
    wakeReader = undefined;
    yield response;
  }
  await reader;
  if (readError !== undefined) throw readError;
}

/** What a unary call would have failed with, as the error of one frame. */
export function frameError(error: unknown): FrameError {
  const mapped = toConnectError(error);
  return create(FrameErrorSchema, {
    code: mapped.code,
    message: mapped.rawMessage,
    detail: mapped.findDetails(ErrorDetailSchema)[0],
  });
}
