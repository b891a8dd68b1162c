import {
  type experimental,
  experimental as grpcExperimental,
  type ServerCredentials,
} from "@grpc/grpc-js";
import type { TlsMaterial } from "./tls-material.js";

type CaListener = experimental.CaCertificateUpdateListener;
type IdentityListener = experimental.IdentityCertificateUpdateListener;

/** Server credentials of the gRPC port whose certificate can be swapped while it serves. */
export interface ReloadableGrpcCredentials {
  credentials: ServerCredentials;
  /** New connections get `material`; open ones keep the certificate they were made with. */
  update(material: TlsMaterial): void;
}

/**
 * grpc-js (1.14) has one supported way to change a running server's certificate: credentials
 * made from a certificate provider, whose updates it hands to its HTTP/2 server's
 * `setSecureContext`. This provider is fed by the broker (at start, and on each reload)
 * instead of watching files on a timer. The material must be valid (see readTlsMaterial):
 * grpc-js drops every new connection after a `setSecureContext` that throws.
 */
export function createReloadableGrpcCredentials(material: TlsMaterial): ReloadableGrpcCredentials {
  const provider = new FedCertificateProvider(material);
  const mutual = material.clientCa !== undefined;
  // grpc-js's d.ts names the first two parameters the other way round from what its code does
  // with them: the first is the identity (certificate and key), the second the client CA.
  const credentials = grpcExperimental.createCertificateProviderServerCredentials(
    provider,
    mutual ? provider : null,
    mutual,
  );
  return { credentials, update: (next) => provider.feed(next) };
}

class FedCertificateProvider implements experimental.CertificateProvider {
  private readonly caListeners = new Set<CaListener>();
  private readonly identityListeners = new Set<IdentityListener>();

  constructor(private material: TlsMaterial) {}

  feed(material: TlsMaterial): void {
    this.material = material;
    // The CA first: between the two updates, the new CA goes with the old certificate.
    for (const listener of this.caListeners) listener(this.caUpdate());
    for (const listener of this.identityListeners) listener(this.identityUpdate());
  }

  // Listeners get the current material on the next tick, as grpc-js's own provider does:
  // grpc-js adds its server's watcher only after it has added these listeners.
  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    process.nextTick(() => {
      if (this.caListeners.has(listener)) listener(this.caUpdate());
    });
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    process.nextTick(() => {
      if (this.identityListeners.has(listener)) listener(this.identityUpdate());
    });
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
  }

  private caUpdate() {
    return this.material.clientCa === undefined ? null : { caCertificate: this.material.clientCa };
  }

  private identityUpdate() {
    return { certificate: this.material.cert, privateKey: this.material.key };
  }
}
