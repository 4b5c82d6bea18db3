/** Public registries a cache can front, as data: the name in image references and where it lives. */

/** Presets: `caches: [docker.io]` is all a user writes for the common case. */
export const UPSTREAM_PRESETS: Readonly<Record<string, string>> = {
    // docker.io is a name, not a server: the registry API lives on registry-1.docker.io.
    "docker.io": "https://registry-1.docker.io",
    "quay.io": "https://quay.io",
    "ghcr.io": "https://ghcr.io",
    "registry.k8s.io": "https://registry.k8s.io",
};

/** How long a cache keeps what it fetched before checking upstream again (distribution's default). */
export const DEFAULT_CACHE_TTL = "168h";

/** The cache Service's name for an upstream host: `cache-docker-io`, `cache-registry-k8s-io`. */
export function cacheServiceName(host: string): string {
    return `cache-${host.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`.slice(0, 63).replace(/-+$/, "");
}

/** One path component distribution accepts in a repository name (distribution/reference's pathComponent). */
const REPOSITORY_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$/;

/**
 * Where a preloaded upstream's repositories live in the hosted registry: `docker.io/library/nginx`
 * under `docker.io`. distribution refuses `:` in repository names, so a port becomes `_<port>`
 * (`registry.example.com:5000` is `registry.example.com_5000`); a DNS name has no `_`, so no two hosts
 * meet. `undefined` when no path component can stand for the host.
 */
export function preloadPrefix(host: string): string | undefined {
    const prefix = host.replace(/:(?=[0-9]+$)/, "_");
    return REPOSITORY_COMPONENT.test(prefix) ? prefix : undefined;
}

/** Where nodes fall back to for an upstream with no cache: the preset's API, else the host itself. */
export function upstreamUrlOf(host: string): string {
    return UPSTREAM_PRESETS[host] ?? `https://${host}`;
}
