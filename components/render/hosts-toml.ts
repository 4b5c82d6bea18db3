/** containerd's `certs.d/<host>/hosts.toml`. */
import * as TOML from "smol-toml";

export type HostCapability = "pull" | "resolve" | "push";

export interface HostsTomlInput {
    /** Who wrote the file; goes into a comment so a person on the node knows where it came from. */
    owner: string;
    /** The registry's own URL; containerd falls back to it after the `host` entries. */
    server: string;
    /** The endpoint containerd tries first (a ClusterIP URL, so nodes need no cluster DNS). */
    endpoint: string;
    capabilities: readonly HostCapability[];
    /** CA file for the endpoint, relative to the hosts.toml's directory. */
    ca: string;
    /** Whether `server` is ours too (and so needs our CA); false when it is a public upstream. */
    serverIsOurs: boolean;
    /**
     * Headers containerd sends to the endpoint on every request (containerd 1.5+): the node identity's
     * `Authorization`, so nodes pull with no pull secret. On `server` too when it is ours, never when it
     * is a public upstream, which must not see it. Default: none.
     */
    header?: Readonly<Record<string, string>>;
    /**
     * More endpoints, tried in order after `endpoint` when it fails (containerd moves to the next
     * `[host]` on a connection error, a 404 or a 5xx): a cache's other replicas. Default: none.
     */
    fallbacks?: readonly string[];
}

/** One `[host."URL"]` table: containerd tries them in file order, then `server`. */
interface HostEntry {
    capabilities: readonly HostCapability[];
    ca: string;
    header?: Readonly<Record<string, string>>;
}

function hostTable(h: HostEntry): Record<string, unknown> {
    return { capabilities: [...h.capabilities], ca: h.ca, ...(h.header && Object.keys(h.header).length > 0 ? { header: { ...h.header } } : {}) };
}

/**
 * containerd 1.6 ignores a hosts.toml without a `[host]` table, so there is always one. Our CA goes
 * at the top level only when `server` is ours: a public upstream keeps the system roots alone.
 * containerd 1.x tries `server` after a `[host]` answered 404 and reports that last error: a `server`
 * of ours gets the node identity's header too, so a missing image reads "not found", not 401.
 */
export function renderHostsToml(input: HostsTomlInput): string {
    const serverHeader = input.serverIsOurs && input.header && Object.keys(input.header).length > 0 ? { header: { ...input.header } } : {};
    // A list in file order, so mirrors tried before this endpoint (issue 19) are one more entry; a
    // cache's other replicas come after it, each exactly as the first (same CA, same node identity).
    const entry: HostEntry = { capabilities: input.capabilities, ca: input.ca, header: input.header };
    const hosts: Array<[string, HostEntry]> = [input.endpoint, ...(input.fallbacks ?? [])].map((url) => [url, entry]);
    const body = TOML.stringify({
        server: input.server,
        ...(input.serverIsOurs ? { ca: input.ca, ...serverHeader } : {}),
        host: Object.fromEntries(hosts.map(([url, h]) => [url, hostTable(h)])),
    });
    return `# Written by ${input.owner}. Removed, and any earlier file restored, when it is uninstalled.\n${body.trimEnd()}\n`;
}
