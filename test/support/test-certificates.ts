/**
 * A CA and certificates made at test time with the openssl command (scripts/setup.sh installs
 * it): EC P-256 keys, valid for a day, written as PEM files into a fresh directory.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

export interface CertificateFiles {
  cert: string;
  key: string;
}

export interface TestCa {
  dir: string;
  /** The CA certificate's PEM file. */
  cert: string;
  key: string;
  /** A certificate signed by this CA for 127.0.0.1, ::1 and localhost (server use). */
  issueServer(name: string): CertificateFiles;
  /** A certificate signed by this CA for client authentication. */
  issueClient(name: string): CertificateFiles;
}

function openssl(args: string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
}

/** Makes a self-signed CA `name` in a new temporary directory (or in `dir`). */
export function createTestCa(name: string, dir?: string): TestCa {
  const home = dir ?? mkdtempSync(path.join(tmpdir(), "sessionbus-tls-"));
  const caKey = path.join(home, `${name}.key`);
  const caCert = path.join(home, `${name}.pem`);
  openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", caKey], home);
  openssl(
    [
      ...["req", "-x509", "-new", "-key", caKey, "-sha256", "-days", "1"],
      ...["-subj", `/CN=${name}`, "-out", caCert],
      ...["-addext", "basicConstraints=critical,CA:TRUE"],
      ...["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
    ],
    home,
  );
  const issue = (leaf: string, extensions: string): CertificateFiles => {
    const key = path.join(home, `${leaf}.key`);
    const csr = path.join(home, `${leaf}.csr`);
    const cert = path.join(home, `${leaf}.pem`);
    const ext = path.join(home, `${leaf}.ext`);
    writeFileSync(ext, extensions);
    openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key], home);
    openssl(["req", "-new", "-key", key, "-subj", `/CN=${leaf}`, "-out", csr], home);
    openssl(
      [
        ...["x509", "-req", "-in", csr, "-CA", caCert, "-CAkey", caKey, "-CAcreateserial"],
        ...["-days", "1", "-sha256", "-extfile", ext, "-out", cert],
      ],
      home,
    );
    return { cert, key };
  };
  return {
    dir: home,
    cert: caCert,
    key: caKey,
    issueServer: (leaf) =>
      issue(
        leaf,
        "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
      ),
    issueClient: (leaf) => issue(leaf, "extendedKeyUsage=clientAuth\n"),
  };
}

/** The contents of a PEM file. */
export function pem(file: string): Buffer {
  return readFileSync(file);
}
