/**
 * Every setting, declared once: its type, default (per environment where it differs), description,
 * whether it is secret, and what its consumer accepts. The stack-config parser, the component's
 * defaults, the `config:` block of Pulumi.yaml and the README's table all come from `SETTINGS`.
 */
import * as pulumi from "@pulumi/pulumi";
import type { KeyAlgorithm } from "./pki";
import { ENVIRONMENTS, ENVIRONMENT_NAMES, EnvironmentName } from "./environments";
import { CONTAINERD_CHECK_MODES, ContainerdCheckMode } from "./node-agent/files";
import { DEFAULT_CACHE_TTL, UPSTREAM_PRESETS } from "./upstreams";
import * as v from "./validators";

/** Config namespace: the project name in Pulumi.yaml. */
export const PROJECT = "cluster-registry";

/**
 * The distribution registry image: distribution 3, the maintained line (the official image's 2.x
 * tags get no rebuilds since June 2025). Pinned to a patch release: a moving tag would change the
 * pod on a rerun with no config change. The tests build and run this very release (its tag is read by
 * test/integration/harness/distribution.ts); 2.x images are not supported.
 */
export const DEFAULT_REGISTRY_IMAGE = "docker.io/library/registry:3.1.1";

/** The types the Pulumi CLI accepts in a project's `config:` block. */
export type SettingType = "string" | "integer" | "boolean" | "array";
type ValueOf<T extends SettingType> = T extends "string" ? string : T extends "integer" ? number : T extends "boolean" ? boolean : string[];
/** What a check sees: a list setting is checked entry by entry. */
type Checked<T extends SettingType> = T extends "array" ? string : ValueOf<T>;

/** A default that differs per environment, read from the environment profiles. */
export interface PerEnvironment<T> {
    byEnvironment: Readonly<Record<EnvironmentName, T>>;
}

export interface Setting<T extends SettingType = SettingType> {
    type: T;
    /** One or two sentences; Pulumi.yaml and the README show it. */
    description: string;
    /** Absent: no default (the README says `defaultText` or "none"). */
    default?: ValueOf<T> | PerEnvironment<ValueOf<T> | undefined>;
    /** How the README states a default that is not a plain value. */
    defaultText?: string;
    /** Credentials: must be stored with `--secret`, never echoed, no default. */
    secret?: boolean;
    /** `undefined` when the consumer accepts the value, else what it would accept. */
    check?: (value: Checked<T>) => string | undefined;
}

function setting<T extends SettingType>(s: Setting<T>): Setting<T> {
    return s;
}

function perEnvironment<T>(pick: (e: (typeof ENVIRONMENTS)[EnvironmentName]) => T): PerEnvironment<T> {
    return { byEnvironment: Object.fromEntries(ENVIRONMENT_NAMES.map((e) => [e, pick(ENVIRONMENTS[e])])) as Record<EnvironmentName, T> };
}

const oneOf =
    <T extends string>(values: readonly T[], meaning = `one of ${values.join(", ")}`) =>
    (value: string) =>
        (values as readonly string[]).includes(value) ? undefined : meaning;
const intRange = (min: number, max: number) => (n: number) => (Number.isInteger(n) && n >= min && n <= max ? undefined : `an integer from ${min} to ${max}`);

/** The settings, in the order the README lists them. */
export const SETTINGS = {
    environment: setting({
        type: "string",
        description: "Cluster kind, which picks node paths, storage and defaults: kind, k3d or eks.",
        default: "kind",
        check: oneOf(ENVIRONMENT_NAMES),
    }),
    namespace: setting({
        type: "string",
        description:
            "Namespace for the registries and their Secrets; it enforces the restricted Pod Security level, except where caches keep their data in a node directory (cacheHostPath, kind's default), which only the privileged level admits.",
        default: "registry",
        check: v.dnsLabel,
    }),
    nodeAgentNamespace: setting({
        type: "string",
        description:
            "Namespace for the node agent alone (its DaemonSet, script, files and RBAC): it writes node directories, so it needs the privileged Pod Security level, and nothing else runs there.",
        defaultText: "<namespace>-node-agent",
        check: v.dnsLabel,
    }),
    createNamespace: setting({
        type: "boolean",
        description:
            "Create both namespaces, labelled for their Pod Security levels. Set false to use existing ones; the node agent's must admit privileged pods (hostPath).",
        default: true,
    }),
    serviceName: setting({
        type: "string",
        description: "Name of the registry Service; images are referenced as <serviceName>.<namespace>.svc.<clusterDomain>:<port>.",
        default: "registry",
        check: v.serviceName,
    }),
    port: setting({
        type: "integer",
        description: "Port of the registry Service (and of each cache's) where nodes and pods pull; it is read-only.",
        default: 5000,
        check: intRange(1, 65535),
    }),
    pushPort: setting({
        type: "integer",
        description: "Port of the registry Service where users push (and pull), served by a read-write registry over the same volume.",
        default: 5002,
        check: intRange(1, 65535),
    }),
    nodePort: setting({
        type: "integer",
        description: "Also expose the registry's push port on this NodePort (30000-32767); 0 for none.",
        default: 0,
        check: (n) => (n === 0 || (Number.isInteger(n) && n >= 30000 && n <= 32767) ? undefined : "0 (no NodePort) or a port from 30000 to 32767"),
    }),
    clusterDomain: setting({ type: "string", description: "The cluster's DNS domain.", default: "cluster.local", check: v.dnsName }),
    extraNames: setting({
        type: "array",
        description: "More DNS names or IP addresses the registry is reached by; each becomes a SAN in its certificate.",
        default: [],
        check: (n) => (v.ipAddress(n) === undefined ? undefined : v.dnsName(n) && `DNS names or IP addresses (${v.dnsName(n)})`),
    }),
    users: setting({
        type: "array",
        description:
            "Users who push (and pull); the first one's credentials are the pushDockerConfigJson output. Pods and nodes pull with identities of their own.",
        default: ["admin"],
        check: v.htpasswdUser,
    }),
    userPasswords: setting({
        type: "array",
        description:
            "Passwords you choose, as NAME:PASSWORD entries for users listed in users (12 characters to 72 bytes); set with --secret. Users without one get a generated password.",
        defaultText: "generated",
        secret: true,
    }),
    bcryptCost: setting({
        type: "integer",
        description: "bcrypt cost for every user's htpasswd line (4-14); see Performance in the README.",
        defaultText: "5 for generated passwords, 10 for given ones",
        check: intRange(4, 14),
    }),
    image: setting({
        type: "string",
        description:
            "Registry image, pinned by tag or digest; the node-config DaemonSet runs it too (it has a shell), so an air-gapped cluster needs one image.",
        default: DEFAULT_REGISTRY_IMAGE,
        check: v.imageReference,
    }),
    storageClass: setting({
        type: "string",
        description: "StorageClass of the registry volume.",
        default: perEnvironment((e) => e.storageClass),
        check: v.dnsSubdomain,
    }),
    storageSize: setting({
        type: "string",
        description: "Size of the registry volume.",
        default: perEnvironment((e) => e.storageSize),
        check: (q) => v.storageQuantity(q),
    }),
    certsDir: setting({
        type: "string",
        description: "containerd's certs.d directory (its config_path) on the nodes.",
        default: perEnvironment((e) => e.certsDir),
        check: v.nodePath,
    }),
    containerdCheck: setting({
        type: "string",
        description:
            "When a node's containerd config (the environment's config.toml) will not make containerd read certsDir: enforce (the node-config pod stays unready, so pulumi up fails naming the DaemonSet; its log says what to change), warn (log the same line, stay ready) or off (no check).",
        default: "enforce",
        check: oneOf(CONTAINERD_CHECK_MODES),
    }),
    pullSecretName: setting({
        type: "string",
        description: "Name of the kubernetes.io/dockerconfigjson pull secret.",
        default: "registry-pull",
        check: v.dnsSubdomain,
    }),
    pullSecretNamespaces: setting({
        type: "array",
        description:
            "Existing namespaces that get the pull secret, a pull-only identity for the hosted registry (for nodes that cannot take hosts.toml headers, e.g. Bottlerocket or CRI-O, and for tools). With nodePulls, pods need none.",
        default: [],
        check: v.dnsLabel,
    }),
    patchDefaultServiceAccounts: setting({
        type: "boolean",
        description:
            "Add the pull secret to the default ServiceAccount of each namespace in pullSecretNamespaces, so pods need no imagePullSecrets line. Server-side apply treats that list as a whole: if something else set pull secrets there, pulumi up stops with a conflict.",
        default: false,
    }),
    keyAlgorithm: setting({
        type: "string",
        description: "Key algorithm for the CA and server certificates: ECDSA (P-256) or RSA (2048).",
        default: "ECDSA",
        check: oneOf(["ECDSA", "RSA"] as const, "ECDSA (P-256) or RSA (2048 bits)"),
    }),
    caValidityHours: setting({ type: "integer", description: "Validity of the CA certificate in hours.", default: 87600, check: intRange(24, 876000) }),
    certValidityHours: setting({
        type: "integer",
        description: "Validity of each server certificate in hours; renewed on a normal pulumi up once inside certEarlyRenewalHours.",
        default: 8760,
        check: intRange(24, 876000),
    }),
    certEarlyRenewalHours: setting({
        type: "integer",
        description: "Hours before a server certificate expires at which pulumi up renews it.",
        default: 720,
        check: intRange(0, 876000),
    }),
    nodePulls: setting({
        type: "boolean",
        description:
            "Nodes pull with a node identity containerd sends from hosts.toml (root-only files), so pods need no pull secret and caches admit nodes only; every pod on a node can then pull everything nodes can (see the README). false: pods need the pull secret for the hosted registry, and caches are anonymous to every pod.",
        default: true,
    }),
    caches: setting({
        type: "array",
        description: `Pull-through caches nodes use as mirrors: presets ${Object.keys(UPSTREAM_PRESETS).join(", ")}, or HOST=URL (e.g. registry.example.com=https://registry.example.com).`,
        default: [],
    }),
    cacheCredentials: setting({
        type: "array",
        description:
            "Upstream credentials as HOST=USER:PASSWORD for listed caches (e.g. Docker Hub, which limits anonymous pulls); set with --secret. Every pod that may pull through the cache (with nodePulls, every pod on every node) can pull what that account can, private repositories included: use a token limited to public repositories.",
        secret: true,
    }),
    mirrorFallback: setting({
        type: "string",
        description:
            "When a cache is down: upstream (nodes pull from the upstream themselves) or none (the pull fails: no node pull ever leaves the cluster). Caches themselves need to reach their upstreams.",
        default: "upstream",
        check: oneOf(["upstream", "none"] as const, "upstream (pull from the upstream when its cache is down) or none (fail the pull: air-gapped clusters)"),
    }),
    cacheTtl: setting({
        type: "string",
        description:
            "How long a cache keeps what it fetched before deleting it and asking the upstream again (a Go duration such as 168h or 72h30m); 0 keeps everything forever, so the volume only grows.",
        default: DEFAULT_CACHE_TTL,
        check: (d) => v.goDuration(d, { min: "0s" }) && "a Go duration such as 168h or 72h30m, or 0 to never expire",
    }),
    cacheMaxFillPercent: setting({
        type: "integer",
        description:
            "When a cache's volume is at least this full, in percent, the cache starts over: it deletes everything it holds (checked every second, logged) and fetches again what is pulled next. A full cache never leaves its Service; 100 turns this off (a full volume then fails fetches).",
        default: 90,
        check: intRange(1, 100),
    }),
    cacheStorageSize: setting({
        type: "string",
        description: "Size of each cache's volume.",
        default: perEnvironment((e) => e.cacheStorageSize),
        check: (q) => v.storageQuantity(q),
    }),
    cacheHostPath: setting({
        type: "string",
        description:
            'Node directory that holds cache data instead of volumes; with a kind extraMount (see the kindClusterConfig output) caches outlive the cluster. "" for volumes.',
        default: perEnvironment((e) => e.cacheHostPath ?? ""),
        check: (p) => (p === "" ? undefined : v.nodePath(p) && `${v.nodePath(p)}, or "" for volumes`),
    }),
    metricsNamespaces: setting({
        type: "array",
        description:
            "Namespaces whose pods may scrape the registries' Prometheus metrics (where Prometheus runs). Each registry then gets a <svc>-metrics Service and a NetworkPolicy admitting its debug port (metrics, but also pprof and expvar) from these namespaces only; it needs a CNI that enforces NetworkPolicy. None: every debug listener listens on its pod's loopback only.",
        default: [],
        check: v.dnsLabel,
    }),
    serviceMonitors: setting({
        type: "boolean",
        description:
            "Create a Prometheus Operator ServiceMonitor (monitoring.coreos.com/v1) for each registry's metrics Service; needs metricsNamespaces and the operator's CRDs in the cluster.",
        default: false,
    }),
    keepRegistryVolume: setting({
        type: "boolean",
        description:
            "Keep the hosted registry's volume (its PersistentVolumeClaim, and so the images) when the stack is destroyed; see Destroy in the README for taking it over from a new stack.",
        default: true,
    }),
    registryVolumeClaim: setting({
        type: "string",
        description:
            "An existing PersistentVolumeClaim in the registries' namespace for the hosted registry to run on (a volume kept by an earlier stack's destroy); the stack then neither creates nor deletes a claim. \"\" for a claim of its own.",
        default: "",
        check: (c) => (c === "" ? undefined : v.dnsSubdomain(c) && `${v.dnsSubdomain(c)}, or "" for a claim of its own`),
    }),
    allowVolumeReplacement: setting({
        type: "boolean",
        description:
            "Let a change of storageClass (or another field Kubernetes cannot change on a claim) replace a registry's or cache's volume with a new, empty one. Without it, pulumi up stops and says how to migrate.",
        default: false,
    }),
    localRegistryHosting: setting({
        type: "boolean",
        description: "Publish the KEP-1755 local-registry-hosting ConfigMap in kube-public, which Tilt, Skaffold and others read.",
        default: true,
    }),
} as const;

export type SettingKey = keyof typeof SETTINGS;
export const SETTING_KEYS = Object.keys(SETTINGS) as SettingKey[];

/** The plain value a setting defaults to in an environment, or `undefined` for none. */
export function defaultFor(key: SettingKey, environment: EnvironmentName): ValueOf<SettingType> | undefined {
    const d = (SETTINGS[key] as Setting).default;
    if (d !== undefined && typeof d === "object" && "byEnvironment" in d) return d.byEnvironment[environment];
    return d as ValueOf<SettingType> | undefined;
}

/** A registry user as the component takes it. */
export interface RegistryUserArgs {
    /** User name, as htpasswd and the pull secret carry it. */
    name: string;
    /** The user's password (12 characters to 72 bytes); generated when absent. Default: generated. */
    password?: pulumi.Input<string>;
}

/** A pull-through cache of one upstream registry, as the component takes it. */
export interface CacheArgs {
    /** The name in image references, e.g. `docker.io`: the certs.d directory containerd looks up. */
    host: string;
    /** The upstream's registry API. Default: the preset for `host` (see `UPSTREAM_PRESETS`). */
    remoteUrl?: string;
    /** Upstream credentials, for upstreams that limit anonymous pulls. Default: anonymous. */
    credentials?: { username: pulumi.Input<string>; password: pulumi.Input<string> };
}

/** A cache with everything resolved. */
export interface CacheSetting extends CacheArgs {
    remoteUrl: string;
    /** The cache's Service name, derived from its host. */
    serviceName: string;
}

export type { KeyAlgorithm };

/** What a node does when a cache is down: go to the upstream itself, or fail the pull. */
export type MirrorFallback = "upstream" | "none";

/** Everything the component builds from, defaults applied and validated. */
export interface Settings {
    environment: EnvironmentName;
    namespace: string;
    nodeAgentNamespace: string;
    createNamespace: boolean;
    serviceName: string;
    port: number;
    pushPort: number;
    /** `undefined`: no NodePort. */
    nodePort: number | undefined;
    clusterDomain: string;
    extraDnsNames: string[];
    extraIpAddresses: string[];
    users: RegistryUserArgs[];
    /** `undefined`: per user, by whether the password was given. */
    bcryptCost: number | undefined;
    image: string;
    storageClass: string;
    storageSize: string;
    certsDir: string;
    containerdCheck: ContainerdCheckMode;
    pullSecretName: string;
    pullSecretNamespaces: string[];
    patchDefaultServiceAccounts: boolean;
    nodePulls: boolean;
    keyAlgorithm: KeyAlgorithm;
    caValidityHours: number;
    certValidityHours: number;
    certEarlyRenewalHours: number;
    caches: CacheSetting[];
    mirrorFallback: MirrorFallback;
    cacheTtl: string;
    cacheMaxFillPercent: number;
    cacheStorageSize: string;
    /** `undefined`: caches keep their data in volumes. */
    cacheHostPath: string | undefined;
    metricsNamespaces: string[];
    serviceMonitors: boolean;
    keepRegistryVolume: boolean;
    /** `undefined`: the hosted registry gets a claim of its own. */
    registryVolumeClaim: string | undefined;
    allowVolumeReplacement: boolean;
    localRegistryHosting: boolean;
}

/**
 * What `ClusterRegistry` takes: every setting of `SETTINGS` (users and caches with their secrets
 * folded in). Each field's last sentence states its default, as the README's table does.
 */
export interface ClusterRegistryArgs {
    /** kind, k3d or eks: picks node paths, storage class and sizes. Default: kind. */
    environment?: EnvironmentName;
    /** Namespace for the registries and their Secrets (restricted Pod Security). Default: registry. */
    namespace?: string;
    /** Namespace for the node agent alone (privileged Pod Security). Default: <namespace>-node-agent. */
    nodeAgentNamespace?: string;
    /** Create both namespaces, labelled for their Pod Security levels. Default: true. */
    createNamespace?: boolean;
    /** The hosted registry's Service name, part of its DNS name. Default: registry. */
    serviceName?: string;
    /** Service port of the registry (read-only: pulls) and of each cache. Default: 5000. */
    port?: number;
    /** Service port where users push, to a read-write registry over the same volume. Default: 5002. */
    pushPort?: number;
    /** Also expose the registry's push port on this NodePort; 0 for none. Default: 0. */
    nodePort?: number;
    /** The cluster's DNS domain. Default: cluster.local. */
    clusterDomain?: string;
    /** More DNS names or IP addresses for the registry's certificate. Default: none. */
    extraNames?: string[];
    /** Users who push, by name or with a password; the first one's is `pushDockerConfigJson`. Default: [admin]. */
    users?: (string | RegistryUserArgs)[];
    /** bcrypt cost of every htpasswd line (4-14). Default: 5 for generated passwords, 10 for given ones. */
    bcryptCost?: number;
    /** Registry image, pinned; the DaemonSet runs it too. Default: docker.io/library/registry:3.1.1. */
    image?: string;
    /** StorageClass of the registry's volume. Default: kind standard, k3d local-path, eks gp2. */
    storageClass?: string;
    /** Size of the registry's volume. Default: kind 10Gi, k3d 10Gi, eks 50Gi. */
    storageSize?: string;
    /** containerd's certs.d directory on the nodes. Default: kind /etc/containerd/certs.d, k3d /var/lib/rancher/k3s/agent/etc/containerd/certs.d, eks /etc/containerd/certs.d. */
    certsDir?: string;
    /** What a node whose containerd will not read certsDir does: enforce (pod unready, pulumi up fails), warn (logged) or off. Default: enforce. */
    containerdCheck?: ContainerdCheckMode;
    /** Name of the pull secret. Default: registry-pull. */
    pullSecretName?: string;
    /** Existing namespaces that get the pull secret (a pull-only identity). Default: none. */
    pullSecretNamespaces?: string[];
    /** Add the pull secret to the default ServiceAccount of each of pullSecretNamespaces. Default: false. */
    patchDefaultServiceAccounts?: boolean;
    /** Key algorithm of the CA and server certificates. Default: ECDSA. */
    keyAlgorithm?: KeyAlgorithm;
    /** CA validity in hours. Default: 87600. */
    caValidityHours?: number;
    /** Server certificate validity in hours. Default: 8760. */
    certValidityHours?: number;
    /** Renew server certificates this many hours before they expire. Default: 720. */
    certEarlyRenewalHours?: number;
    /** Nodes pull with a node identity from hosts.toml; pods need no pull secret, caches admit nodes only. Default: true. */
    nodePulls?: boolean;
    /** Pull-through caches: a preset host, `HOST=URL`, or a `CacheArgs`. Default: none. */
    caches?: (string | CacheArgs)[];
    /** When a cache is down: `upstream` or `none` (the pull fails). Default: upstream. */
    mirrorFallback?: MirrorFallback;
    /** How long a cache keeps what it fetched (a Go duration; 0 never expires, so its volume only grows). Default: 168h. */
    cacheTtl?: string;
    /** A cache is not ready while its volume is at least this full, in percent (1-100; 100 for no limit). Default: 90. */
    cacheMaxFillPercent?: number;
    /** Size of each cache's volume. Default: kind 10Gi, k3d 10Gi, eks 50Gi. */
    cacheStorageSize?: string;
    /** Node directory for cache data instead of volumes; "" for volumes. Default: kind /var/lib/cluster-registry/caches, k3d "", eks "". */
    cacheHostPath?: string;
    /** Namespaces whose pods may scrape the registries' debug listeners (metrics Services, a NetworkPolicy); none: loopback only. Default: none. */
    metricsNamespaces?: string[];
    /** Create a Prometheus Operator ServiceMonitor for each registry's metrics Service (needs metricsNamespaces). Default: false. */
    serviceMonitors?: boolean;
    /** Keep the hosted registry's volume when the stack is destroyed. Default: true. */
    keepRegistryVolume?: boolean;
    /** An existing claim (in the registries' namespace) for the hosted registry; "" for its own. Default: "". */
    registryVolumeClaim?: string;
    /** Let a change of storageClass replace a volume with an empty one instead of stopping pulumi up. Default: false. */
    allowVolumeReplacement?: boolean;
    /** Publish the KEP-1755 local-registry-hosting ConfigMap. Default: true. */
    localRegistryHosting?: boolean;
}

/** How the README and the args' documentation state a setting's default. */
export function defaultText(key: SettingKey): string {
    const s = SETTINGS[key] as Setting;
    if (s.defaultText !== undefined) return s.defaultText;
    const show = (x: unknown) => (Array.isArray(x) ? (x.length === 0 ? "none" : `[${x.join(", ")}]`) : x === "" ? '""' : String(x));
    if (s.default === undefined) return "none";
    if (typeof s.default === "object" && "byEnvironment" in s.default) {
        return ENVIRONMENT_NAMES.map((e) => `${e} ${show(defaultFor(key, e))}`).join(", ");
    }
    return show(s.default);
}
