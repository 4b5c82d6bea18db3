import { describe, expect, test } from "vitest";
import YAML from "yaml";
import { renderRegistryConfig } from "../../../components/render/registry-config";

const BASE = {
    port: 5000,
    debugPort: 5001,
    storageRoot: "/var/lib/registry",
    tls: { certificate: "/etc/registry/tls/tls.crt", key: "/etc/registry/tls/tls.key" },
    drainTimeout: "60s",
};

describe("registry config", () => {
    test("hosted: TLS 1.2 at least, htpasswd, deletes refused, metrics on the debug listener, no proxy", () => {
        expect(renderRegistryConfig({ ...BASE, htpasswd: { realm: "cluster-registry", path: "/etc/registry/auth/htpasswd" } })).toBe(`version: "0.1"
log:
  level: info
  formatter: text
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: false
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: true
      age: 3h
      interval: 1h
      dryrun: false
http:
  addr: :5000
  draintimeout: 60s
  tls:
    certificate: /etc/registry/tls/tls.crt
    key: /etc/registry/tls/tls.key
    minimumtls: tls1.2
  headers:
    X-Content-Type-Options:
      - nosniff
  debug:
    addr: 127.0.0.1:5001
    prometheus:
      enabled: true
      path: /metrics
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

    test("cache: proxy section with TTL, deletes on (expiry needs them), no in-memory blob descriptor cache (issue 2367), no auth", () => {
        const text = renderRegistryConfig({ ...BASE, proxy: { remoteUrl: "https://registry-1.docker.io", ttl: "168h" } });
        expect(text).toContain("proxy:\n  remoteurl: https://registry-1.docker.io\n  ttl: 168h\n");
        const config = YAML.parse(text);
        expect(config.storage).toEqual({
            filesystem: { rootdirectory: "/var/lib/registry" },
            delete: { enabled: true },
            // Cut proxy fetches leave uploads too.
            maintenance: { uploadpurging: { enabled: true, age: "3h", interval: "1h", dryrun: false } },
        });
        expect(config.http.debug).toEqual({ addr: "127.0.0.1:5001", prometheus: { enabled: true, path: "/metrics" } });
        expect(text).not.toContain("auth:");
    });

    test("debug listener: the pod's loopback only unless Prometheus is to reach it, then every address of the pod", () => {
        expect(YAML.parse(renderRegistryConfig(BASE)).http.debug.addr).toBe("127.0.0.1:5001");
        expect(YAML.parse(renderRegistryConfig({ ...BASE, debugOnPodAddress: true })).http.debug.addr).toBe(":5001");
    });

    test("a TTL of 0 (never expire) reaches the config as a duration Go parses to zero", () => {
        const config = YAML.parse(renderRegistryConfig({ ...BASE, proxy: { remoteUrl: "https://quay.io", ttl: "0" } }));
        expect(config.proxy.ttl).toBe("0");
    });

    test("read-only: distribution's maintenance read-only mode on, upload purging left to the read-write container", () => {
        const config = YAML.parse(renderRegistryConfig({ ...BASE, readOnly: true }));
        expect(config.storage.maintenance).toEqual({ uploadpurging: { enabled: false }, readonly: { enabled: true } });
        expect(YAML.parse(renderRegistryConfig(BASE)).storage.maintenance).toEqual({
            uploadpurging: { enabled: true, age: "3h", interval: "1h", dryrun: false },
        });
    });

    test("S3-compatible store: path-style with its endpoint, a key prefix, SSE-KMS, redirects off, no filesystem", () => {
        const text = renderRegistryConfig({
            ...BASE,
            s3: { bucket: "images", region: "us-east-1", regionEndpoint: "http://127.0.0.9:7070", rootDirectory: "/cluster-a", kmsKeyId: "alias/registry" },
        });
        expect(text).toContain(`storage:
  s3:
    bucket: images
    region: us-east-1
    regionendpoint: http://127.0.0.9:7070
    forcepathstyle: true
    rootdirectory: /cluster-a
    encrypt: true
    keyid: alias/registry
  redirect:
    disable: true
  delete:
    enabled: false
`);
        expect(text).not.toContain("filesystem");
        expect(text).not.toMatch(/accesskey|secretkey/i);
    });

    test("AWS S3: no endpoint, so virtual-hosted addressing (no forcepathstyle), and no encryption keys unless asked", () => {
        const config = YAML.parse(renderRegistryConfig({ ...BASE, s3: { bucket: "images", region: "eu-west-1" } }));
        expect(config.storage.s3).toEqual({ bucket: "images", region: "eu-west-1" });
        expect(config.storage.redirect).toEqual({ disable: true });
    });
});
