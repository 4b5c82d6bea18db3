/** The whole product: CA, credentials, hosted registry, caches, pull secrets and node configuration. */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { ENVIRONMENTS } from "./environments";
import { HtpasswdSecret, NODE_IDENTITY, PULL_IDENTITY, RegistryCredentials } from "./credentials";
import { FIELD_MANAGER_ANNOTATION, keptFieldManager, PART_OF } from "./labels";
import { NodeConfig, NodeRegistry } from "./node-config";
import { CertificateAuthority } from "./pki";
import { cacheProxyEnv, withPreloaded } from "./preloaded";
import { PullSecret } from "./pull-secret";
import { renderDockerConfigJson } from "./render/docker-config";
import { ObjectStorageArgs, Registry } from "./registry";
import { renderLocalRegistryHosting } from "./render/discovery";
import { MirrorEntry, renderBottlerocketSettings, renderK3sRegistries, renderKindClusterConfig } from "./render/node-snippets";
import { isStackConfig, resolveSettings } from "./resolve-settings";
import { serviceDnsNames } from "./names";
import { preloadPrefix } from "./upstreams";
import { ClusterRegistryArgs, PROJECT, Settings } from "./settings";
import { placementOf } from "./render/placement";
import type { PushMaintenanceArgs } from "./registry";

/** KEP-1755's well-known place, read by Tilt, Skaffold, ctlptl and others. */
export const LOCAL_REGISTRY_HOSTING = { namespace: "kube-public", name: "local-registry-hosting", key: "localRegistryHosting.v1" } as const;
/** Suggested directory on the machine running kind that keeps caches across cluster re-creation. */
export const KIND_CACHE_HOST_DIR = "/var/tmp/cluster-registry-caches";
/** Where the k3s registries.yaml snippet expects the CA on each node. */
export const K3S_CA_FILE = "/etc/rancher/k3s/cluster-registry-ca.crt";
/** The `help` field of the discovery ConfigMap: the KEP that defines it and what its fields mean. */
export const HELP_URL = "https://github.com/kubernetes/enhancements/tree/master/keps/sig-cluster-lifecycle/generic/1755-communicating-a-local-registry";

/** A registry and how nodes reach it. */
interface BuiltCache {
    host: string;
    remoteUrl: string;
    /** The first replica, which nodes try first. */
    registry: Registry;
    /** Every replica after the first, each with its own storage and Service. */
    others: Registry[];
    /** The replicas' Service names, the first replica's first. */
    serviceNames: string[];
}

/**
 * A private registry, and caches of public ones, that every node trusts. Pass `{ provider }` to
 * put it in a cluster the same program creates; every Kubernetes object uses that provider.
 */
export class ClusterRegistry extends pulumi.ComponentResource {
    /** `<svc>.<ns>.svc.<domain>:<port>`: use it in image references. */
    public readonly host: pulumi.Output<string>;
    /** Where a workstation pushes, once it reaches the Service's push port (see `pushHelp`). */
    public readonly pushEndpoint: pulumi.Output<string>;
    /** `<svc>.<ns>.svc.<domain>:<pushPort>`: where a build pod in the cluster pushes. */
    public readonly pushHost: pulumi.Output<string>;
    /** How to reach `pushEndpoint` from a workstation. */
    public readonly pushHelp: pulumi.Output<string>;
    /** The Service's ClusterIP, which nodes use in place of DNS. */
    public readonly clusterIP: pulumi.Output<string>;
    /** The CA certificate, PEM: trust it to push from a workstation. */
    public readonly caCertPem: pulumi.Output<string>;
    /** Users who push. */
    public readonly users: pulumi.Output<string[]>;
    /** Passwords by user (secret). */
    public readonly passwords: pulumi.Output<Record<string, string>>;
    /** The pull secret's `.dockerconfigjson` (secret): the pull-only identity, for `host`. */
    public readonly dockerConfigJson: pulumi.Output<string>;
    /** `.dockerconfigjson` of the first user (secret) for `pushEndpoint` and `pushHost`: a push authfile for skopeo, crane, kaniko. */
    public readonly pushDockerConfigJson: pulumi.Output<string>;
    /** Name of the pull secret in each namespace. */
    public readonly pullSecretName: pulumi.Output<string>;
    /** The node directory the DaemonSet writes hosts.toml files to. */
    public readonly certsDir: pulumi.Output<string>;
    /** Each cache: upstream host to the endpoint nodes use for it. */
    public readonly caches: pulumi.Output<Record<string, string>>;
    /** kind cluster config with the containerdConfigPatches kind before v0.31 needs. */
    public readonly kindClusterConfig: pulumi.Output<string>;
    /** /etc/rancher/k3s/registries.yaml for k3s/k3d nodes, so mirrors survive k3s restarts. */
    public readonly k3sRegistriesYaml: pulumi.Output<string>;
    /** Bottlerocket user-data settings (mirrors and the CA) for EKS Bottlerocket node groups. */
    public readonly bottlerocketSettings: pulumi.Output<string>;
    /**
     * When each certificate expires (RFC 3339): `ca`, then each registry's server certificate by its
     * Service name. A `pulumi up` re-issues a server certificate inside certEarlyRenewalHours of its
     * expiry, the CA inside 30 days of its own; `./scripts/check --certs-only` fails when one is close.
     */
    public readonly certificateExpiry: pulumi.Output<Record<string, string>>;

    /** How messages found while deploying name settings: stack keys for the stack, argument names otherwise. */
    private readonly settingPrefix: string;

    constructor(name: string, args: ClusterRegistryArgs = {}, opts?: pulumi.ComponentResourceOptions) {
        // Checked before anything is registered: bad args create nothing, not even this component.
        const s = resolveSettings(args, isStackConfig(args) ? `${PROJECT}:` : `ClusterRegistry ${name}: `);
        super("cluster-registry:index:ClusterRegistry", name, {}, opts);
        this.settingPrefix = isStackConfig(args) ? `${PROJECT}:` : "";
        const namespace = this.namespace(name, s, "registries");
        const inNamespace: pulumi.CustomResourceOptions = { parent: this, dependsOn: namespace.resource ? [namespace.resource] : [] };
        const ca = new CertificateAuthority(
            `${name}-ca`,
            { commonName: `cluster-registry CA (${s.namespace})`, keyAlgorithm: s.keyAlgorithm, validityHours: s.caValidityHours },
            { parent: this },
        );
        const credentials = this.credentials(name, s, namespace.name);
        const hosted = this.hostedRegistry(name, s, namespace.name, ca, credentials, inNamespace);
        const caches = this.cacheRegistries(name, s, namespace.name, ca, credentials.htpasswd.node, inNamespace);
        const pullSecret = this.pullSecret(name, s, hosted, credentials, { parent: this });
        const nodeAuth = s.nodePulls ? credentials.identityPasswords.apply((p) => ({ username: NODE_IDENTITY, password: p[NODE_IDENTITY] })) : undefined;
        const nodeRegistries = nodeRegistriesOf(s, hosted, caches, nodeAuth);
        const nodeConfig = this.nodeAgent(name, s, ca, nodeRegistries);
        if (s.localRegistryHosting) this.discovery(name, s, hosted);

        const mirrors = mirrorsOf(nodeRegistries, hosted, nodeAuth);
        const kindCacheMount = s.cacheHostPath ? { hostDir: KIND_CACHE_HOST_DIR, nodeDir: s.cacheHostPath } : undefined;
        this.kindClusterConfig = pulumi.output(renderKindClusterConfig(s.certsDir, kindCacheMount));
        // Both carry the node identity: secret.
        this.k3sRegistriesYaml = pulumi.secret(mirrors.apply((m) => renderK3sRegistries(m, K3S_CA_FILE)));
        this.bottlerocketSettings = pulumi.secret(
            pulumi.all([mirrors, ca.certPem]).apply(([m, pem]) => renderBottlerocketSettings(m, pem, "cluster-registry")),
        );
        this.host = hosted.host;
        this.pushEndpoint = pulumi.output(pushEndpointOf(s));
        this.pushHost = pulumi.output(pushHostOf(s));
        this.pushHelp = pulumi.output(pushHelpOf(s));
        this.clusterIP = hosted.clusterIP;
        this.caCertPem = ca.certPem;
        this.users = pulumi.output(credentials.userNames);
        this.passwords = credentials.passwords;
        this.dockerConfigJson = pullSecret.dockerConfigJson;
        const firstUser = s.users[0].name;
        this.pushDockerConfigJson = pulumi.secret(
            // With a NodePort the workstation's host is a node address we cannot know: in-cluster name only.
            credentials.passwords.apply((p) => renderDockerConfigJson([...(s.nodePort ? [] : [pushEndpointOf(s)]), pushHostOf(s)], firstUser, p[firstUser])),
        );
        this.pullSecretName = pulumi.output(pullSecret.secretName);
        this.certsDir = pulumi.output(nodeConfig.certsDir);
        this.caches = pulumi.all(caches.map((c) => c.registry.endpoint.apply((e) => [c.host, e] as const))).apply((pairs) => Object.fromEntries(pairs));
        this.certificateExpiry = certificateExpiryOf(ca, [[s.serviceName, hosted], ...caches.flatMap(serviceRegistries)]);
        this.registerOutputs({
            host: this.host,
            pushEndpoint: this.pushEndpoint,
            pushHost: this.pushHost,
            pushHelp: this.pushHelp,
            clusterIP: this.clusterIP,
            caCertPem: this.caCertPem,
            users: this.users,
            passwords: this.passwords,
            dockerConfigJson: this.dockerConfigJson,
            pushDockerConfigJson: this.pushDockerConfigJson,
            pullSecretName: this.pullSecretName,
            certsDir: this.certsDir,
            caches: this.caches,
            kindClusterConfig: this.kindClusterConfig,
            k3sRegistriesYaml: this.k3sRegistriesYaml,
            bottlerocketSettings: this.bottlerocketSettings,
            certificateExpiry: this.certificateExpiry,
        });
    }

    /**
     * A namespace, created with its Pod Security level or taken as it is. The node agent writes node
     * directories (hostPath), which only `privileged` admits, so it has a namespace of its own with
     * nothing else in it: whoever may create pods or edit Secrets beside the registries does not get
     * root on every node. The registries run `restricted`, unless caches keep their data in a node
     * directory (kind's cacheHostPath), which only `privileged` admits too.
     */
    private namespace(name: string, s: Settings, which: "registries" | "nodeAgent"): { name: pulumi.Output<string>; resource?: pulumi.CustomResource } {
        const namespace = which === "registries" ? s.namespace : s.nodeAgentNamespace;
        if (!s.createNamespace) return { name: pulumi.output(namespace) };
        const hostPathCaches = s.cacheHostPath !== undefined && s.caches.length > 0;
        const level = which === "nodeAgent" || hostPathCaches ? "privileged" : "restricted";
        const labels = { "pod-security.kubernetes.io/enforce": level, ...PART_OF };
        const logicalName = which === "registries" ? `${name}-namespace` : `${name}-node-agent-namespace`;
        if (which === "registries" && s.keepRegistryVolume) {
            // Deleting a namespace deletes every claim in it, so a kept volume keeps its namespace, and the
            // next stack (a `pulumi up` after `pulumi destroy`) must take it over: see keptNamespace.
            const resource = keptNamespace(logicalName, namespace, labels, keptFieldManager(s.serviceName), { parent: this });
            return { name: resource.metadata.apply((m) => m.name ?? namespace), resource };
        }
        // Turning keepRegistryVolume off moves the kept namespace's state back here (see keptNamespace).
        const aliases = which === "registries" ? [{ type: "kubernetes:core/v1:NamespacePatch" }] : [];
        const resource = new k8s.core.v1.Namespace(logicalName, { metadata: { name: namespace, labels } }, { parent: this, aliases });
        return { name: resource.metadata.name, resource };
    }

    /** The node agent, alone in its privileged namespace. */
    private nodeAgent(name: string, s: Settings, ca: CertificateAuthority, registries: NodeRegistry[]): NodeConfig {
        const namespace = this.namespace(name, s, "nodeAgent");
        const args = {
            namespace: namespace.name,
            owner: `${s.namespace}.${s.serviceName}`,
            image: s.image,
            certsDir: s.certsDir,
            containerdConfig: ENVIRONMENTS[s.environment].containerdConfig,
            containerdCheck: s.containerdCheck,
            caPem: ca.certPem,
            registries,
            daemonSetName: `${s.serviceName}-node-config`,
        };
        return new NodeConfig(`${name}-node-config`, args, { parent: this, dependsOn: namespace.resource ? [namespace.resource] : [] });
    }

    /**
     * Pushers (the users), the pull secret's pull-only identity and the nodes' identity, and an
     * htpasswd per door: `push` admits pushers only; `pull` (the read-only port) pushers and the
     * identities; `node` (the caches) the node identity alone.
     */
    private credentials(name: string, s: Settings, namespace: pulumi.Output<string>): RegistryCredentials {
        const users = s.users.map((u) => u.name);
        const identities = [PULL_IDENTITY, ...(s.nodePulls ? [NODE_IDENTITY] : [])];
        const cachesAuthenticate = s.nodePulls && s.caches.length > 0;
        return new RegistryCredentials(
            `${name}-credentials`,
            {
                namespace,
                users: s.users.map((u) => ({ name: u.name, password: u.password && pulumi.secret(u.password) })),
                bcryptCost: s.bcryptCost,
                identities,
                files: { push: users, pull: [...users, ...identities], ...(cachesAuthenticate ? { node: [NODE_IDENTITY] } : {}) },
            },
            { parent: this },
        );
    }

    /** What the hosted registry and every cache share. */
    private registryBase(s: Settings, namespace: pulumi.Output<string>, ca: CertificateAuthority) {
        return {
            namespace,
            port: s.port,
            clusterDomain: s.clusterDomain,
            ca,
            certValidityHours: s.certValidityHours,
            certEarlyRenewalHours: s.certEarlyRenewalHours,
            image: s.image,
            storageClass: s.storageClass,
            metricsFrom: s.metricsNamespaces,
            serviceMonitor: s.serviceMonitors,
            allowVolumeReplacement: s.allowVolumeReplacement,
            settingPrefix: this.settingPrefix,
            placement: placementOf({
                resources: s.registryResources,
                nodeSelector: s.registryNodeSelector,
                tolerations: s.registryTolerations,
                priorityClassName: s.registryPriorityClassName,
            }),
        };
    }

    private hostedRegistry(
        name: string,
        s: Settings,
        namespace: pulumi.Output<string>,
        ca: CertificateAuthority,
        credentials: RegistryCredentials,
        opts: pulumi.CustomResourceOptions,
    ): Registry {
        const args = {
            ...this.registryBase(s, namespace, ca),
            serviceName: s.serviceName,
            nodePort: s.nodePort,
            extraDnsNames: s.extraDnsNames,
            extraIpAddresses: s.extraIpAddresses,
            storageSize: s.storageSize,
            htpasswd: credentials.htpasswd.pull,
            push: { port: s.pushPort, htpasswd: credentials.htpasswd.push, maintenance: pushMaintenance(s) },
            // The images people pushed: kept by `pulumi destroy` unless asked (README, Destroy).
            retainVolume: s.keepRegistryVolume,
            existingClaim: s.registryVolumeClaim,
            objectStorage: objectStorageOf(s),
            // With the operator there (serviceMonitors), an alert as well as the push container's log line.
            fillAlert: s.serviceMonitors ? { warnPercent: pushMaintenance(s).fillWarnPercent } : undefined,
        };
        return new Registry(`${name}-hosted`, args, opts);
    }

    /** One cache per upstream: distribution's proxy mode serves one upstream and takes no pushes. */
    private cacheRegistries(
        name: string,
        s: Settings,
        namespace: pulumi.Output<string>,
        ca: CertificateAuthority,
        /** The node identity's htpasswd; absent: caches are anonymous (nodePulls off). */
        htpasswd: HtpasswdSecret | undefined,
        opts: pulumi.CustomResourceOptions,
    ): BuiltCache[] {
        const egressEnv = cacheProxyEnv(s, (data) => this.proxySecret(name, namespace, data, opts));
        return s.caches.map((c) => {
            const credentials = c.credentials && { username: pulumi.secret(c.credentials.username), password: pulumi.secret(c.credentials.password) };
            // Proxies must not share storage (distribution rewrites one scheduler-state.json per store every
            // 5 s): each replica is a registry of its own, with its own volume (or node directory) and Service.
            const serviceNames = cacheReplicaNames(c.serviceName, s.cacheReplicas);
            const [registry, ...others] = serviceNames.map((serviceName, i) => {
                const args = {
                    ...this.registryBase(s, namespace, ca),
                    serviceName,
                    storageSize: s.cacheStorageSize,
                    hostPath: s.cacheHostPath ? `${s.cacheHostPath}/${serviceName}` : undefined,
                    proxy: { remoteUrl: c.remoteUrl, ttl: s.cacheTtl, credentials, egressEnv },
                    // Only nodes: a pod reaching a cache directly gets 401, and so no upstream account's images.
                    htpasswd,
                    // 100 is "never evict": a full volume still serves what it holds, and fails fetches.
                    maxFillPercent: s.cacheMaxFillPercent === 100 ? undefined : s.cacheMaxFillPercent,
                    coalescer: s.cacheCoalescerImage ? { image: s.cacheCoalescerImage } : undefined,
                };
                // The first replica keeps the name a one-replica stack had: nothing of it is replaced.
                return new Registry(i === 0 ? `${name}-${c.serviceName}` : `${name}-${serviceName}`, args, opts);
            });
            return { host: c.host, remoteUrl: c.remoteUrl, registry, others, serviceNames };
        });
    }

    /** The proxy URLs with their credentials, for every cache's env: a Secret, never the pod template. */
    private proxySecret(
        name: string,
        namespace: pulumi.Output<string>,
        data: pulumi.Input<Record<string, string>>,
        opts: pulumi.CustomResourceOptions,
    ): pulumi.Output<string> {
        const secret = new k8s.core.v1.Secret(
            `${name}-cache-proxy`,
            { metadata: { namespace, labels: { ...PART_OF } }, type: "Opaque", stringData: data },
            opts,
        );
        return secret.metadata.name;
    }

    /**
     * The pull-only identity's pull secret in each listed namespace (and nowhere else), for the hosted
     * registry's read-only port only, and the default ServiceAccounts' patches.
     */
    private pullSecret(name: string, s: Settings, hosted: Registry, credentials: RegistryCredentials, opts: pulumi.CustomResourceOptions): PullSecret {
        const pullSecret = new PullSecret(
            `${name}-pull`,
            {
                secretName: s.pullSecretName,
                namespaces: s.pullSecretNamespaces,
                registries: [hosted.host],
                username: PULL_IDENTITY,
                password: credentials.identityPasswords.apply((p) => p[PULL_IDENTITY]),
            },
            opts,
        );
        if (!s.patchDefaultServiceAccounts) return pullSecret;
        for (const ns of s.pullSecretNamespaces) {
            // imagePullSecrets is an atomic list for server-side apply: if another manager already
            // set it, this patch fails with a conflict rather than replacing theirs.
            new k8s.core.v1.ServiceAccountPatch(
                `${name}-default-sa-${ns}`,
                { metadata: { name: "default", namespace: ns }, imagePullSecrets: [{ name: s.pullSecretName }] },
                { parent: this, dependsOn: pullSecret.secrets },
            );
        }
        return pullSecret;
    }

    /** KEP-1755's ConfigMap, so Tilt, Skaffold and others find the registry. */
    private discovery(name: string, s: Settings, hosted: Registry): void {
        const value = hosted.host.apply((h) =>
            // With a NodePort, kind and k3d publish it on the machine's localhost.
            // Tools push from the cluster network (the push port) and name images for the runtime (the pull port).
            renderLocalRegistryHosting({
                host: `localhost:${s.nodePort ?? s.port}`,
                hostFromContainerRuntime: h,
                hostFromClusterNetwork: pushHostOf(s),
                help: HELP_URL,
            }),
        );
        new k8s.core.v1.ConfigMap(
            `${name}-local-registry-hosting`,
            {
                metadata: { name: LOCAL_REGISTRY_HOSTING.name, namespace: LOCAL_REGISTRY_HOSTING.namespace, labels: { ...PART_OF } },
                data: { [LOCAL_REGISTRY_HOSTING.key]: value },
            },
            { parent: this },
        );
    }
}

/**
 * The registries' namespace when the hosted registry's volume outlives the stack: a server-side apply
 * (NamespacePatch), which creates the namespace when it is missing and takes over the one an earlier
 * stack's `pulumi destroy` kept, where a Namespace resource's create fails with AlreadyExists.
 *
 * pulumi-kubernetes since v4.29.0 creates ordinary resources client-side, so an existing object fails
 * with AlreadyExists (pulumi/pulumi-kubernetes#4278: "switches to client-side create ... when server-side
 * apply is enabled but upsertExistingObjects is false (the default)"; v4.29.0's release notes: "To manage
 * fields on existing objects without owning their lifecycle, use Patch resources (e.g. NamespacePatch)").
 * A Patch resource's create is the server-side apply every create was before (provider/pkg/await/await.go,
 * `Creation`, the `c.ServerSideApply` branch: `client.Patch(..., types.ApplyPatchType, ...)`, read at
 * ecd723a, before #4278), which creates a missing object (pulumi/pulumi-kubernetes#2194: "If I use the
 * NamespacePatch for a namespace name that does not exist already, this namespace is created by it").
 * The Go source of 4.34.2 itself is not in the reference index we read from: the fake cloud models these
 * statements, and test/unit/cluster-registry.lifecycle.test.ts is only as good as they are. The
 * alternative, the provider's `upsertExistingObjects`, would make every object of the stack an upsert, and
 * the provider is the caller's (a library user passes us theirs).
 *
 * What it takes over and why it is ours: the namespace the settings name, and only with
 * keepRegistryVolume, the setting that kept it (the labels below say so on the object). The apply is not
 * forced: a namespace whose labels another manager set to other values (another Pod Security level,
 * another `part-of`) fails the `up` with a conflict instead of being changed. An unlabelled namespace of
 * that name made by hand is taken over (labels added); name one you own with createNamespace false.
 *
 * Upgrading, or turning keepRegistryVolume on: the alias moves the stack's Namespace resource's state
 * here (the engine matches aliases across types, pulumi#2774), so the same object gets the same labels and
 * the Namespace is neither deleted nor forgotten; the Namespace resource (keepRegistryVolume off) aliases
 * this type back. Without the alias, a Namespace whose state lacks `retainOnDelete` (keepRegistryVolume
 * was off) would be dropped from the program and so deleted, with everything in it. `retainOnDelete`
 * here: `pulumi destroy` leaves the namespace and its labels.
 *
 * One field manager from stack to stack (`pulumi.com/patchFieldManager`; the provider's default is random
 * per resource): after a destroy the kept labels stay owned by the manager that applied them, so the next
 * stack, under the same name, may change them (another Pod Security level) without a conflict.
 */
export function keptNamespace(
    logicalName: string,
    namespace: string,
    labels: Record<string, string>,
    fieldManager: string,
    opts: pulumi.CustomResourceOptions,
): k8s.core.v1.NamespacePatch {
    return new k8s.core.v1.NamespacePatch(
        logicalName,
        { metadata: { name: namespace, labels, annotations: { [FIELD_MANAGER_ANNOTATION]: fieldManager } } },
        { ...opts, retainOnDelete: true, aliases: [{ type: "kubernetes:core/v1:Namespace" }] },
    );
}

/** What nodes are told for each registry (k3s, Bottlerocket): a preloaded upstream without a cache is the hosted registry under the upstream's prefix. */
function mirrorsOf(nodeRegistries: NodeRegistry[], hosted: Registry, nodeAuth: pulumi.Output<MirrorEntry["auth"]> | undefined): pulumi.Output<MirrorEntry[]> {
    return pulumi.all(
        nodeRegistries.map((r) =>
            pulumi
                .all([r.host, r.overridePath ? hosted.endpoint : r.endpoint, nodeAuth, pulumi.all(r.fallbacks ?? [])])
                .apply(([host, endpoint, auth, fallbacks]) => ({
                    host,
                    endpoint,
                    auth,
                    fallbacks,
                    ...(r.overridePath ? { preloadedPrefix: preloadPrefix(host) } : {}),
                })),
        ),
    );
}

/** A cache's replicas by Service name, the first replica's first. */
function serviceRegistries(c: BuiltCache): Array<[string, Registry]> {
    return [c.registry, ...c.others].map((r, i) => [c.serviceNames[i], r]);
}

/** When each certificate expires: `ca`, then each registry's server certificate by its Service name. */
function certificateExpiryOf(ca: CertificateAuthority, registries: Array<[string, Registry]>): pulumi.Output<Record<string, string>> {
    return pulumi
        .all([ca.expiresAt, ...registries.map(([, r]) => r.certExpiresAt)])
        .apply(([caExpiry, ...ends]): Record<string, string> => ({ ca: caExpiry, ...Object.fromEntries(registries.map(([svc], i) => [svc, ends[i]])) }));
}

/** The hosted registry and each cache as nodes see them. */
function nodeRegistriesOf(
    s: Settings,
    hosted: Registry,
    caches: BuiltCache[],
    nodeAuth: pulumi.Output<{ username: string; password: string }> | undefined,
): NodeRegistry[] {
    const fallbackToUpstream = s.mirrorFallback === "upstream";
    // Sent by containerd to the endpoint only (never to an upstream `server`), from a root-only file.
    const header = nodeAuth?.apply((a) => ({ Authorization: `Basic ${Buffer.from(`${a.username}:${a.password}`).toString("base64")}` }));
    const registries: NodeRegistry[] = [
        // Nodes only pull; pushes come from people and CI with credentials. `server` is the ClusterIP too:
        // containerd 1.x reports its last try, and the in-cluster name would make a 404 a DNS error.
        {
            host: hosted.host,
            server: hosted.endpoint,
            endpoint: hosted.endpoint,
            capabilities: ["pull", "resolve"],
            serverIsOurs: true,
            header,
        },
        ...caches.map((c): NodeRegistry => ({
            host: c.host,
            // Fail open falls back to the upstream; fail closed names the cache again, so a pull never leaves the cluster.
            server: fallbackToUpstream ? c.remoteUrl : c.registry.endpoint,
            endpoint: c.registry.endpoint,
            capabilities: ["pull", "resolve"],
            serverIsOurs: !fallbackToUpstream,
            header,
            fallbacks: c.others.map((r) => r.endpoint),
        })),
    ];
    return withPreloaded(registries, s.preloadedUpstreams, hosted.endpoint, header, fallbackToUpstream);
}

/** Service names of a cache's replicas: its own, then `<name>-1`, `<name>-2`... (DNS labels, 63 characters at most). */
export function cacheReplicaNames(serviceName: string, replicas: number): string[] {
    return Array.from({ length: replicas }, (_, i) => (i === 0 ? serviceName : `${serviceName.slice(0, 63 - 1 - String(i).length).replace(/-+$/, "")}-${i}`));
}

/** The hosted registry's bucket, identity and read replicas, or undefined for the volume. */
function objectStorageOf(s: Settings): ObjectStorageArgs | undefined {
    const os = s.objectStorage;
    if (!os) return undefined;
    return {
        s3: { bucket: os.bucket, region: os.region, regionEndpoint: os.endpoint, rootDirectory: os.rootDirectory, kmsKeyId: os.kmsKeyId },
        pullReplicas: s.pullReplicas,
        // Named: an EKS Pod Identity association refers to it by namespace and name.
        serviceAccountName: `${s.serviceName}-storage`,
        roleArn: os.roleArn,
        keys: os.keys && { accessKey: pulumi.secret(os.keys.accessKey), secretKey: pulumi.secret(os.keys.secretKey) },
    };
}

/** A workstation's way to the push port: the NodePort, or a port-forward to localhost:<port>. */
function pushEndpointOf(s: Settings): string {
    return s.nodePort ? `<node address>:${s.nodePort}` : `localhost:${s.port}`;
}

function pushHostOf(s: Settings): string {
    return `${serviceDnsNames(s.serviceName, s.namespace, s.clusterDomain)[3]}:${s.pushPort}`;
}

function pushHelpOf(s: Settings): string {
    const help = ENVIRONMENTS[s.environment].pushHelp;
    return s.nodePort
        ? `push to <node address>:${s.nodePort} (NodePort on the push port); ${help}`
        : `kubectl -n ${s.namespace} port-forward svc/${s.serviceName} ${s.port}:${s.pushPort}, then push to localhost:${s.port} (${help})`;
}

/** What the hosted registry's push container does besides taking pushes. */
function pushMaintenance(s: Settings): PushMaintenanceArgs {
    return {
        gcSchedule: s.gcSchedule,
        gcDeleteUntagged: s.gcDeleteUntagged,
        pushDeletes: s.pushDeletes,
        // 100 is "no warning".
        fillWarnPercent: s.registryFillWarnPercent === 100 ? undefined : s.registryFillWarnPercent,
    };
}
