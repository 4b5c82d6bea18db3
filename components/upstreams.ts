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
