/** The distribution registry's config.yml, for a hosted registry or a pull-through cache. */
import * as YAML from "yaml";

export interface RegistryConfigInput {
    /** Port the registry listens on inside the pod. */
    port: number;
    /** Where images are stored (the volume's mount path). */
    storageRoot: string;
    /** Server certificate and key files. */
    tls: { certificate: string; key: string };
    /** htpasswd authentication; absent means anonymous access (caches reachable only in-cluster). */
    htpasswd?: { realm: string; path: string };
    /** Pull-through cache of one upstream; absent for the hosted registry. */
    proxy?: { remoteUrl: string; ttl: string };
}

/**
 * Secrets are not in this file: it lives in a ConfigMap. Upstream credentials reach a cache as
 * `REGISTRY_PROXY_*` environment variables from a Secret. No `http.secret` is set: it signs upload
 * state between replicas, and there is one replica.
 */
export function renderRegistryConfig(input: RegistryConfigInput): string {
    const config: Record<string, unknown> = {
        version: "0.1",
        log: { level: "info", formatter: "text", fields: { service: "registry" } },
        storage: {
            filesystem: { rootdirectory: input.storageRoot },
            // A cache's TTL expiry deletes blobs, which needs delete enabled.
            delete: { enabled: true },
            cache: { blobdescriptor: "inmemory" },
        },
        http: {
            addr: `:${input.port}`,
            tls: { certificate: input.tls.certificate, key: input.tls.key },
            headers: { "X-Content-Type-Options": ["nosniff"] },
        },
        health: { storagedriver: { enabled: true, interval: "10s", threshold: 3 } },
    };
    if (input.htpasswd) config.auth = { htpasswd: { realm: input.htpasswd.realm, path: input.htpasswd.path } };
    if (input.proxy) config.proxy = { remoteurl: input.proxy.remoteUrl, ttl: input.proxy.ttl };
    return YAML.stringify(config);
}
