/**
 * Every setting, declared once. `ClusterRegistryArgs` gives each its type (and its JSDoc); `SETTINGS`
 * gives each its Pulumi type, default (per environment where it differs), description, secrecy and
 * what its consumer accepts, and the compiler checks it against `ClusterRegistryArgs` field by field;
 * the resolved `Settings` is derived from `ClusterRegistryArgs`. The stack-config parser, the
 * component's defaults, the `config:` block of Pulumi.yaml and the README's table all come from here.
 */
import * as pulumi from "@pulumi/pulumi";
import { GENERATED_PASSWORD_BCRYPT_COST, GIVEN_PASSWORD_BCRYPT_COST, type RegistryUserArgs } from "./credentials";
import type { KeyAlgorithm } from "./pki";
import { ENVIRONMENTS, ENVIRONMENT_NAMES, EnvironmentName } from "./environments";
import { CONTAINERD_CHECK_MODES, ContainerdCheckMode } from "./node-agent/files";
import { checkNodeSelectorEntry, checkResourceEntry, checkTolerationEntry, DEFAULT_REGISTRY_RESOURCES } from "./render/placement";
import { DEFAULT_CACHE_TTL, preloadPrefix, UPSTREAM_PRESETS } from "./upstreams";
import { DEFAULT_COALESCER_IMAGE } from "./coalescer";
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
/** The config type a TypeScript field type is stored as (brackets: a union of literals is one type). */
type TypeName<V> = [V] extends [readonly unknown[]]
    ? "array"
    : [V] extends [string]
      ? "string"
      : [V] extends [number]
        ? "integer"
        : [V] extends [boolean]
          ? "boolean"
          : never;
/**
 * What a check sees: a list setting entry by entry, and a choice as any string (the check is what
 * tells whether it is one of the choices).
 */
type Checked<V> = V extends readonly unknown[] ? string : V extends string ? string : V;

/** A default that differs per environment, read from the environment profiles. */
export interface PerEnvironment<T> {
    byEnvironment: Readonly<Record<EnvironmentName, T>>;
}

/** One setting of type `V`, the type its field has in `ClusterRegistryArgs`. */
export interface Setting<V = unknown> {
    /** How Pulumi stores it; `SETTINGS` is checked to give each field the type its TypeScript type needs. */
    type: SettingType;
    /** One or two sentences; Pulumi.yaml and the README show it. */
    description: string;
    /** Absent: no default (the README says `defaultText` or "none"). */
    default?: V | PerEnvironment<V | undefined>;
    /** How the README states a default that is not a plain value. */
    defaultText?: string;
    /** Credentials: must be stored with `--secret`, never echoed, no default. */
    secret?: boolean;
    /** Whether the consumer accepts the value (a method, so that any setting is a `Setting`). */
    check?(value: Checked<V>): v.Verdict;
}

/** Settings only a stack's config has: `parseConfig` folds them into `users` and `caches`. */
export interface StackOnlySettings {
    /** NAME:PASSWORD entries for `users`. */
    userPasswords?: string[];
    /** HOST=USER:PASSWORD entries for `caches`. */
    cacheCredentials?: string[];
}

/** Every setting with the type of its value: the fields of `ClusterRegistryArgs`, plus the stack-only ones. */
export type SettingValues = Required<ClusterRegistryArgs & StackOnlySettings>;

function perEnvironment<T>(pick: (e: (typeof ENVIRONMENTS)[EnvironmentName]) => T): PerEnvironment<T> {
    return { byEnvironment: { kind: pick(ENVIRONMENTS.kind), k3d: pick(ENVIRONMENTS.k3d), eks: pick(ENVIRONMENTS.eks) } };
}

const oneOf =
    <T extends string>(values: readonly T[], meaning = `one of ${values.join(", ")}`) =>
    (value: string) =>
        (values as readonly string[]).includes(value) ? v.ACCEPTED : v.expecting(meaning);
const intRange = (min: number, max: number) => (n: number) =>
    Number.isInteger(n) && n >= min && n <= max ? v.ACCEPTED : v.expecting(`an integer from ${min} to ${max}`);

/** `off`, `manual` or a time of day `HH:MM` (UTC), as the push supervisor compares it with `date -u +%H:%M`. */
const gcScheduleCheck = (value: string) =>
    value === "off" || value === "manual" || /^([01][0-9]|2[0-3]):[0-5][0-9]$/.test(value)
        ? v.ACCEPTED
        : v.expecting("off, manual, or a time of day HH:MM in UTC (00:00 to 23:59) at which to collect daily");

/** The settings, in the order the README lists them. */
export const SETTINGS = {
    environment: {
        type: "string",
        description: "Cluster kind, which picks node paths, storage and defaults: kind, k3d or eks.",
        default: "kind",
        check: oneOf(ENVIRONMENT_NAMES),
    },
    namespace: {
        type: "string",
        description:
            "Namespace for the registries and their Secrets; it enforces the restricted Pod Security level, except where caches keep their data in a node directory (cacheHostPath, kind's default), which only the privileged level admits.",
        default: "registry",
        check: v.checkDnsLabel,
    },
    nodeAgentNamespace: {
        type: "string",
        description:
            "Namespace for the node agent alone (its DaemonSet, script, files and RBAC): it writes node directories, so it needs the privileged Pod Security level, and nothing else runs there.",
        defaultText: "<namespace>-node-agent",
        check: v.checkDnsLabel,
    },
    createNamespace: {
        type: "boolean",
        description:
            "Create both namespaces, labelled for their Pod Security levels. Set false to use existing ones; the node agent's must admit privileged pods (hostPath).",
        default: true,
    },
    serviceName: {
        type: "string",
        description: "Name of the registry Service; images are referenced as <serviceName>.<namespace>.svc.<clusterDomain>:<port>.",
        default: "registry",
        check: v.checkServiceName,
    },
    port: {
        type: "integer",
        description: "Port of the registry Service (and of each cache's) where nodes and pods pull; it is read-only.",
        default: 5000,
        check: intRange(1, 65535),
    },
    pushPort: {
        type: "integer",
        description: "Port of the registry Service where users push (and pull), served by a read-write registry over the same volume.",
        default: 5002,
        check: intRange(1, 65535),
    },
    nodePort: {
        type: "integer",
        description: "Also expose the registry's push port on this NodePort (30000-32767); 0 for none.",
        default: 0,
        check: (n) => (n === 0 ? v.ACCEPTED : v.reworded(intRange(30000, 32767)(n), () => "0 (no NodePort) or a port from 30000 to 32767")),
    },
    clusterDomain: { type: "string", description: "The cluster's DNS domain.", default: "cluster.local", check: v.checkDnsName },
    extraNames: {
        type: "array",
        description: "More DNS names or IP addresses the registry is reached by; each becomes a SAN in its certificate.",
        default: [],
        check: (n) => (v.isIpAddress(n) ? v.ACCEPTED : v.reworded(v.checkDnsName(n), (dnsName) => `DNS names or IP addresses (${dnsName})`)),
    },
    users: {
        type: "array",
        description:
            "Users who push (and pull); the first one's credentials are the pushDockerConfigJson output. Pods and nodes pull with identities of their own.",
        default: ["admin"],
        check: v.checkHtpasswdUser,
    },
    userPasswords: {
        type: "array",
        description:
            "Passwords you choose, as NAME:PASSWORD entries for users listed in users (12 characters to 72 bytes); set with --secret. Users without one get a generated password.",
        defaultText: "generated",
        secret: true,
    },
    bcryptCost: {
        type: "integer",
        description: "bcrypt cost for every user's htpasswd line (4-14); see Performance in the README.",
        defaultText: `${GENERATED_PASSWORD_BCRYPT_COST} for generated passwords, ${GIVEN_PASSWORD_BCRYPT_COST} for given ones`,
        check: intRange(4, 14),
    },
    image: {
        type: "string",
        description:
            "Registry image, pinned: a full-version tag (x.y.z, a suffix such as -alpine allowed) or a digest, since 3 or latest moves; the node-config DaemonSet runs it too (it has a shell), so an air-gapped cluster needs one image.",
        default: DEFAULT_REGISTRY_IMAGE,
        check: v.checkImageReference,
    },
    storageClass: {
        type: "string",
        description: "StorageClass of the registry volume.",
        default: perEnvironment((e) => e.storageClass),
        check: v.checkDnsSubdomain,
    },
    storageSize: {
        type: "string",
        description: "Size of the registry volume.",
        default: perEnvironment((e) => e.storageSize),
        check: v.checkStorageQuantity,
    },
    gcSchedule: {
        type: "string",
        description:
            "When the hosted registry collects garbage with distribution's garbage-collect: HH:MM (UTC, daily), manual (only when sent SIGUSR1, see Storage in the README) or off. Pulls go on; pushes are refused (405) while it runs. On object storage the push Deployment then rolls with Recreate (pushes refused during its rollouts).",
        default: "off",
        check: gcScheduleCheck,
    },
    gcDeleteUntagged: {
        type: "boolean",
        description:
            "Garbage collection also deletes manifests no tag points at (old versions of re-pushed tags): most of what it can free, but a pod pulling such a manifest by digest then fails.",
        default: false,
    },
    pushDeletes: {
        type: "boolean",
        description: "Users may delete tags and manifests on the push port (the pull port never deletes); the space comes back at the next garbage collection.",
        default: false,
    },
    registryFillWarnPercent: {
        type: "integer",
        description:
            "The hosted registry's push container logs a warning while its volume is at least this full, in percent (pulls and readiness are unaffected); with serviceMonitors, a PrometheusRule also alerts (severity warning) at this level, and critical at 95. 100 for no warning.",
        default: 80,
        check: intRange(1, 100),
    },
    certsDir: {
        type: "string",
        description:
            "containerd's certs.d directory (its config_path) on the nodes: a directory of its own, or /etc/containerd/certs.d or /etc/docker/certs.d; never /, a shared parent such as /var/lib, or inside /etc, /usr, /bin, /sbin, /lib, /lib32, /lib64, /libx32, /boot, /proc, /sys, /dev, /run, /var/run, /var/lib/kubelet or /var/lib/containerd.",
        default: perEnvironment((e) => e.certsDir),
        check: (p) => v.checkNodeDirectory(p, { certsDir: true }),
    },
    containerdCheck: {
        type: "string",
        description:
            "When a node's containerd config (the environment's config.toml) will not make containerd read certsDir: enforce (the node-config pod stays unready, so pulumi up fails naming the DaemonSet; its log says what to change), warn (log the same line, stay ready) or off (no check).",
        default: "enforce",
        check: oneOf(CONTAINERD_CHECK_MODES),
    },
    pullSecretName: {
        type: "string",
        description: "Name of the kubernetes.io/dockerconfigjson pull secret.",
        default: "registry-pull",
        check: v.checkDnsSubdomain,
    },
    pullSecretNamespaces: {
        type: "array",
        description:
            "Existing namespaces that get the pull secret, a pull-only identity for the hosted registry (for nodes that cannot take hosts.toml headers, e.g. Bottlerocket or CRI-O, and for tools). With nodePulls, pods need none.",
        default: [],
        check: v.checkDnsLabel,
    },
    patchDefaultServiceAccounts: {
        type: "boolean",
        description:
            "Add the pull secret to the default ServiceAccount of each namespace in pullSecretNamespaces, so pods need no imagePullSecrets line. Server-side apply treats that list as a whole: if something else set pull secrets there, pulumi up stops with a conflict.",
        default: false,
    },
    keyAlgorithm: {
        type: "string",
        description: "Key algorithm for the CA and server certificates: ECDSA (P-256) or RSA (2048).",
        default: "ECDSA",
        check: oneOf(["ECDSA", "RSA"] as const, "ECDSA (P-256) or RSA (2048 bits)"),
    },
    caValidityHours: { type: "integer", description: "Validity of the CA certificate in hours.", default: 87600, check: intRange(24, 876000) },
    certValidityHours: {
        type: "integer",
        description: "Validity of each server certificate in hours; renewed on a normal pulumi up once inside certEarlyRenewalHours.",
        default: 8760,
        check: intRange(24, 876000),
    },
    certEarlyRenewalHours: {
        type: "integer",
        description: "Hours before a server certificate expires at which pulumi up renews it.",
        default: 720,
        check: intRange(0, 876000),
    },
    nodePulls: {
        type: "boolean",
        description:
            "Nodes pull with a node identity containerd sends from hosts.toml (root-only files), so pods need no pull secret and caches admit nodes only; every pod on a node can then pull everything nodes can (see the README). false: pods need the pull secret for the hosted registry, and caches are anonymous to every pod.",
        default: true,
    },
    caches: {
        type: "array",
        description: `Pull-through caches nodes use as mirrors: presets ${Object.keys(UPSTREAM_PRESETS).join(", ")}, or HOST=URL (e.g. registry.example.com=https://registry.example.com).`,
        default: [],
    },
    cacheCredentials: {
        type: "array",
        description:
            "Upstream credentials as HOST=USER:PASSWORD for listed caches (e.g. Docker Hub, which limits anonymous pulls); set with --secret. Every pod that may pull through the cache (with nodePulls, every pod on every node) can pull what that account can, private repositories included: use a token limited to public repositories.",
        secret: true,
    },
    mirrorFallback: {
        type: "string",
        description:
            "When a cache is down: upstream (nodes pull from the upstream themselves) or none (the pull fails: no node pull ever leaves the cluster). Caches themselves need to reach their upstreams.",
        default: "upstream",
        check: oneOf(["upstream", "none"] as const, "upstream (pull from the upstream when its cache is down) or none (fail the pull: air-gapped clusters)"),
    },
    preloadedUpstreams: {
        type: "array",
        description:
            "Upstream registries (e.g. docker.io, quay.io) whose images are preloaded into the hosted registry under <upstream-host>/<repository> (scripts/preload): nodes pull docker.io/library/nginx from there by its unmodified name, then from the upstream's cache if any, then per mirrorFallback. A port becomes _<port> in the path.",
        default: [],
        check: (h) => {
            const host = v.checkCacheHost(h);
            if (!host.ok) return host;
            return v.acceptedIf(
                preloadPrefix(h) !== undefined,
                "a registry host that maps to a repository path component (lowercase letters, digits, '.', '-')",
            );
        },
    },
    cacheTtl: {
        type: "string",
        description:
            "How long a cache keeps what it fetched before deleting it and asking the upstream again (a Go duration such as 168h or 72h30m); 0 keeps everything forever, so the volume only grows.",
        default: DEFAULT_CACHE_TTL,
        check: v.checkCacheTtl,
    },
    cacheMaxFillPercent: {
        type: "integer",
        description:
            "When what a cache holds (its data and its coalescer's copies, measured with du, not the disk under it) reaches this percent of cacheStorageSize, it deletes its oldest blobs, sparing those read since its last pass a second earlier unless it holds a quarter of the way from this limit to full (checked every second, logged, counted), until it is 10 points under, and fetches them again when pulled; transfers in flight are never cut. A full cache never leaves its Service; 100 turns this off (a full volume then fails fetches).",
        default: 90,
        check: intRange(1, 100),
    },
    cacheStorageSize: {
        type: "string",
        description: "Size of each cache's volume.",
        default: perEnvironment((e) => e.cacheStorageSize),
        check: v.checkStorageQuantity,
    },
    cacheHttpsProxy: {
        type: "string",
        description:
            'HTTP(S) proxy the caches reach https upstreams through (their HTTPS_PROXY), e.g. http://proxy.example.com:3128; the hosted registry and the node agent never use it. "" for none.',
        default: "",
        check: (u) =>
            u === "" || v.checkUpstreamUrl(u).ok
                ? v.ACCEPTED
                : v.expecting('an http:// or https:// URL without credentials (see cacheProxyCredentials), or "" for none'),
    },
    cacheHttpProxy: {
        type: "string",
        description: 'Proxy the caches reach http:// upstreams through (their HTTP_PROXY). "" for none.',
        default: "",
        check: (u) =>
            u === "" || v.checkUpstreamUrl(u).ok
                ? v.ACCEPTED
                : v.expecting('an http:// or https:// URL without credentials (see cacheProxyCredentials), or "" for none'),
    },
    cacheNoProxy: {
        type: "array",
        description:
            "More hosts, domains (.example.com) or CIDRs the caches reach without the proxy (their NO_PROXY). The cluster's own are always there: .svc, the cluster domain, the environment's Service CIDR, loopback and the cloud's metadata and Pod Identity addresses.",
        default: [],
        check: (h) => v.acceptedIf(/^[A-Za-z0-9.:/*_-]+$/.test(h), "a host, .domain, IP address or CIDR"),
    },
    cacheProxyCredentials: {
        type: "string",
        description: "USER:PASSWORD for a proxy that requires them (Basic); set with --secret. Delivered to the caches from a Secret.",
        secret: true,
        check: (c) => v.acceptedIf(c.indexOf(":") > 0 && c.indexOf(":") < c.length - 1, "USER:PASSWORD"),
    },
    cacheHostPath: {
        type: "string",
        description:
            'Node directory that holds cache data instead of volumes; with a kind extraMount (see the kindClusterConfig output) caches outlive the cluster. "" for volumes. Checked like certsDir (but never in /etc) and never inside, equal to or around certsDir.',
        default: perEnvironment((e) => e.cacheHostPath ?? ""),
        check: (p) => (p === "" ? v.ACCEPTED : v.reworded(v.checkNodeDirectory(p), (e) => `${e}; or "" for volumes`)),
    },
    cacheCoalescerImage: {
        type: "string",
        description:
            'nginx image run in front of each cache so that nodes asking at once for what it does not hold yet cost the upstream one download and one manifest GET, not one each; pinned to a full-version tag (x.y.z) or a digest (air-gapped clusters need it too). "" turns coalescing off.',
        default: DEFAULT_COALESCER_IMAGE,
        check: (i) => (i === "" ? v.ACCEPTED : v.reworded(v.checkImageReference(i), (e) => `${e}, or "" for no coalescing`)),
    },
    metricsNamespaces: {
        type: "array",
        description:
            "Namespaces whose pods may scrape the registries' Prometheus metrics (where Prometheus runs). Each registry then gets a <svc>-metrics Service and a NetworkPolicy admitting its debug port (metrics, but also pprof and expvar), and a cache's eviction counters (port 5005 on its coalescer), from these namespaces only; it needs a CNI that enforces NetworkPolicy. None: every debug listener listens on its pod's loopback only.",
        default: [],
        check: v.checkDnsLabel,
    },
    serviceMonitors: {
        type: "boolean",
        description:
            "Create a Prometheus Operator ServiceMonitor (monitoring.coreos.com/v1) for each registry's metrics Service, and a PrometheusRule alerting on the hosted registry's volume fill level (kubelet's volume metrics; none on object storage); needs metricsNamespaces and the operator's CRDs in the cluster.",
        default: false,
    },
    keepRegistryVolume: {
        type: "boolean",
        description:
            "Keep the hosted registry's volume (its PersistentVolumeClaim <serviceName>-storage, and so the images) and the registries' namespace when the stack is destroyed; the next pulumi up on the same stack takes both over (see Destroy in the README).",
        default: true,
    },
    registryVolumeClaim: {
        type: "string",
        description:
            "An existing PersistentVolumeClaim in the registries' namespace for the hosted registry to run on (a volume kept by an earlier stack's destroy); the stack then neither creates nor deletes a claim. Needs createNamespace false: the claim's namespace exists already. \"\" for a claim of its own.",
        default: "",
        check: (c) => (c === "" ? v.ACCEPTED : v.reworded(v.checkDnsSubdomain(c), (e) => `${e}, or "" for a claim of its own`)),
    },
    allowVolumeReplacement: {
        type: "boolean",
        description:
            "Let a change of storageClass (or another field Kubernetes cannot change on a claim) replace a registry's or cache's volume with a new, empty one. Without it, pulumi up stops and says how to migrate. Set it for that one up only: with it, a claim the provider has not marked auto-named (any claim after one up of this version) gets a new name, so a new, empty volume, even when nothing else changed.",
        default: false,
    },
    localRegistryHosting: {
        type: "boolean",
        description: "Publish the KEP-1755 local-registry-hosting ConfigMap in kube-public, which Tilt, Skaffold and others read.",
        default: true,
    },
    registryResources: {
        type: "array",
        description:
            "Resources of every registry container (the hosted registry's pod runs two, read-only and push; each cache one), as requests.NAME=QUANTITY and limits.NAME=QUANTITY entries for cpu, memory or ephemeral-storage; they replace the default as a whole.",
        default: [...DEFAULT_REGISTRY_RESOURCES],
        check: checkResourceEntry,
    },
    registryNodeSelector: {
        type: "array",
        description:
            "Node labels, as KEY=VALUE, the hosted registry's and the caches' pods require (besides kubernetes.io/os=linux). The node agent still runs on every node.",
        default: [],
        check: checkNodeSelectorEntry,
    },
    registryTolerations: {
        type: "array",
        description:
            "Taints the hosted registry's and the caches' pods tolerate, as KEY[=VALUE][:EFFECT] like kubectl taint (no =VALUE: any value; no :EFFECT: every effect).",
        default: [],
        check: checkTolerationEntry,
    },
    registryPriorityClassName: {
        type: "string",
        description: "PriorityClass of the hosted registry's and the caches' pods (it must exist); \"\" for the cluster's default.",
        default: "",
        check: (c) => (c === "" ? v.ACCEPTED : v.reworded(v.checkDnsSubdomain(c), (e) => `${e}, or "" for none`)),
    },
    // Issue 16: replicas and object storage.
    objectStorageBucket: {
        type: "string",
        description:
            'An existing S3 (or S3-compatible) bucket to keep the hosted registry\'s images in instead of a volume; its pull and push registries then run as Deployments of their own, the pull one with pullReplicas pods. "" for the volume.',
        default: "",
        check: (b) => (b === "" ? v.ACCEPTED : v.reworded(v.checkS3Bucket(b), (e) => `${e}, or "" for the volume`)),
    },
    objectStorageRegion: {
        type: "string",
        description: "The bucket's AWS region (an S3-compatible store takes any region name, usually us-east-1); required with objectStorageBucket.",
        default: "",
        check: (r) => (r === "" ? v.ACCEPTED : v.checkAwsRegion(r)),
    },
    objectStorageEndpoint: {
        type: "string",
        description: 'The URL of an S3-compatible store (path-style addressing is used with it); "" for AWS S3.',
        default: "",
        check: (e) =>
            e === "" || v.checkUpstreamUrl(e).ok ? v.ACCEPTED : v.expecting("an http:// or https:// URL with no path, such as https://s3.example.com:9000"),
    },
    objectStorageRootDirectory: {
        type: "string",
        description: "Key prefix in the bucket for this registry's objects, e.g. /cluster-a; \"\" for the bucket's root.",
        default: "",
        check: (d) => (d === "" || /^\/[A-Za-z0-9._\/-]*[A-Za-z0-9._-]$/.test(d) ? v.ACCEPTED : v.expecting('a path such as /cluster-a, or ""')),
    },
    objectStorageKmsKeyId: {
        type: "string",
        description: 'Encrypt objects with this KMS key (SSE-KMS: a key ID, ARN or alias/NAME); "" for the bucket\'s own encryption.',
        default: "",
    },
    objectStorageRoleArn: {
        type: "string",
        description:
            'IAM role for IRSA, annotated on the hosted registry\'s ServiceAccount (<serviceName>-storage). "" for EKS Pod Identity (associate a role with that ServiceAccount) or, outside EKS, objectStorageAccessKey.',
        default: "",
        check: (a) => (a === "" ? v.ACCEPTED : v.checkIamRoleArn(a)),
    },
    objectStorageAccessKey: {
        type: "string",
        description: 'Access key ID for a store outside AWS that needs static keys (never on eks: use IRSA or EKS Pod Identity); "" for none.',
        default: "",
    },
    objectStorageSecretKey: {
        type: "string",
        description: "Secret access key that goes with objectStorageAccessKey; set with --secret. It reaches the pods from a Secret.",
        secret: true,
    },
    pullReplicas: {
        type: "integer",
        description: "Read-only (pull) replicas of the hosted registry. More than 1 needs objectStorageBucket: a ReadWriteOnce volume is held by one node.",
        defaultText: "2 with objectStorageBucket, else 1",
        check: intRange(1, 20),
    },
    cacheReplicas: {
        type: "integer",
        description:
            "Replicas of each cache, each with its own storage and Service; nodes list them all in hosts.toml and try the next when one fails, so a cache pod's loss loses no pull.",
        default: 1,
        check: intRange(1, 5),
    },
} satisfies { readonly [K in keyof SettingValues]: Setting<SettingValues[K]> & { type: TypeName<SettingValues[K]> } };

export type SettingKey = keyof typeof SETTINGS;
export const SETTING_KEYS = Object.keys(SETTINGS) as SettingKey[];

/** `SETTINGS` seen key by key: each entry a `Setting` of its field's type, for code generic over keys. */
const DECLARED: { readonly [K in SettingKey]: Setting<SettingValues[K]> } = SETTINGS;

/** A setting's declaration, typed by its key. */
export function settingOf<K extends SettingKey>(key: K): Setting<SettingValues[K]> {
    return DECLARED[key];
}

function isPerEnvironment<T>(d: T | PerEnvironment<T | undefined> | undefined): d is PerEnvironment<T | undefined> {
    return typeof d === "object" && d !== null && "byEnvironment" in d;
}

/** The plain value a setting defaults to in an environment, or `undefined` for none. */
export function defaultFor<K extends SettingKey>(key: K, environment: EnvironmentName): SettingValues[K] | undefined {
    const d = DECLARED[key].default;
    return isPerEnvironment(d) ? d.byEnvironment[environment] : d;
}

export type { RegistryUserArgs };

/** A pull-through cache of one upstream registry, as the component takes it. */
export interface CacheArgs {
    /** The name in image references, e.g. `docker.io`: the certs.d directory containerd looks up. */
    host: string;
    /** The upstream's registry API. Default: the preset for `host` (see `UPSTREAM_PRESETS`). */
    remoteUrl?: string;
    /** Upstream credentials, for upstreams that limit anonymous pulls. Default: anonymous. */
    credentials?: { username: pulumi.Input<string>; password: pulumi.Input<string> };
}

/** A `caches` entry as written: a preset host, or `HOST=URL` (split at the first `=`: hosts have none). */
export function parseCacheEntry(entry: string): CacheArgs {
    const eq = entry.indexOf("=");
    return eq < 0 ? { host: entry } : { host: entry.slice(0, eq), remoteUrl: entry.slice(eq + 1) };
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

/** The settings whose resolved form differs from the form `ClusterRegistryArgs` takes. */
type Reshaped = "users" | "caches" | "extraNames" | "nodePort" | "bcryptCost" | "cacheHostPath" | "registryVolumeClaim" | "cacheProxyCredentials";

/** Everything the component builds from, defaults applied and validated: `ClusterRegistryArgs` resolved. */
export interface Settings extends Omit<Required<ClusterRegistryArgs>, Reshaped> {
    /** Every user as name and optional password. */
    users: RegistryUserArgs[];
    caches: CacheSetting[];
    /** `extraNames` that are DNS names. */
    extraDnsNames: string[];
    /** `extraNames` that are IP addresses. */
    extraIpAddresses: string[];
    /** `undefined`: no NodePort (the setting's 0). */
    nodePort: number | undefined;
    /** `undefined`: per user, by whether the password was given. */
    bcryptCost: number | undefined;
    /** `undefined`: caches keep their data in volumes (the setting's ""). */
    cacheHostPath: string | undefined;
    registryVolumeClaim: string | undefined;
    /** `undefined`: the proxy (if any) needs no credentials. */
    cacheProxyCredentials: string | undefined;
    /** `undefined`: the hosted registry keeps its images on a volume (the bucket setting's ""). */
    objectStorage: ObjectStorageSetting | undefined;
}

/** The hosted registry's object storage, resolved. */
export interface ObjectStorageSetting {
    bucket: string;
    region: string;
    endpoint?: string;
    rootDirectory?: string;
    kmsKeyId?: string;
    roleArn?: string;
    /** Static keys, for stores that need them (never on EKS). */
    keys?: { accessKey: string; secretKey: string };
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
    /** When the hosted registry collects garbage: `HH:MM` (UTC, daily), `manual` (on SIGUSR1) or `off`. Default: off. */
    gcSchedule?: string;
    /** Garbage collection also deletes untagged manifests (`--delete-untagged`). Default: false. */
    gcDeleteUntagged?: boolean;
    /** Users may delete tags and manifests on the push port. Default: false. */
    pushDeletes?: boolean;
    /** The push container logs a warning (and with serviceMonitors, an alert fires) while the hosted volume is at least this full, in percent; 100 for none. Default: 80. */
    registryFillWarnPercent?: number;
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
    /** Upstream hosts preloaded into the hosted registry under `<host>/<repository>` (scripts/preload), which nodes pull by unmodified names. Default: none. */
    preloadedUpstreams?: string[];
    /** How long a cache keeps what it fetched (a Go duration; 0 never expires, so its volume only grows). Default: 168h. */
    cacheTtl?: string;
    /** A cache deletes its oldest blobs once it holds this percent of cacheStorageSize (1-100; 100 never evicts). Default: 90. */
    cacheMaxFillPercent?: number;
    /** Size of each cache's volume. Default: kind 10Gi, k3d 10Gi, eks 50Gi. */
    cacheStorageSize?: string;
    /** Proxy the caches reach https upstreams through (HTTPS_PROXY); "" for none. Default: "". */
    cacheHttpsProxy?: string;
    /** Proxy the caches reach http upstreams through (HTTP_PROXY); "" for none. Default: "". */
    cacheHttpProxy?: string;
    /** More NO_PROXY entries for the caches, besides the cluster's own addresses. Default: none. */
    cacheNoProxy?: string[];
    /** USER:PASSWORD for the proxy (secret), delivered from a Secret. Default: none. */
    cacheProxyCredentials?: string;
    /** Node directory for cache data instead of volumes; "" for volumes. Default: kind /var/lib/cluster-registry/caches, k3d "", eks "". */
    cacheHostPath?: string;
    /** nginx image in front of each cache, coalescing concurrent misses into one upstream download; "" for none. Default: docker.io/library/nginx:1.28.0-alpine. */
    cacheCoalescerImage?: string;
    /** Namespaces whose pods may scrape the registries' debug listeners (metrics Services, a NetworkPolicy); none: loopback only. Default: none. */
    metricsNamespaces?: string[];
    /** Create a Prometheus Operator ServiceMonitor for each registry's metrics Service, and a PrometheusRule on the hosted volume's fill level (needs metricsNamespaces). Default: false. */
    serviceMonitors?: boolean;
    /** Keep the hosted registry's volume and the registries' namespace when the stack is destroyed, for the next up to take over. Default: true. */
    keepRegistryVolume?: boolean;
    /** An existing claim (in the registries' namespace) for the hosted registry; "" for its own. Default: "". */
    registryVolumeClaim?: string;
    /** Let a change of storageClass replace a volume with an empty one instead of stopping pulumi up; for that one up only (with it, claims may be renamed, so emptied, even with nothing else changed). Default: false. */
    allowVolumeReplacement?: boolean;
    /** Publish the KEP-1755 local-registry-hosting ConfigMap. Default: true. */
    localRegistryHosting?: boolean;
    /** Resources of every registry container, as `requests.cpu=100m`-style entries replacing the default. Default: [requests.cpu=50m, requests.memory=64Mi, limits.memory=512Mi]. */
    registryResources?: string[];
    /** Node labels (`KEY=VALUE`) the registries' pods require. Default: none. */
    registryNodeSelector?: string[];
    /** Taints the registries' pods tolerate, as `KEY[=VALUE][:EFFECT]`. Default: none. */
    registryTolerations?: string[];
    /** PriorityClass of the registries' pods; "" for none. Default: "". */
    registryPriorityClassName?: string;
    /** An existing S3 or S3-compatible bucket for the hosted registry's images; "" for the volume. Default: "". */
    objectStorageBucket?: string;
    /** The bucket's region; required with a bucket. Default: "". */
    objectStorageRegion?: string;
    /** An S3-compatible store's URL (path-style); "" for AWS. Default: "". */
    objectStorageEndpoint?: string;
    /** Key prefix in the bucket. Default: "". */
    objectStorageRootDirectory?: string;
    /** SSE-KMS key. Default: "". */
    objectStorageKmsKeyId?: string;
    /** IAM role for IRSA on the registry's ServiceAccount. Default: "". */
    objectStorageRoleArn?: string;
    /** Static access key ID, outside EKS only. Default: "". */
    objectStorageAccessKey?: string;
    /** Its secret access key. Default: none. */
    objectStorageSecretKey?: string;
    /** Read-only replicas of the hosted registry (more than 1 needs a bucket). Default: 2 with objectStorageBucket, else 1. */
    pullReplicas?: number;
    /** Replicas of each cache, each with its own storage and Service. Default: 1. */
    cacheReplicas?: number;
}

/** How the README and the args' documentation state a setting's default. */
export function defaultText(key: SettingKey): string {
    const s = settingOf(key);
    if (s.defaultText !== undefined) return s.defaultText;
    const show = (x: unknown) => (Array.isArray(x) ? (x.length === 0 ? "none" : `[${x.join(", ")}]`) : x === "" ? '""' : String(x));
    if (s.default === undefined) return "none";
    if (isPerEnvironment(s.default)) return ENVIRONMENT_NAMES.map((e) => `${e} ${show(defaultFor(key, e))}`).join(", ");
    return show(s.default);
}
