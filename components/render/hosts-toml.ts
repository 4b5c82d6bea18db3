/** containerd's `certs.d/<host>/hosts.toml`. */
import * as TOML from "smol-toml";

export type HostCapability = "pull" | "resolve" | "push";

/** One `[host]` table; containerd tries them in file order and moves on after a 404 or an error. */
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
     * `Authorization`, so nodes pull with no pull secret. Never on `server`: a public upstream must not
     * see it. Default: none.
     */
    header?: Readonly<Record<string, string>>;
    /** `endpoint` (and `server`, when ours) is an API root with a path of its own. Default: false. */
    overridePath?: boolean;
    /** `[host]` entries tried before `endpoint`, in order (the hosted registry's preloaded copies). Default: none. */
    before?: readonly HostEntry[];
}

/** The `[host]` tables in the order containerd tries them, each trusting our CA. */
function hostTables(input: HostsTomlInput): Record<string, object> {
    const own: HostEntry = { url: input.endpoint, capabilities: input.capabilities, header: input.header, overridePath: input.overridePath };
    const entries = [...(input.before ?? []), own];
    return Object.fromEntries(
        entries.map((h) => [
            h.url,
            {
                capabilities: [...h.capabilities],
                ca: input.ca,
                ...(h.overridePath ? { override_path: true } : {}),
                ...(h.header && Object.keys(h.header).length > 0 ? { header: { ...h.header } } : {}),
            },
        ]),
    );
}

/**
 * A server of ours with a path (a preloaded upstream failing closed): the endpoint again, node identity
 * included, so containerd 1.x reports the endpoint's 404 as not found rather than the server's 401.
 */
function ourApiRoot(input: HostsTomlInput): object {
    return { override_path: true, ...(input.header && Object.keys(input.header).length > 0 ? { header: { ...input.header } } : {}) };
}

/**
 * containerd 1.6 ignores a hosts.toml without a `[host]` table, so there is always one. Our CA goes
 * at the top level only when `server` is ours: a public upstream keeps the system roots alone.
 */
export function renderHostsToml(input: HostsTomlInput): string {
    const body = TOML.stringify({
        server: input.server,
        ...(input.serverIsOurs ? { ca: input.ca, ...(input.overridePath ? ourApiRoot(input) : {}) } : {}),
        host: hostTables(input),
    });
    return `# Written by ${input.owner}. Removed, and any earlier file restored, when it is uninstalled.\n${body.trimEnd()}\n`;
}
