/** The distribution registry's config.yml, for a hosted registry or a pull-through cache. */
import * as YAML from "yaml";

export interface RegistryConfigInput {
    /** Port the registry listens on inside the pod. */
    port: number;
    /** Port of the debug listener (Prometheus `/metrics`, `/debug/health`, pprof, expvar) inside the pod. */
    debugPort: number;
    /** Where images are stored (the volume's mount path). */
    storageRoot: string;
    /** Server certificate and key files. */
    tls: { certificate: string; key: string };
    /** htpasswd authentication; absent means anonymous access (caches reachable only in-cluster). */
    htpasswd?: { realm: string; path: string };
    /** Pull-through cache of one upstream; absent for the hosted registry. */
    proxy?: { remoteUrl: string; ttl: string };
    /**
     * Keep an in-memory blob-descriptor cache. Default: on for a hosted registry, off for a cache.
     * Off where garbage is collected beside a running registry: in 3.1.1 it answers for swept blobs
     * until the process restarts (distribution issues 4569, 3743; the fix, PR 4868, came later).
     */
    descriptorCache?: boolean;
    /** Let users delete manifests and tags (`storage.delete.enabled`). Default: only a cache (TTL expiry). */
    deletes?: boolean;
    /** Extra response headers, e.g. a `Warning` saying why writes are refused. Default: none. */
    headers?: Record<string, string>;
    /**
     * Serve pulls only: distribution's maintenance read-only mode refuses every write (push, tag,
     * delete) with 405 whoever asks, so a pull identity cannot write however the htpasswd is set up.
     * Its upload purger is off too: the read-write container beside it owns the uploads.
     */
    readOnly?: boolean;
}

/** Where the debug listener serves Prometheus metrics. */
export const METRICS_PATH = "/metrics";
/** Where the debug listener serves the health checks' state: 200, or 503 once a check fails. */
export const HEALTH_PATH = "/debug/health";

/**
 * Secrets are not in this file: it lives in a ConfigMap. Upstream credentials reach a cache as
 * `REGISTRY_PROXY_*` environment variables from a Secret. No `http.secret` is set: it signs upload
 * state between replicas, and there is one replica. Every key is in distribution 3's schema
 * (configuration/configuration.go); the integration tests run it on the release the image ships.
 */
export function renderRegistryConfig(input: RegistryConfigInput): string {
    const config: Record<string, unknown> = {
        version: "0.1",
        log: { level: "info", formatter: "text", fields: { service: "registry" } },
        storage: {
            filesystem: { rootdirectory: input.storageRoot },
            // Only a cache's TTL expiry needs deletes; on the hosted registry any user could delete images.
            delete: { enabled: !!input.proxy || !!input.deletes },
            // Proxy mode with the in-memory descriptor cache can answer "unexpected EOF" once blobs
            // expire (distribution issue 2367), so a cache has none.
            ...(input.proxy || input.descriptorCache === false ? {} : { cache: { blobdescriptor: "inmemory" } }),
            ...(input.readOnly ? { maintenance: { uploadpurging: { enabled: false }, readonly: { enabled: true } } } : {}),
        },
        http: {
            addr: `:${input.port}`,
            tls: { certificate: input.tls.certificate, key: input.tls.key, minimumtls: "tls1.2" },
            headers: { "X-Content-Type-Options": ["nosniff"], ...Object.fromEntries(Object.entries(input.headers ?? {}).map(([k, v]) => [k, [v]])) },
            // Plain HTTP, never on the NodePort: only a ClusterIP Service of its own reaches it.
            debug: { addr: `:${input.debugPort}`, prometheus: { enabled: true, path: METRICS_PATH } },
        },
        health: { storagedriver: { enabled: true, interval: "10s", threshold: 3 } },
    };
    if (input.htpasswd) config.auth = { htpasswd: { realm: input.htpasswd.realm, path: input.htpasswd.path } };
    if (input.proxy) config.proxy = { remoteurl: input.proxy.remoteUrl, ttl: input.proxy.ttl };
    return YAML.stringify(config);
}

/**
 * The readiness check a registry pod runs with the image's busybox `sh -c SCRIPT probe STORAGE
 * MAX_FILL_PERCENT HEALTH_URL`: not ready while the storage volume is at or above MAX_FILL_PERCENT
 * (`-` skips that check) or while distribution's health endpoint does not answer 200 (its storage
 * driver check failing makes it 503). Plain POSIX sh with df, awk and wget, as busybox has them.
 */
export const READINESS_SCRIPT = [
    'used=$(df -P "$1" | awk \'NR == 2 { sub(/%$/, "", $5); print $5 }\')',
    'case "$used" in "" | *[!0-9]*) echo "cannot read how full $1 is" >&2; exit 1 ;; esac',
    'if [ "$2" != - ] && [ "$used" -ge "$2" ]; then echo "$1 is $used% full (limit $2%): not serving new content" >&2; exit 1; fi',
    'wget -q -Y off -O /dev/null "$3" || { echo "$3 does not answer 200: storage unhealthy" >&2; exit 1; }',
].join("\n");
