/** Node settings a DaemonSet cannot make, given as text for cluster creation or node user data. */
import * as TOML from "smol-toml";
import * as YAML from "yaml";

/** A registry as node runtimes configured at creation see it: its name and where to reach it. */
export interface MirrorEntry {
    /** Name in image references, e.g. `docker.io` or `registry.registry.svc.cluster.local:5000`. */
    host: string;
    /** `https://<ClusterIP>:<port>`. */
    endpoint: string;
    /** The node identity the endpoint asks for. Default: none (anonymous). */
    auth?: { username: string; password: string };
    /** More endpoints tried in order after `endpoint` (a cache's other replicas). Default: none. */
    fallbacks?: readonly string[];
    /**
     * The endpoint holds this registry's images under this repository prefix (preloaded upstreams:
     * `docker.io` for docker.io/library/nginx). Default: none, the same repository names.
     */
    preloadedPrefix?: string;
}

/** Every endpoint of a mirror, in the order a runtime tries them. */
const endpointsOf = (m: MirrorEntry): string[] => [m.endpoint, ...(m.fallbacks ?? [])];

/**
 * The kind cluster config to create clusters with: kind before v0.31 leaves containerd's
 * `config_path` empty, so hosts.toml files are ignored without the patch; the mount keeps cache
 * storage on the machine, so a re-created cluster does not download everything again.
 */
export function renderKindClusterConfig(certsDir: string, cacheMount?: { hostDir: string; nodeDir: string }): string {
    const patch = `${TOML.stringify({ plugins: { "io.containerd.grpc.v1.cri": { registry: { config_path: certsDir } } } }).trimEnd()}\n`;
    return YAML.stringify({
        kind: "Cluster",
        apiVersion: "kind.x-k8s.io/v1alpha4",
        ...(cacheMount ? { nodes: [{ role: "control-plane", extraMounts: [{ hostPath: cacheMount.hostDir, containerPath: cacheMount.nodeDir }] }] } : {}),
        containerdConfigPatches: [patch],
    });
}

/**
 * k3s regenerates its own certs.d entries from /etc/rancher/k3s/registries.yaml on every restart;
 * putting the mirrors there as well makes them survive restarts even before the DaemonSet runs.
 */
export function renderK3sRegistries(mirrors: readonly MirrorEntry[], caFile: string): string {
    // Said in the file itself, as it is copied onto nodes: it carries the node identity, so root-only.
    const header = [
        "# k3s's /etc/rancher/k3s/registries.yaml, root-only (it carries the node identity), on every node:",
        "#   install -m 600 -o root -g root registries.yaml /etc/rancher/k3s/registries.yaml",
        `#   install -m 644 -o root -g root ca.crt ${caFile}`,
    ];
    const doc = {
        // k3s's rewrite applies to every endpoint of a mirror: a prefixed endpoint stands alone.
        mirrors: Object.fromEntries(
            mirrors.map((m) => [m.host, { endpoint: endpointsOf(m), ...(m.preloadedPrefix ? { rewrite: { "^(.*)$": `${m.preloadedPrefix}/$1` } } : {}) }]),
        ),
        // Keyed by the endpoint's host, where containerd looks credentials and TLS up for a mirror.
        configs: Object.fromEntries(
            mirrors.flatMap((m) =>
                endpointsOf(m).map((e) => [
                    new URL(e).host,
                    { ...(m.auth ? { auth: { username: m.auth.username, password: m.auth.password } } : {}), tls: { ca_file: caFile } },
                ]),
            ),
        ),
    };
    return `${header.join("\n")}\n${YAML.stringify(doc)}`;
}

/** Bottlerocket nodes keep certs.d read-only: mirrors and the CA go into user data (TOML settings). */
export function renderBottlerocketSettings(all: readonly MirrorEntry[], caPem: string, bundleName: string): string {
    // Bottlerocket has neither override_path nor rewrites: preloaded upstreams cannot be mirrored there.
    const mirrors = all.filter((m) => !m.preloadedPrefix);
    const left = all.filter((m) => m.preloadedPrefix).map((m) => m.host);
    const note = left.length
        ? `# Not mirrored: ${left.join(", ")} (preloaded upstreams). Bottlerocket has no override_path or rewrite, so its nodes cannot pull them by unmodified names.\n`
        : "";
    return (
        note +
        TOML.stringify({
            settings: {
                "container-registry": {
                    mirrors: mirrors.map((m) => ({ registry: m.host, endpoint: endpointsOf(m) })),
                    // Bottlerocket's documented shape: one table per registry, containerd's credential fields.
                    // The endpoint's host, as k3s's configs: that is the host containerd authenticates to.
                    ...(mirrors.some((m) => m.auth)
                        ? {
                              credentials: mirrors
                                  .filter((m) => m.auth)
                                  .flatMap((m) =>
                                      endpointsOf(m).map((e) => ({ registry: new URL(e).host, username: m.auth!.username, password: m.auth!.password })),
                                  ),
                          }
                        : {}),
                },
                pki: { [bundleName]: { data: Buffer.from(caPem).toString("base64"), trusted: true } },
            },
        })
    );
}
