import { type Duration, type Timestamp, timestampDate } from "@bufbuild/protobuf/wkt";
import type { PropertyValue } from "../../gen/ts/sessionbus/v1/message_pb.js";

export type BytesView = "text" | "json" | "hex";

/** Bytes shown as UTF-8 text, pretty-printed JSON (or why not) or a hex dump. */
export function showBytes(bytes: Uint8Array, view: BytesView): string {
  if (view === "hex") return hexDump(bytes);
  const text = new TextDecoder().decode(bytes);
  if (view === "text") return text;
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch (error) {
    return `(not JSON: ${error instanceof Error ? error.message : String(error)})`;
  }
}

function hexDump(bytes: Uint8Array): string {
  const lines: string[] = [];
  for (let at = 0; at < bytes.length; at += 16) {
    const row = bytes.subarray(at, at + 16);
    const hex = Array.from(row, (b) => b.toString(16).padStart(2, "0")).join(" ");
    const ascii = Array.from(row, (b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : ".")).join(
      "",
    );
    lines.push(`${at.toString(16).padStart(8, "0")}  ${hex.padEnd(47)}  ${ascii}`);
  }
  return lines.join("\n");
}

/** The view bytes most likely want: from a content type, or else from the bytes. */
export function defaultView(contentType: string | undefined, bytes: Uint8Array): BytesView {
  if (contentType?.includes("json")) return "json";
  if (contentType?.startsWith("text/")) return "text";
  if (contentType) return "hex";
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return "hex";
  }
  try {
    JSON.parse(text);
    return "json";
  } catch {
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is looked for
    return /[\x00-\x08\x0e-\x1f]/.test(text) ? "hex" : "text";
  }
}

export function showTime(timestamp: Timestamp | undefined): string {
  return timestamp ? timestampDate(timestamp).toISOString().replace("T", " ").slice(0, 23) : "";
}

export function showDuration(duration: Duration | undefined): string {
  if (!duration) return "";
  return `${Number(duration.seconds) + duration.nanos / 1e9} s`;
}

export function showProperty(value: PropertyValue): string {
  const v = value.value;
  switch (v.case) {
    case "bytesValue":
      return `0x${Array.from(v.value, (b) => b.toString(16).padStart(2, "0")).join("")}`;
    case "timestampValue":
      return showTime(v.value);
    case undefined:
      return "";
    default:
      return String(v.value);
  }
}

export function showSize(bytes: bigint | number): string {
  const n = Number(bytes);
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}
