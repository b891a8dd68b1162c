/**
 * The broker's API from the browser: Connect over the page's own origin (the broker's HTTP
 * port), with a shared access token when a connection string was given. The connection
 * string lives in this tab's session storage only.
 */
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { AdminService } from "../../gen/ts/sessionbus/v1/admin_service_pb.js";
import { MessagingService } from "../../gen/ts/sessionbus/v1/messaging_service_pb.js";
import { type ConnectionString, createSasToken, parseConnectionString } from "./sas.js";

const STORAGE_KEY = "sessionbus.connectionString";
const TOKEN_LIFETIME_SECONDS = 3600;

let connection: ConnectionString | undefined;
let cached: { token: string; expiresAt: number } | undefined;

function load(): void {
  const stored = sessionStorage.getItem(STORAGE_KEY);
  if (stored) {
    try {
      connection = parseConnectionString(stored);
    } catch {
      sessionStorage.removeItem(STORAGE_KEY);
    }
  }
}
load();

/** Keeps the connection string for this tab (throws on one that cannot be parsed). */
export function saveConnectionString(text: string): void {
  connection = parseConnectionString(text);
  cached = undefined;
  sessionStorage.setItem(STORAGE_KEY, text.trim());
}

export function forgetConnectionString(): void {
  connection = undefined;
  cached = undefined;
  sessionStorage.removeItem(STORAGE_KEY);
}

export function hasConnectionString(): boolean {
  return connection !== undefined;
}

const withToken: Interceptor = (next) => async (request) => {
  if (connection) {
    const now = Date.now() / 1000;
    if (!cached || cached.expiresAt - now < 300) {
      cached = await createSasToken(connection, TOKEN_LIFETIME_SECONDS);
    }
    request.header.set("authorization", cached.token);
  }
  return next(request);
};

const transport = createConnectTransport({
  baseUrl: location.origin,
  useBinaryFormat: true,
  interceptors: [withToken],
});

export const admin = createClient(AdminService, transport);
export const messaging = createClient(MessagingService, transport);

/** True when the broker refused the call for want of a (valid) token. */
export function needsToken(error: unknown): boolean {
  return error instanceof ConnectError && error.code === Code.Unauthenticated;
}

export function errorText(error: unknown): string {
  return error instanceof ConnectError ? error.rawMessage : String(error);
}
