import { createReadStream, existsSync, statSync } from "node:fs";
import type http from "node:http";
import type http2 from "node:http2";
import { extname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

/** Where the web console is served on the HTTP port (its assets are built with this base). */
export const CONSOLE_BASE = "/console/";

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json",
  ".woff2": "font/woff2",
};

/**
 * The built console (scripts/build.mjs runs Vite into dist/console): found from the project
 * root whether the broker runs from src/ (tsx) or from dist/src/.
 */
export function defaultConsoleDir(): string {
  let dir = fileURLToPath(new URL(".", import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, "package.json"))) return join(dir, "dist", "console");
    dir = resolve(dir, "..");
  }
  return resolve("dist", "console");
}

type Request = http.IncomingMessage | http2.Http2ServerRequest;
type Response = http.ServerResponse | http2.Http2ServerResponse;

/**
 * Serves GET and HEAD of `/` (a redirect) and of files below CONSOLE_BASE from `dir`;
 * returns false for every other request (the RPCs). A path that leaves `dir` once decoded
 * ("..", encoded slashes, NUL) is refused; an unknown path below the base gets index.html,
 * the single page's entry.
 */
export function serveConsole(dir: string, req: Request, res: Response): boolean {
  if (req.method !== "GET" && req.method !== "HEAD") return false;
  const url = new URL(req.url ?? "/", "http://console");
  if (url.pathname === "/") {
    res.writeHead(302, { location: CONSOLE_BASE });
    res.end();
    return true;
  }
  if (`${url.pathname}/` === CONSOLE_BASE) {
    res.writeHead(301, { location: CONSOLE_BASE });
    res.end();
    return true;
  }
  if (!url.pathname.startsWith(CONSOLE_BASE)) return false;
  let relative: string;
  try {
    relative = decodeURIComponent(url.pathname.slice(CONSOLE_BASE.length));
  } catch {
    return refuse(res, 400, "malformed path");
  }
  if (relative.includes("\0") || relative.includes("\\") || relative.split("/").includes("..")) {
    return refuse(res, 400, "malformed path");
  }
  const root = resolve(dir);
  let file = resolve(root, relative === "" ? "index.html" : relative);
  if (file !== root && !file.startsWith(root + sep)) return refuse(res, 400, "malformed path");
  if (!isFile(file)) {
    // Assets are files with an extension; anything else is a page of the console.
    if (extname(relative) !== "") return refuse(res, 404, "not found");
    file = join(root, "index.html");
    if (!isFile(file)) {
      return refuse(res, 404, "the web console is not built: run `npm run build`");
    }
  }
  const type = CONTENT_TYPES[extname(file)] ?? "application/octet-stream";
  res.writeHead(200, {
    "content-type": type,
    "content-length": String(statSync(file).size),
    "x-content-type-options": "nosniff",
    // Built assets carry a content hash in their names; index.html must be fetched anew.
    "cache-control": file.includes(`${sep}assets${sep}`)
      ? "max-age=31536000, immutable"
      : "no-cache",
  });
  if (req.method === "HEAD") {
    res.end();
    return true;
  }
  createReadStream(file)
    .on("error", () => res.destroy())
    .pipe(res as NodeJS.WritableStream);
  return true;
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function refuse(res: Response, status: number, text: string): true {
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8" });
  res.end(`${text}\n`);
  return true;
}
