import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { type ContextValues, createContextValues, type HandlerContext } from "@connectrpc/connect";
import type { Metadata } from "@grpc/grpc-js";

/** What a grpc-js call offers the context: its metadata, deadline and cancellation. */
export interface GrpcCallLike {
  readonly metadata: Metadata;
  getDeadline(): Date | number;
  getPath(): string;
  on(event: "cancelled", listener: () => void): unknown;
}

/**
 * The HandlerContext a broker handler gets when called through grpc-js. Everything is made
 * when first asked for: most unary calls never look at their signal or headers, and an
 * AbortController with its listeners per call is a large part of what a call costs.
 */
export class GrpcCallContext implements HandlerContext {
  readonly requestMethod = "POST";
  readonly protocolName = "grpc";
  private controller: AbortController | undefined;
  private cancelled = false;
  private disposeSignal: (() => void) | undefined;
  private headers: Headers | undefined;
  private contextValues: ContextValues | undefined;
  private unsentHeader: Headers | undefined;
  private unsentTrailer: Headers | undefined;

  constructor(
    readonly method: DescMethod,
    private readonly call: GrpcCallLike,
    private readonly shutdown: AbortSignal,
  ) {
    call.on("cancelled", () => {
      this.cancelled = true;
      this.controller?.abort(new DOMException("The client cancelled the call.", "AbortError"));
    });
  }

  get service(): DescService {
    return this.method.parent;
  }

  get url(): string {
    return this.call.getPath();
  }

  /** Aborted when the client cancels, the deadline passes or the server shuts down. */
  get signal(): AbortSignal {
    if (this.controller) return this.controller.signal;
    const controller = new AbortController();
    this.controller = controller;
    const onShutdown = () => controller.abort(this.shutdown.reason);
    this.shutdown.addEventListener("abort", onShutdown);
    const left = this.timeoutMs();
    const timer =
      left === undefined
        ? undefined
        : setTimeout(
            () => controller.abort(new DOMException("The deadline passed.", "TimeoutError")),
            Math.max(0, left),
          );
    timer?.unref();
    this.disposeSignal = () => {
      this.shutdown.removeEventListener("abort", onShutdown);
      if (timer) clearTimeout(timer);
    };
    if (this.cancelled)
      controller.abort(new DOMException("The client cancelled the call.", "AbortError"));
    else if (this.shutdown.aborted) controller.abort(this.shutdown.reason);
    return controller.signal;
  }

  /** Milliseconds left until the client's deadline, or undefined without one. */
  timeoutMs(): number | undefined {
    const deadline = this.call.getDeadline();
    const at = deadline instanceof Date ? deadline.getTime() : deadline;
    return Number.isFinite(at) ? at - Date.now() : undefined;
  }

  /** One request metadata value (the first, if sent several times), without building Headers. */
  metadataValue(name: string): string | undefined {
    const [value] = this.call.metadata.get(name);
    return typeof value === "string" ? value : undefined;
  }

  get requestHeader(): Headers {
    if (!this.headers) {
      this.headers = new Headers();
      for (const [name, value] of Object.entries(this.call.metadata.getMap())) {
        if (typeof value === "string") this.headers.append(name, value);
      }
    }
    return this.headers;
  }

  /** Response headers and trailers are not sent through grpc-js; no handler sets them. */
  get responseHeader(): Headers {
    this.unsentHeader ??= new Headers();
    return this.unsentHeader;
  }

  get responseTrailer(): Headers {
    this.unsentTrailer ??= new Headers();
    return this.unsentTrailer;
  }

  get values(): ContextValues {
    this.contextValues ??= createContextValues();
    return this.contextValues;
  }

  /** Releases the listeners and the timer of the signal, once the call has ended. */
  dispose(): void {
    this.disposeSignal?.();
    this.disposeSignal = undefined;
  }
}
