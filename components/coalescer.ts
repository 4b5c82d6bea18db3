/**
 * A cache's coalescer: nginx in the cache's pod, in front of distribution's proxy, so a rollout's N
 * nodes asking at once for a blob or a tag the cache does not hold yet cost the upstream one download
 * (`proxy_cache_lock`), not N. nginx terminates TLS with the cache's certificate on the Service's port;
 * the registry moves to a port of its own behind it. See render/nginx-config.ts for what is cached.
 */
import * as k8s from "@pulumi/kubernetes";
import { renderNginxConfig } from "./render/nginx-config";
import { EVICTION_COUNTERS_FILE, LOOPBACK } from "./render/registry-config";
import { goDurationNanoseconds } from "./validators";

/**
 * nginx's stable line, pinned to a patch release like the registry's image (a moving tag would change
 * the pod on a rerun with no config change). Air-gapped clusters need this image too.
 */
export const DEFAULT_COALESCER_IMAGE = "docker.io/library/nginx:1.28.0-alpine";
/** Where the registry listens behind nginx, inside the pod; the Service never lists it. */
export const COALESCER_BACKEND_PORT = 5004;
/**
 * Where nginx serves the cache's eviction counters (plain HTTP, `/metrics` only): on the pod's
 * loopback, or on every address of the pod when metrics are scraped (as the registry's debug listener).
 */
export const COALESCER_METRICS_PORT = 5005;
/** That port's name in the pod, the metrics Service and the ServiceMonitor. */
export const COALESCER_METRICS_PORT_NAME = "evict-metrics";
/** nginx's config file, in the registry's ConfigMap beside config.yml. */
export const NGINX_CONFIG_FILE = "nginx.conf";
/** nginx's cache, under the cache's volume. */
export const COALESCER_CACHE_SUBDIR = "coalescer";
/** nginx's temp directory (pid, request buffers): an emptyDir of its own. */
const NGINX_TMP = "/tmp";

/** Where the cache's pod mounts what nginx needs, and the security every registry container gets. */
export interface CoalescerPodParts {
    image: string;
    /** The registry's port the Service targets, which nginx takes over. */
    port: number;
    mounts: { config: string; tls: string; storage: string };
    security: k8s.types.input.core.v1.SecurityContext;
    /** How long a stopping pod keeps serving before it drains (the registry's preStop sleep). */
    preStopSeconds: number;
    /** Name {@link COALESCER_METRICS_PORT} as a container port (Prometheus scrapes the eviction counters). Default: false. */
    metricsPort?: boolean;
}

/**
 * nginx.conf for a cache whose volume is mounted at `storage` and certificate at `tls`, with the cache's
 * TTL (a Go duration) and, for a cache with a fill limit, what nginx may hold of it in KiB and how it
 * serves the eviction loop's counters (`onPodAddress`: to other pods, else on the pod's loopback).
 */
export function coalescerConfig(
    parts: Pick<CoalescerPodParts, "port" | "mounts">,
    authenticate: boolean,
    ttl: string,
    maxSizeKiB?: bigint,
    evictionMetrics?: { onPodAddress: boolean },
): string {
    const ttlNanos = goDurationNanoseconds(ttl);
    if (ttlNanos === undefined) throw new Error(`cacheTtl ${JSON.stringify(ttl)} is not a Go duration`);
    return renderNginxConfig({
        port: parts.port,
        // Loopback: nothing outside the pod reaches nginx's way to the registry.
        backend: `127.0.0.1:${COALESCER_BACKEND_PORT}`,
        tls: { certificate: `${parts.mounts.tls}/tls.crt`, key: `${parts.mounts.tls}/tls.key` },
        // On the cache's volume: bounded by nginx (max_size, min_free) and counted in the cache's fill,
        // where an emptyDir over its sizeLimit would get the pod evicted in the middle of a rollout.
        cacheDir: `${parts.mounts.storage}/${COALESCER_CACHE_SUBDIR}`,
        tmpDir: NGINX_TMP,
        authenticate,
        // Whole seconds, at least 1: nginx counts in seconds, and 0 is "no TTL" to the renderer.
        ttlSeconds: ttlNanos === 0n ? 0 : Math.max(1, Number(ttlNanos / 1_000_000_000n)),
        maxSizeKiB,
        metrics: evictionMetrics && {
            listen: evictionMetrics.onPodAddress ? String(COALESCER_METRICS_PORT) : `${LOOPBACK}:${COALESCER_METRICS_PORT}`,
            file: `${parts.mounts.storage}/${EVICTION_COUNTERS_FILE}`,
        },
    });
}

/**
 * The cache's pod with nginx in front: the registry container (the first) gives its `registry` port
 * to nginx and listens on {@link COALESCER_BACKEND_PORT}, where its liveness probe follows it.
 * registryPodSpec builds plain arrays, which this reshapes.
 */
export function withCoalescer(pod: k8s.types.input.core.v1.PodSpec, parts: CoalescerPodParts): k8s.types.input.core.v1.PodSpec {
    const [registry, ...others] = pod.containers as k8s.types.input.core.v1.Container[];
    const probe = registry.livenessProbe as k8s.types.input.core.v1.Probe;
    const behind: k8s.types.input.core.v1.Container = {
        ...registry,
        ports: (registry.ports as k8s.types.input.core.v1.ContainerPort[]).map((p) =>
            p.name === "registry" ? { name: "backend", containerPort: COALESCER_BACKEND_PORT, protocol: "TCP" } : p,
        ),
        livenessProbe: { ...probe, httpGet: { ...(probe.httpGet as k8s.types.input.core.v1.HTTPGetAction), port: "backend" } },
    };
    const volumes = pod.volumes as k8s.types.input.core.v1.Volume[];
    return {
        ...pod,
        containers: [behind, ...others, nginxContainer(parts)],
        volumes: [...volumes, { name: "coalescer-tmp", emptyDir: { sizeLimit: "64Mi" } }],
    };
}

function nginxContainer(parts: CoalescerPodParts): k8s.types.input.core.v1.Container {
    // `-e stderr`: nginx opens its built-in error log before reading the config, on a read-only root.
    const nginx = ["nginx", "-e", "stderr", "-c", `${parts.mounts.config}/${NGINX_CONFIG_FILE}`];
    return {
        name: "coalescer",
        image: parts.image,
        command: [...nginx, "-g", "daemon off;"],
        // SIGTERM is nginx's fast shutdown, which cuts transfers in flight: as the registry does, keep
        // serving until kube-proxy has dropped the endpoint, then stop gracefully (`-s quit` lets every
        // response finish) and wait for nginx to be gone, within the pod's grace period.
        lifecycle: {
            preStop: {
                exec: {
                    command: ["sh", "-c", `sleep ${parts.preStopSeconds}; ${nginx.join(" ")} -s quit; while [ -e ${NGINX_TMP}/nginx.pid ]; do sleep 1; done`],
                },
            },
        },
        ports: [
            { name: "registry", containerPort: parts.port, protocol: "TCP" },
            ...(parts.metricsPort ? [{ name: COALESCER_METRICS_PORT_NAME, containerPort: COALESCER_METRICS_PORT, protocol: "TCP" }] : []),
        ],
        // The volume read-write: nginx's own cache is on it. It reads the eviction counters there too
        // (written by the evict container as the same user, mode 0644).
        volumeMounts: [
            { name: "config", mountPath: parts.mounts.config, readOnly: true },
            { name: "tls", mountPath: parts.mounts.tls, readOnly: true },
            { name: "storage", mountPath: parts.mounts.storage },
            { name: "coalescer-tmp", mountPath: NGINX_TMP },
        ],
        // Through nginx to the registry's `/`, which answers 200 without credentials.
        readinessProbe: { httpGet: { path: "/", port: "registry", scheme: "HTTPS" }, periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 2 },
        livenessProbe: { tcpSocket: { port: "registry" }, initialDelaySeconds: 5, periodSeconds: 20, timeoutSeconds: 3, failureThreshold: 3 },
        resources: { requests: { cpu: "50m", memory: "32Mi" }, limits: { memory: "256Mi" } },
        securityContext: parts.security,
    };
}
