import type { DescMethod, DescService } from "@bufbuild/protobuf";
import {
  createMethodImplSpec,
  createServiceImplSpec,
  type MethodImpl,
  type MethodImplSpec,
  type ServiceImpl,
} from "@connectrpc/connect";

/**
 * The one list of methods the broker serves, with their implementations. The gRPC server
 * (grpc-js) and the Connect / gRPC-Web server (connect-node) are both built from it, so a
 * method cannot exist on one port and not on the other.
 */
export interface RouteTable extends RouteRegistry {
  /** Every method registered so far, in registration order. */
  readonly methods: readonly MethodImplSpec[];
}

/** Where a service registers its methods (a RouteTable, or a ConnectRouter in tests). */
export interface RouteRegistry {
  /** Registers every method of `service`. */
  service<S extends DescService>(service: S, impl: ServiceImpl<S>): void;
  /** Registers one method (e.g. a method of an older version of a service). */
  rpc<M extends DescMethod>(method: M, impl: MethodImpl<M>): void;
}

export function createRouteTable(): RouteTable {
  const methods: MethodImplSpec[] = [];
  const add = (spec: MethodImplSpec) => {
    if (
      methods.some(
        (each) =>
          each.method.parent.typeName === spec.method.parent.typeName &&
          each.method.name === spec.method.name,
      )
    ) {
      throw new Error(`${spec.method.parent.typeName}/${spec.method.name} is registered twice`);
    }
    methods.push(spec);
  };
  return {
    methods,
    service(service, impl) {
      for (const spec of Object.values(createServiceImplSpec(service, impl).methods)) add(spec);
    },
    rpc(method, impl) {
      add(createMethodImplSpec(method, impl) as MethodImplSpec);
    },
  };
}
