import * as grpc from "@grpc/grpc-js";
import { startSessionbus } from "./src/app.ts";
import { AdminService } from "./gen/ts/sessionbus/v1/admin_service_pb.ts";
import { MessagingService } from "./gen/ts/sessionbus/v1/messaging_service_pb.ts";
import { createRandom, fuzzRequest } from "./test/support/fuzz-requests.ts";
const broker = await startSessionbus({ host: "127.0.0.1", port: 0, natsUrl: "nats://127.0.0.1:14222", dataDir: "x", natsServerBin: undefined });
const client = new grpc.Client(`127.0.0.1:${broker.port}`, grpc.credentials.createInsecure());
const id = (b: Buffer) => b;
const random = createRandom(Number(process.argv[2] ?? 21));
const methods = [MessagingService, AdminService].flatMap((s) => s.methods);
const targets = { entityPaths: ["q1"], sessionIds: ["a"] };
let i0 = 0; let stop = false; const inflight = new Map<number, string>();
const worker = async () => { while (!stop && i0 < 10000) { const i = i0++;
  const method = random.pick(methods);
  const path = `/${method.parent.typeName}/${method.name}`;
  const req = fuzzRequest(random, method.input, targets);
  inflight.set(i, `${method.name} req=${req.length} hex=${req.subarray(0, 40).toString("hex")}`);
  const st: grpc.StatusObject = await new Promise((resolve) => {
    if (method.methodKind === "unary") client.makeUnaryRequest(path, id, id, req, new grpc.Metadata(), { deadline: Date.now() + 3000 }, () => undefined).on("status", resolve);
    else if (method.methodKind === "server_streaming") { const c = client.makeServerStreamRequest(path, id, id, req, new grpc.Metadata(), { deadline: Date.now() + 3000 }); c.on("data", () => undefined); c.on("error", () => undefined); c.on("status", resolve); }
    else { const c = client.makeBidiStreamRequest(path, id, id, new grpc.Metadata(), { deadline: Date.now() + 3000 }); c.on("data", () => undefined); c.on("error", () => undefined); c.on("status", resolve); c.write(req); c.end(); }
  });
  if (st.code === 14 && !stop) { stop = true; console.log("first failure", i, st.details); console.log([...inflight.entries()].map(([k, v]) => `${k} ${v}`).join("\n")); }
  inflight.delete(i);
}};
await Promise.all(Array.from({ length: 32 }, worker));
client.close(); await broker.close(); process.exit(0);
