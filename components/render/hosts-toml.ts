/** containerd's `certs.d/<host>/hosts.toml`. */
import * as TOML from "smol-toml";

export type HostCapability = "pull" | "resolve" | "push";

/** One `[host]` table; containerd tries them in file order and moves on after a connection error, a 404 or a 5xx. */
export interface HostEntry {
    url: string;
    capabilities: readonly HostCapability[];
    /** The URL's path is the API root (`/v2/docker.io`): containerd appends no `/v2`. Default: false. */
    overridePath?: boolean;
    /** Headers containerd sends there (the node identity's Authorization). Default: none. */
    header?: Readonly<Record<string, string>>;
}

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
    /** `endpoint` (and `server`, when ours) is an API root with a path of its own. Default: false. */
    overridePath?: boolean;
    /** `[host]` entries tried before `endpoint`, in order (the hosted registry's preloaded copies). Default: none. */
    before?: readonly HostEntry[];
    /**
     * More endpoints, tried in order after `endpoint` when it fails (containerd moves to the next
     * `[host]` on a connection error, a 404 or a 5xx): a cache's other replicas. Default: none.
     */
    fallbacks?: readonly string[];
}

const headerOf = (h: Readonly<Record<string, string>> | undefined) => (h && Object.keys(h).length > 0 ? { header: { ...h } } : {});

/** The `[host]` tables in the order containerd tries them, each trusting our CA. */
function hostTables(input: HostsTomlInput): Record<string, object> {
    const own: HostEntry = { url: input.endpoint, capabilities: input.capabilities, header: input.header, overridePath: input.overridePath };
    // A cache's other replicas exactly as the first: same CA, same node identity.
    const entries = [...(input.before ?? []), own, ...(input.fallbacks ?? []).map((url) => ({ ...own, url }))];
    return Object.fromEntries(
        entries.map((h) => [
            h.url,
            { capabilities: [...h.capabilities], ca: input.ca, ...(h.overridePath ? { override_path: true } : {}), ...headerOf(h.header) },
        ]),
    );
}

/**
 * containerd 1.6 ignores a hosts.toml without a `[host]` table, so there is always one. Our CA goes
 * at the top level only when `server` is ours: a public upstream keeps the system roots alone.
 * containerd 1.x tries `server` after a `[host]` answered 404 and reports that last error: a `server`
 * of ours gets the node identity's header too (and `override_path` when its URL has a path), so a
 * missing image reads "not found", not 401.
 */
export function renderHostsToml(input: HostsTomlInput): string {
    const ours = input.serverIsOurs ? { ca: input.ca, ...(input.overridePath ? { override_path: true } : {}), ...headerOf(input.header) } : {};
    const body = TOML.stringify({ server: input.server, ...ours, host: hostTables(input) });
    return `# Written by ${input.owner}. Removed, and any earlier file restored, when it is uninstalled.\n${body.trimEnd()}\n`;
}
