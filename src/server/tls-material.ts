import { readFileSync } from "node:fs";
import tls from "node:tls";
import type { TlsFiles } from "../config.js";

/** The PEM contents both servers are given, read from `TlsFiles` at start and on reload. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  /** Client CA: set means mutual TLS. */
  clientCa?: Buffer;
}

/**
 * Reads the certificate, key and client CA, and checks that Node can build a TLS context of
 * them (PEM that parses, a key that matches the certificate), so a bad file is refused here,
 * with its name, instead of breaking the servers that would be handed it.
 */
export function readTlsMaterial(files: TlsFiles): TlsMaterial {
  const material: TlsMaterial = {
    cert: readPem(files.certFile, "SESSIONBUS_TLS_CERT"),
    key: readPem(files.keyFile, "SESSIONBUS_TLS_KEY"),
    ...(files.clientCaFile === undefined
      ? {}
      : { clientCa: readPem(files.clientCaFile, "SESSIONBUS_TLS_CLIENT_CA") }),
  };
  try {
    tls.createSecureContext(secureContextOptions(material));
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new Error(
      `TLS: ${files.certFile}, ${files.keyFile}${files.clientCaFile ? ` and ${files.clientCaFile}` : ""} do not make a usable certificate (${why}).`,
    );
  }
  return material;
}

/** What `tls.createSecureContext` and `setSecureContext` take. */
export function secureContextOptions(material: TlsMaterial): tls.SecureContextOptions {
  return {
    cert: material.cert,
    key: material.key,
    ...(material.clientCa === undefined ? {} : { ca: material.clientCa }),
  };
}

function readPem(file: string, variable: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new Error(`TLS: cannot read ${variable} (${file}): ${why}`);
  }
}
