/**
 * Air-gapped clusters: upstream images preloaded into the hosted registry (scripts/preload) and pulled
 * by their unmodified names, and caches that reach their upstreams through an HTTP(S) proxy.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { ENVIRONMENTS, EnvironmentName } from "./environments";
import { NodeRegistry } from "./node-config";
import { HostEntry } from "./render/hosts-toml";
import { preloadPrefix, upstreamUrlOf } from "./upstreams";

/**
 * The hosted registry's API root for one upstream: containerd with `override_path` asks
 * `<endpoint>/v2/docker.io/library/nginx/manifests/1.27`, the repository `docker.io/library/nginx`.
 */
export function preloadedEndpoint(hostedEndpoint: string, upstreamHost: string): string {
    const prefix = preloadPrefix(upstreamHost);
    // Settings refuse such a host before anything runs; this is only reached by a direct caller.
    if (prefix === undefined) throw new Error(`${JSON.stringify(upstreamHost)} maps to no repository path component`);
    return `${hostedEndpoint}/v2/${prefix}`;
}

/** The hosted registry's `[host]` table for one upstream: read-only port, node identity, CA. */
export function preloadedHostEntry(hostedEndpoint: string, upstreamHost: string, header?: Record<string, string>): HostEntry {
    return { url: preloadedEndpoint(hostedEndpoint, upstreamHost), capabilities: ["pull", "resolve"], overridePath: true, header };
}

/**
 * Adds the preloaded upstreams to the node registries: an upstream that has a cache gets the hosted
 * registry tried before it (containerd moves on after a 404); one without gets its own hosts.toml,
 * the hosted registry first, then the upstream (fail open) or the hosted registry again (fail closed,
 * so no pull leaves the cluster).
 */
export function withPreloaded(
    registries: NodeRegistry[],
    preloaded: readonly string[],
    hostedEndpoint: pulumi.Output<string>,
    header: pulumi.Output<{ Authorization: string }> | undefined,
    fallbackToUpstream: boolean,
): NodeRegistry[] {
    const entry = (host: string) => pulumi.all([hostedEndpoint, header]).apply(([e, h]) => preloadedHostEntry(e, host, h));
    const cached = registries.map((r) => {
        const host = preloaded.find((p) => p === r.host);
        return host === undefined ? r : { ...r, before: entry(host).apply((e) => [e]) };
    });
    const alone = preloaded
        .filter((p) => !registries.some((r) => r.host === p))
        .map((host): NodeRegistry => {
            const endpoint = hostedEndpoint.apply((e) => preloadedEndpoint(e, host));
            return {
                host,
                server: fallbackToUpstream ? upstreamUrlOf(host) : endpoint,
                endpoint,
                capabilities: ["pull", "resolve"],
                serverIsOurs: !fallbackToUpstream,
                header,
                overridePath: true,
            };
        });
    return [...cached, ...alone];
}

/** Proxy settings of the caches, resolved. */
export interface CacheProxySettings {
    environment: EnvironmentName;
    clusterDomain: string;
    cacheHttpsProxy: string;
    cacheHttpProxy: string;
    cacheNoProxy: string[];
    cacheProxyCredentials: string | undefined;
}

/**
 * What the caches never reach through the proxy: the cluster itself (Services by name and by
 * ClusterIP), loopback, and the cloud's instance metadata and EKS Pod Identity agent, which hand out
 * credentials (an object store's endpoint goes in cacheNoProxy).
 */
export function cacheNoProxyOf(s: Pick<CacheProxySettings, "environment" | "clusterDomain" | "cacheNoProxy">): string {
    const own = [".svc", `.${s.clusterDomain}`, ...ENVIRONMENTS[s.environment].serviceCidrs, "localhost", "127.0.0.0/8", "169.254.169.254", "169.254.170.23"];
    return [...new Set([...own, ...s.cacheNoProxy])].join(",");
}

/** A proxy URL with credentials in its userinfo, as Go's ProxyFromEnvironment reads them (percent-encoded). */
export function proxyUrlWithCredentials(proxyUrl: string, credentials: string): string {
    const colon = credentials.indexOf(":");
    const url = new URL(proxyUrl);
    url.username = encodeURIComponent(credentials.slice(0, colon));
    url.password = encodeURIComponent(credentials.slice(colon + 1));
    return url.toString().replace(/\/$/, "");
}

/**
 * The caches' proxy environment (distribution's upstream client honours HTTPS_PROXY, HTTP_PROXY and
 * NO_PROXY). With credentials the proxy URLs hold them, so they come from a Secret, never from the
 * pod template or a ConfigMap. `secret` makes that Secret; it is called only when there are credentials.
 */
export function cacheProxyEnv(
    s: CacheProxySettings,
    secret: (data: pulumi.Input<Record<string, string>>) => pulumi.Output<string>,
): k8s.types.input.core.v1.EnvVar[] {
    const proxies = (
        [
            ["HTTPS_PROXY", s.cacheHttpsProxy],
            ["HTTP_PROXY", s.cacheHttpProxy],
        ] as const
    ).filter(([, url]) => url !== "");
    if (proxies.length === 0) return [];
    const noProxy = { name: "NO_PROXY", value: cacheNoProxyOf(s) };
    const creds = s.cacheProxyCredentials;
    if (creds === undefined) return [...proxies.map(([name, value]) => ({ name, value })), noProxy];
    const data = pulumi.secret(Object.fromEntries(proxies.map(([name, url]) => [name, proxyUrlWithCredentials(url, creds)])));
    const name = secret(data);
    return [...proxies.map(([key]) => ({ name: key, valueFrom: { secretKeyRef: { name, key } } })), noProxy];
}
