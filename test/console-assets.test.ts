/**
 * The web console's files on the HTTP port (issue 16): content types, the redirect from /,
 * and no path outside the built console, however the path is written.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type HttpServer, startHttpServer } from "../src/server/http-server.js";
import { createRouteTable } from "../src/server/route-table.js";

let server: HttpServer;
let root: string;
const shutdown = new AbortController();

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "sessionbus-console-"));
  const dir = join(root, "console");
  mkdirSync(join(dir, "assets"), { recursive: true });
  writeFileSync(join(dir, "index.html"), "<!doctype html><title>console</title>");
  writeFileSync(join(dir, "assets", "app-1.js"), "console.log(1)");
  writeFileSync(join(dir, "assets", "app-1.css"), "body{}");
  // Outside the console directory: must never be served.
  writeFileSync(join(root, "secret.txt"), "secret");
  server = await startHttpServer(createRouteTable(), {
    host: "127.0.0.1",
    port: 0,
    maxRequestBytes: 1024 * 1024,
    shutdownSignal: shutdown.signal,
    consoleDir: dir,
  });
});

afterAll(async () => {
  shutdown.abort();
  await server?.close(1000);
  rmSync(root, { recursive: true, force: true });
});

/** A GET with the path sent exactly as written (no normalization by a URL parser). */
function get(
  path: string,
): Promise<{ status: number; type: string; body: string; location?: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      { host: "127.0.0.1", port: server.port, path, method: "GET" },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          body += chunk;
        });
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            type: String(res.headers["content-type"] ?? ""),
            body,
            location: res.headers.location,
          }),
        );
      },
    );
    request.on("error", reject);
    request.end();
  });
}

describe("console assets on the HTTP port", () => {
  it("serves the page and its assets with their content types", async () => {
    const page = await get("/console/");
    expect(page.status).toBe(200);
    expect(page.type).toBe("text/html; charset=utf-8");
    expect(page.body).toContain("<title>console</title>");
    expect((await get("/console/assets/app-1.js")).type).toBe("text/javascript; charset=utf-8");
    expect((await get("/console/assets/app-1.css")).type).toBe("text/css; charset=utf-8");
  });

  it("redirects / to /console/ and answers unknown pages with the console's page", async () => {
    const root = await get("/");
    expect(root.status).toBe(302);
    expect(root.location).toBe("/console/");
    expect((await get("/console/entity/orders")).body).toContain("<title>console</title>");
    expect((await get("/console/assets/missing.js")).status).toBe(404);
  });

  it("serves nothing outside the console directory", async () => {
    for (const path of [
      "/console/../secret.txt",
      "/console/..%2fsecret.txt",
      "/console/%2e%2e/secret.txt",
      "/console/%2e%2e%2fsecret.txt",
      "/console/assets/..%2f..%2fsecret.txt",
      "/console/..%5csecret.txt",
      "/console/%00",
      "/console/%E0%A4%A",
    ]) {
      const answer = await get(path);
      expect(answer.body, path).not.toContain("secret");
      expect(answer.status === 400 || answer.status === 404 || answer.status === 200, path).toBe(
        true,
      );
    }
  });

  it("leaves RPCs to the Connect handler", async () => {
    const answer = await get("/sessionbus.v1.AdminService/ListQueues");
    expect(answer.type).not.toContain("text/html");
  });
});
