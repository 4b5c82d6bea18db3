import { describe, expect, test } from "vitest";
import { renderRegistryConfig } from "../../../components/render/registry-config";

describe("registry config", () => {
    test("hosted: TLS, htpasswd, delete enabled, no proxy", () => {
        expect(
            renderRegistryConfig({
                port: 5000,
                storageRoot: "/var/lib/registry",
                tls: { certificate: "/etc/registry/tls/tls.crt", key: "/etc/registry/tls/tls.key" },
                htpasswd: { realm: "cluster-registry", path: "/etc/registry/auth/htpasswd" },
            }),
        ).toBe(`version: "0.1"
log:
  level: info
  formatter: text
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: :5000
  tls:
    certificate: /etc/registry/tls/tls.crt
    key: /etc/registry/tls/tls.key
  headers:
    X-Content-Type-Options:
      - nosniff
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
auth:
  htpasswd:
    realm: cluster-registry
    path: /etc/registry/auth/htpasswd
`);
    });

    test("cache: proxy section with TTL and no auth", () => {
        const text = renderRegistryConfig({
            port: 5000,
            storageRoot: "/var/lib/registry",
            tls: { certificate: "/c", key: "/k" },
            proxy: { remoteUrl: "https://registry-1.docker.io", ttl: "168h" },
        });
        expect(text).toContain("proxy:\n  remoteurl: https://registry-1.docker.io\n  ttl: 168h\n");
        expect(text).not.toContain("auth:");
    });
});
