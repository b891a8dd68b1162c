import type { ConnectRouter } from "@connectrpc/connect";
import { AdminService } from "../../gen/ts/sessionbus/v1/admin_service_pb.js";
import type { Broker } from "../broker/broker.js";
import { queueToProto, settingsFromProto } from "./queue-mapping.js";
import { withErrorMapping } from "./with-error-mapping.js";

export function registerAdminService(router: ConnectRouter, broker: Broker): void {
  const { queues } = broker;
  router.service(
    AdminService,
    withErrorMapping(AdminService, {
      async createQueue(req) {
        return {
          queue: queueToProto(await queues.create(req.name, settingsFromProto(req.properties))),
        };
      },
      async getQueue(req) {
        return { queue: queueToProto(await queues.get(req.name)) };
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
    }),
  );
}
