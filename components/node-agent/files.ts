/**
 * What the node agent (node-agent.sh, beside this file) is given to write: plain values in, the
 * Secret's data out. No Pulumi here, so tests call it with literal values.
 */

/** A file the agent keeps on the node, relative to containerd's certs.d directory. */
export interface NodeFile {
    /** `<host dir>/<file>`, e.g. `registry.registry.svc.cluster.local:5000/hosts.toml`. */
    path: string;
    content: string;
}

/**
 * What the agent does when containerd-check.sh says the node's containerd will not read certs.d:
 * `enforce` keeps the pod unready (so `pulumi up` fails naming the DaemonSet), `warn` logs the same
 * line and is ready, `off` mounts nothing and checks nothing (nodes without a containerd config file).
 */
export const CONTAINERD_CHECK_MODES = ["enforce", "warn", "off"] as const;
export type ContainerdCheckMode = (typeof CONTAINERD_CHECK_MODES)[number];

/** The Secret key listing, one `KEY PATH` line per file, which key goes where. */
export const MANIFEST_KEY = "manifest";

// The agent checks both again with the same rules (safe_path, OWNER): it trusts nothing it reads.
const SAFE_PATH = /^[A-Za-z0-9][A-Za-z0-9._:-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/;
// Namespace and Service names are DNS labels (no dot): one dot keeps every pair a directory of its own.
const SAFE_OWNER = /^[a-z0-9][a-z0-9-]*\.[a-z0-9][a-z0-9-]*$/;

/** Throws unless `owner` is `<namespace>.<service>`, lower-case DNS labels: it becomes part of a directory name on the node. */
export function validateOwner(owner: string): void {
    if (!SAFE_OWNER.test(owner))
        throw new Error(`owner ${JSON.stringify(owner)} must be a lower-case DNS-like name <namespace>.<service> ([a-z0-9][a-z0-9-]*.[a-z0-9][a-z0-9-]*)`);
}

/** The agent's state directory inside certs.d; a leading dot so containerd never takes it for a host. */
export function stateDirName(owner: string): string {
    validateOwner(owner);
    return `.cluster-registry.${owner}`;
}

/** Throws on a path that could leave certs.d or is not `<host dir>/<file>`, and on a path given twice. */
export function validateNodeFiles(files: readonly NodeFile[]): void {
    const seen = new Set<string>();
    for (const f of files) {
        if (!SAFE_PATH.test(f.path) || f.path.includes("..")) throw new Error(`unsafe node file path ${JSON.stringify(f.path)}`);
        if (seen.has(f.path)) throw new Error(`node file ${f.path} is given twice`);
        seen.add(f.path);
    }
}

/**
 * The node files as a Secret's stringData: each file under a key of its own (`f0`, `f1`, ... in path
 * order) and a `manifest` mapping key to path. Paths cannot be keys themselves: Secret keys allow only
 * `[-._a-zA-Z0-9]`, and host directories carry a `:port`. Contents go in verbatim.
 */
export function renderNodeFilesData(files: readonly NodeFile[]): Record<string, string> {
    validateNodeFiles(files);
    const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    const data: Record<string, string> = {};
    const manifest = sorted.map((f, i) => {
        data[`f${i}`] = f.content;
        return `f${i} ${f.path}\n`;
    });
    return { [MANIFEST_KEY]: manifest.join(""), ...data };
}
