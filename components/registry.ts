/** One distribution registry in the cluster: hosted (takes pushes) or a pull-through cache of one upstream. */
import * as net from "node:net";
import * as fs from "node:fs";
import * as path from "node:path";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { CertificateAuthority, ServerCertificate } from "./pki";
import { contentChecksum } from "./render/checksum";
import { EVICTION_SCRIPT, HEALTH_PATH, LOOPBACK, METRICS_PATH, READINESS_SCRIPT, renderRegistryConfig, S3StorageInput } from "./render/registry-config";
import { CHECKSUM_ANNOTATION, FIELD_MANAGER_ANNOTATION, keptFieldManager, PART_OF, PATCH_FORCE_ANNOTATION } from "./labels";
import { COALESCER_BACKEND_PORT, COALESCER_METRICS_PORT, COALESCER_METRICS_PORT_NAME, coalescerConfig, NGINX_CONFIG_FILE, withCoalescer } from "./coalescer";
import { serviceDnsNames } from "./names";
import { COALESCER_MAX_KIB } from "./render/nginx-config";
import { storageQuantityBytes } from "./validators";
import { RegistryPlacement, withPlacement } from "./render/placement";
import { renderPushSupervisorSettings } from "./render/push-supervisor";
import { renderFillRule } from "./render/prometheus-rule";

/** Port the registry listens on inside its pod; the Service maps its own port to this one. */
export const REGISTRY_CONTAINER_PORT = 5000;
/** Port of distribution's debug listener (metrics, health, pprof) inside the pod, and of the metrics Service if any. */
export const REGISTRY_DEBUG_PORT = 5001;
/** The hosted registry's read-write container: where it takes pushes inside the pod. */
export const REGISTRY_PUSH_CONTAINER_PORT = 5002;
/** The read-write container's own debug listener (its health check; containers in a pod share ports): loopback only, always. */
export const REGISTRY_PUSH_DEBUG_PORT = 5003;
/** The config files in a registry's ConfigMap: the pull (for a cache, the only) one, and the push one. */
export const CONFIG_FILES = {
    pull: "config.yml",
    push: "push.yml",
    /** The read-only registry that answers the push port while garbage is collected. */
    pushReadOnly: "push-readonly.yml",
    /** The push container's supervisor script and its settings. */
    supervisor: "push-supervisor.sh",
    supervisorSettings: "push-supervisor.conf",
} as const;
/**
 * Environment every registry container gets: distribution 3.0 images export OpenTelemetry traces to
 * localhost:4318 unless told not to, which in a pod only fills the log with connection errors.
 */
export const REGISTRY_ENV: readonly k8s.types.input.core.v1.EnvVar[] = [{ name: "OTEL_TRACES_EXPORTER", value: "none" }];
/** Where the pod finds what it mounts. Tests rebase these onto a temp dir to run the real registry. */
export const MOUNTS = {
    config: "/etc/registry/config",
    tls: "/etc/registry/tls",
    auth: "/etc/registry/auth",
    pushAuth: "/etc/registry/push-auth",
    storage: "/var/lib/registry",
    tmp: "/tmp",
} as const;
/**
 * How a registry stops: kubelet runs the preStop sleep first, so kube-proxy on every node drops the
 * pod's endpoint before the listener closes; then SIGTERM, and distribution finishes in-flight
 * transfers for up to `drainSeconds` (http.draintimeout); the grace period covers both.
 */
export const GRACEFUL_STOP = { preStopSeconds: 10, drainSeconds: 60, gracePeriodSeconds: 80 } as const;
/** The key of `http.secret` in a registry's own Secret, delivered as REGISTRY_HTTP_SECRET. */
export const HTTP_SECRET_KEY = "http-secret";

/** Marks a registry's metrics Service, which its ServiceMonitor selects. */
export const METRICS_LABEL = "cluster-registry/metrics";

/** `<service>-metrics`, kept a DNS label (63 characters at most). */
export function metricsServiceName(serviceName: string): string {
    return `${serviceName.slice(0, 63 - "-metrics".length).replace(/-+$/, "")}-metrics`;
}

/** Whether the pull container's debug listener takes connections from other pods (Prometheus). */
export function metricsExposed(args: Pick<RegistryArgs, "metricsFrom">): boolean {
    return (args.metricsFrom?.length ?? 0) > 0;
}

/**
 * Whether the cache's nginx serves its eviction loop's counters: only a cache with a fill limit has the
 * loop (and so the file), and only one with a coalescer has nginx; without it they stay in the evict
 * container's log and the file on the volume.
 */
export function evictionMetricsServed(args: Pick<RegistryArgs, "proxy" | "coalescer" | "maxFillPercent" | "push">): boolean {
    return !!args.proxy && !!args.coalescer && !args.push && args.maxFillPercent !== undefined;
}

/** The non-root user the registry runs as; fsGroup makes the volume writable for it. */
export const REGISTRY_UID = 1000;

/** The restricted pod security profile, shared by every registry pod. */
export const RESTRICTED_CONTAINER_SECURITY: k8s.types.input.core.v1.SecurityContext = {
    runAsNonRoot: true,
    runAsUser: REGISTRY_UID,
    runAsGroup: REGISTRY_UID,
    readOnlyRootFilesystem: true,
    allowPrivilegeEscalation: false,
    capabilities: { drop: ["ALL"] },
    seccompProfile: { type: "RuntimeDefault" },
};

export interface RegistryProxyArgs {
    /** Upstream URL, e.g. `https://registry-1.docker.io`. */
    remoteUrl: string;
    /** How long cached content is kept, e.g. `168h`. */
    ttl: string;
    /** Upstream user name and password, for upstreams that limit anonymous pulls (secret). */
    credentials?: { username: pulumi.Input<string>; password: pulumi.Input<string> };
    /** HTTPS_PROXY, HTTP_PROXY and NO_PROXY for the upstream client (see preloaded.ts). Default: none. */
    egressEnv?: k8s.types.input.core.v1.EnvVar[];
}

/** What the hosted registry's push container does besides taking pushes (its supervisor script). */
export interface PushMaintenanceArgs {
    /** `off`, `manual` (on SIGUSR1 only) or `HH:MM` (UTC, daily): when garbage is collected. */
    gcSchedule: string;
    /** Collect manifests no tag points at (`--delete-untagged`), which pods may still pull by digest. */
    gcDeleteUntagged: boolean;
    /** Users may delete tags and manifests on the push port (never on the read-only pull port). */
    pushDeletes: boolean;
    /** Log a warning while the volume is at least this full, in percent. Default: no warning. */
    fillWarnPercent?: number;
}

/** An htpasswd Secret (key `htpasswd`) and its content, for the rollout checksum. */
export interface HtpasswdRef {
    secretName: pulumi.Input<string>;
    content: pulumi.Input<string>;
}

/**
 * The read-write Deployment's rollout on object storage. With garbage collection on it is
 * `Recreate`: a surge pod's writer would take pushes beside the old pod's, and a collection in one
 * while the other writes can lose blobs (no shared filesystem to lock, unlike the volume). Pushes are
 * then refused (no endpoint) for the seconds of a rollout; pulls, on the other Deployment, go on.
 *
 * Switching a push Deployment that rolled with RollingUpdate to Recreate may be refused once by the API
 * server (`spec.strategy.rollingUpdate: Forbidden`, pulumi/pulumi-kubernetes#2843, open): the old
 * `rollingUpdate` stays on the object. Sending `rollingUpdate: null` does not help: the provider's Check
 * unmarshals the inputs with `SkipNulls: true` (provider/pkg/provider/provider.go), so the null never
 * reaches the API. README (What happens to a stack that upgrades) gives the one-time `kubectl patch`.
 */
export function pushStrategyOnObjectStorage(args: Pick<RegistryArgs, "push">): typeof SURGE_FIRST | { type: "Recreate" } {
    return collectsGarbage(args) ? { type: "Recreate" } : SURGE_FIRST;
}

/** What one registry is built from; ClusterRegistry passes resolved settings, so nothing here has a default of its own but the optional parts. */
export interface RegistryArgs {
    /** Namespace to run in. */
    namespace: pulumi.Input<string>;
    /** The Service's name: part of the registry's DNS name, so it is set, not generated. */
    serviceName: string;
    /** Service port. */
    port: number;
    /** NodePort to also expose it on. Default: none (ClusterIP only). */
    nodePort?: number;
    /** Cluster DNS domain. */
    clusterDomain: string;
    /** Extra DNS names for the certificate. Default: none. */
    extraDnsNames?: string[];
    /** Extra IP addresses for the certificate. Default: none. */
    extraIpAddresses?: string[];
    /** The CA that signs the registry's certificate. */
    ca: CertificateAuthority;
    /** Certificate validity in hours. */
    certValidityHours: number;
    /** Hours before expiry at which `pulumi up` renews the certificate. */
    certEarlyRenewalHours: number;
    /** Registry image. */
    image: string;
    /** StorageClass of the volume. Default: the cluster's default class. */
    storageClass?: string;
    /** Size of the volume, e.g. `10Gi`. */
    storageSize: string;
    /** Keep the data in this node directory instead of a volume (kind caches that outlive the cluster). Default: a PVC. */
    hostPath?: string;
    /** htpasswd authentication of pulls: the Secret's name and its content (for the rollout checksum). Default: anonymous. */
    htpasswd?: HtpasswdRef;
    /**
     * Take pushes on a port of their own: a second, read-write container over the same volume, with
     * its own htpasswd (pushers only), while the registry port's container turns read-only. Hosted only.
     * Default: none (a cache, which takes no pushes).
     */
    push?: { port: number; htpasswd: HtpasswdRef; maintenance?: PushMaintenanceArgs };
    /** Pull-through cache of one upstream. Default: a hosted registry. */
    proxy?: RegistryProxyArgs;
    /** A cache's nginx in front, coalescing concurrent misses (coalescer.ts): its image. Default: none. */
    coalescer?: { image: string };
    /**
     * Once what a cache holds (`du` of its storage) reaches this percent of `storageSize`, it deletes its
     * oldest blobs not read in the last pass until it is {@link EVICTION_MARGIN_PERCENT} points under
     * (fetching them again when pulled); it never leaves its Service for being full. Default: never (a
     * full volume then fails fetches).
     */
    maxFillPercent?: number;
    /**
     * Namespaces whose pods may reach the pull container's debug listener (Prometheus): it then listens
     * on the pod's address, behind a metrics Service and a NetworkPolicy admitting only these, and so do
     * a cache's eviction counters on its coalescer ({@link evictionMetricsServed}). Default: none
     * (loopback only, no metrics Service).
     */
    metricsFrom?: string[];
    /** Also create a Prometheus Operator ServiceMonitor for the metrics Service (needs `metricsFrom`). Default: false. */
    serviceMonitor?: boolean;
    /**
     * A Prometheus Operator PrometheusRule alerting on the volume's fill level from kubelet's volume
     * metrics: a warning at `warnPercent` (absent: none) and a critical alert near full. Only on a claim:
     * a node directory or a bucket has no claim for kubelet to measure. Default: none.
     */
    fillAlert?: { warnPercent?: number };
    /** Keep the volume's claim when the stack is destroyed (`retainOnDelete`). Default: false. */
    retainVolume?: boolean;
    /** Run on this existing claim, created and deleted by nobody here. Default: a claim of its own. */
    existingClaim?: string;
    /** Let a change Kubernetes can only make by replacing the claim give the registry a new, empty volume. Default: false. */
    allowVolumeReplacement?: boolean;
    /** How messages name settings: `cluster-registry:` for a stack's keys. Default: "" (ClusterRegistry's argument names). */
    settingPrefix?: string;
    /** Resources, nodeSelector, tolerations and priorityClassName of the pod. Default: as `registryPodSpec` makes it. */
    placement?: RegistryPlacement;
    /**
     * Keep the images in a bucket instead of a volume (hosted only): the read-only and read-write
     * registries then run as Deployments of their own. Default: the volume.
     */
    objectStorage?: ObjectStorageArgs;
}

/** A hosted registry on S3 or an S3-compatible store. */
export interface ObjectStorageArgs {
    /** The S3 driver's settings. */
    s3: S3StorageInput;
    /** Pods of the read-only (pull) Deployment. */
    pullReplicas: number;
    /** Name of the registry's own ServiceAccount, which IRSA or an EKS Pod Identity association gives the bucket's role. */
    serviceAccountName: string;
    /** IAM role for IRSA, annotated on the ServiceAccount. Default: none (EKS Pod Identity, or keys). */
    roleArn?: string;
    /** Static keys for stores that need them, from a Secret. Default: none (the pod's identity). */
    keys?: { accessKey: pulumi.Input<string>; secretKey: pulumi.Input<string> };
}

/** Tells the read-only and read-write Deployments' pods apart on object storage. */
export const ROLE_LABEL = "cluster-registry/role";

/**
 * Fields of a PersistentVolumeClaim the Kubernetes provider can only change by replacing the claim
 * (a new, empty one first, then the old one deleted), and the setting that feeds each.
 */
export const CLAIM_REPLACING_FIELDS = [
    { path: "metadata.namespace", setting: "namespace" },
    { path: "spec.storageClassName", setting: "storageClass" },
] as const;

/**
 * Raised when a change would move a registry onto an empty volume and nobody asked for that. A
 * `ResourceError` on the claim, with no stack: Pulumi shows it under that resource, message alone.
 */
export class VolumeReplacementError extends pulumi.ResourceError {
    constructor(message: string, resource: pulumi.Resource) {
        super(message, resource, true);
        this.name = "VolumeReplacementError";
    }
}

/**
 * What the claim's state holds against what the settings ask for; a message naming each setting whose
 * change would replace the claim, and how to migrate, or undefined when nothing would.
 */
export function volumeReplacementProblem(
    claim: string,
    live: { namespace?: string; storageClassName?: string },
    desired: { namespace?: string; storageClassName?: string },
    settingPrefix = "",
): string | undefined {
    const changed = CLAIM_REPLACING_FIELDS.filter((f) => {
        const key = f.path.split(".")[1] as "namespace" | "storageClassName";
        return live[key] !== desired[key];
    });
    if (changed.length === 0) return undefined;
    const what = changed
        .map((f) => {
            const key = f.path.split(".")[1] as "namespace" | "storageClassName";
            return `${settingPrefix}${f.setting} (${JSON.stringify(live[key] ?? "")} now, ${JSON.stringify(desired[key] ?? "")} asked)`;
        })
        .join(" and ");
    return (
        `${what}: Kubernetes cannot change this on the PersistentVolumeClaim ${claim}, so the registry would move onto a new, EMPTY volume. ` +
        `Nothing was changed. To keep the images, set the old value back; to move them, copy them first (e.g. skopeo sync from the running registry ` +
        `to one on the new volume), then run pulumi up with ${settingPrefix}allowVolumeReplacement set to true, which replaces the claim (and deletes the old one unless it is kept).`
    );
}

/** Labels of one registry: the selector's, and the fuller set its objects carry. */
interface RegistryLabels {
    selector: Record<string, string>;
    meta: Record<string, string>;
}

/** A registry Deployment with its Service, volume, configuration and certificate. */
export class Registry extends pulumi.ComponentResource {
    /** The Service's ClusterIP, which nodes use instead of cluster DNS. */
    public readonly clusterIP: pulumi.Output<string>;
    /** `<svc>.<ns>.svc.<domain>:<port>`: the name in image references. */
    public readonly host: pulumi.Output<string>;
    /** `https://<clusterIP>:<port>`: where containerd on a node reaches it. */
    public readonly endpoint: pulumi.Output<string>;
    /** The registry's server certificate, PEM. */
    public readonly certPem: pulumi.Output<string>;
    /** When the server certificate expires (RFC 3339). */
    public readonly certExpiresAt: pulumi.Output<string>;

    constructor(name: string, args: RegistryArgs, opts?: pulumi.ComponentResourceOptions) {
        super("cluster-registry:index:Registry", name, {}, opts);
        const { port, clusterDomain } = args;
        // The Service name is a DNS label (at most 63 characters), as a label value must be.
        const selector = { "app.kubernetes.io/name": "registry", "app.kubernetes.io/instance": args.serviceName };
        const labels = { selector, meta: { ...selector, "app.kubernetes.io/component": args.proxy ? "cache" : "hosted", ...PART_OF } };
        const namespace = pulumi.output(args.namespace);

        const service = this.service(name, args, labels, port);
        this.clusterIP = service.spec.clusterIP;
        this.metrics(name, args, labels);
        const cert = new ServerCertificate(
            `${name}-tls`,
            {
                ca: args.ca,
                dnsNames: namespace.apply((ns) => [...serviceDnsNames(args.serviceName, ns, clusterDomain), "localhost", ...(args.extraDnsNames ?? [])]),
                ipAddresses: this.clusterIP.apply((ip) => [...new Set([ip, "127.0.0.1", ...(args.extraIpAddresses ?? [])])]),
                validityHours: args.certValidityHours,
                earlyRenewalHours: args.certEarlyRenewalHours,
            },
            { parent: this },
        );
        this.certPem = cert.certPem;
        this.certExpiresAt = cert.expiresAt;
        const tlsSecret = new k8s.core.v1.Secret(
            `${name}-tls`,
            {
                metadata: { namespace: args.namespace, labels: labels.meta },
                type: "kubernetes.io/tls",
                stringData: { "tls.crt": cert.certPem, "tls.key": cert.privateKeyPem },
            },
            { parent: this },
        );
        const configs = registryConfigsOf(args);
        const configMap = new k8s.core.v1.ConfigMap(
            `${name}-config`,
            { metadata: { namespace: args.namespace, labels: labels.meta }, data: configs },
            { parent: this },
        );
        const storage = args.objectStorage ? undefined : this.storageVolume(name, args, labels);
        this.fillAlert(name, args, labels, storage?.persistentVolumeClaim?.claimName);
        const parts: PodParts = {
            configMapName: configMap.metadata.name,
            tlsSecretName: tlsSecret.metadata.name,
            storage,
            env: [
                ...this.httpSecretEnv(name, args, labels),
                ...this.storageKeysEnv(name, args, labels),
                ...this.upstreamEnv(name, args, labels),
                ...egressEnvOf(args),
            ],
            serviceAccountName: this.storageIdentity(name, args, labels),
        };
        // Upstream credentials stay out: even hashed, a password has no place in an annotation. Their
        // Secret is replaced when they change, and its new name rolls the pod.
        // A sha256, so not a secret although the htpasswd is: left secret, it would hide the whole
        // pod template from `pulumi preview` diffs, and nobody could see why a pod rolls.
        const checksum = pulumi.unsecret(
            pulumi
                .all([cert.certPem, args.htpasswd?.content ?? "", args.push?.htpasswd.content ?? ""])
                .apply(([certPem, pull, push]) => contentChecksum([...Object.values(configs), certPem, pull, push])),
        );
        if (args.objectStorage) this.replicatedDeployments(name, args, labels, parts, checksum);
        else this.deploymentOnVolume(name, args, labels, podSpecOf(args, parts), checksum);

        this.host = namespace.apply((ns) => `${serviceDnsNames(args.serviceName, ns, clusterDomain)[3]}:${port}`);
        this.endpoint = this.clusterIP.apply((ip) => `https://${net.isIPv6(ip) ? `[${ip}]` : ip}:${port}`);
        this.registerOutputs({ clusterIP: this.clusterIP, host: this.host, endpoint: this.endpoint, certPem: this.certPem });
    }

    /** One pod (both containers) on the volume: a surge pod can only start on the node holding it. */
    private deploymentOnVolume(
        name: string,
        args: RegistryArgs,
        labels: RegistryLabels,
        pod: k8s.types.input.core.v1.PodSpec,
        checksum: pulumi.Input<string>,
    ): void {
        new k8s.apps.v1.Deployment(
            `${name}`,
            {
                metadata: { namespace: args.namespace, labels: labels.meta },
                spec: {
                    replicas: 1,
                    strategy: SURGE_FIRST,
                    selector: { matchLabels: labels.selector },
                    template: {
                        metadata: { labels: labels.meta, annotations: { [CHECKSUM_ANNOTATION]: checksum } },
                        spec: { ...pod, affinity: besideItsVolume(labels.selector) },
                    },
                },
            },
            { parent: this },
        );
    }

    /**
     * On object storage nothing ties a pod to a node: the read-only registry scales out on a Deployment
     * of its own, spread over nodes and zones, and the read-write one rolls on another. The one
     * Service selects both; each port reaches only the pods whose container names that port.
     */
    private replicatedDeployments(name: string, args: RegistryArgs, labels: RegistryLabels, parts: PodParts, checksum: pulumi.Input<string>): void {
        const roles = [
            { role: "pull", logicalName: name, replicas: args.objectStorage?.pullReplicas ?? 1, spec: podSpecOf(args, parts, "pull"), strategy: SURGE_FIRST },
            { role: "push", logicalName: `${name}-push`, replicas: 1, spec: podSpecOf(args, parts, "push"), strategy: pushStrategyOnObjectStorage(args) },
        ];
        for (const r of roles) {
            const selector = { ...labels.selector, [ROLE_LABEL]: r.role };
            const meta = { ...labels.meta, [ROLE_LABEL]: r.role };
            new k8s.apps.v1.Deployment(
                r.logicalName,
                {
                    metadata: { namespace: args.namespace, labels: meta },
                    spec: {
                        replicas: r.replicas,
                        strategy: r.strategy,
                        selector: { matchLabels: selector },
                        template: {
                            metadata: { labels: meta, annotations: { [CHECKSUM_ANNOTATION]: checksum } },
                            spec: { ...r.spec, topologySpreadConstraints: spreadOver(selector) },
                        },
                    },
                },
                { parent: this },
            );
            // A budget for one pod would block every node drain: only where there are several.
            if (r.replicas < 2) continue;
            new k8s.policy.v1.PodDisruptionBudget(
                `${r.logicalName}-disruption`,
                { metadata: { namespace: args.namespace, labels: meta }, spec: { maxUnavailable: 1, selector: { matchLabels: selector } } },
                { parent: this },
            );
        }
    }

    /**
     * The registry's own ServiceAccount on object storage, which IRSA (the annotation) or an EKS Pod
     * Identity association (by its name) gives the bucket's role: no static key on EKS.
     */
    private storageIdentity(name: string, args: RegistryArgs, labels: RegistryLabels): pulumi.Output<string> | undefined {
        const os = args.objectStorage;
        if (!os) return undefined;
        const account = new k8s.core.v1.ServiceAccount(
            `${name}-storage-identity`,
            {
                metadata: {
                    name: os.serviceAccountName,
                    namespace: args.namespace,
                    labels: labels.meta,
                    ...(os.roleArn ? { annotations: { "eks.amazonaws.com/role-arn": os.roleArn } } : {}),
                },
                // The AWS webhooks project their own token; the API token is not needed.
                automountServiceAccountToken: false,
            },
            { parent: this },
        );
        return account.metadata.name;
    }

    /** Static keys for a store that needs them, as the S3 driver's env from a Secret of their own. */
    private storageKeysEnv(name: string, args: RegistryArgs, labels: RegistryLabels): k8s.types.input.core.v1.EnvVar[] {
        const keys = args.objectStorage?.keys;
        if (!keys) return [];
        const secret = new k8s.core.v1.Secret(
            `${name}-storage-keys`,
            {
                metadata: { namespace: args.namespace, labels: labels.meta },
                type: "Opaque",
                stringData: { accesskey: keys.accessKey, secretkey: keys.secretKey },
            },
            { parent: this },
        );
        const fromSecret = (key: string) => ({ secretKeyRef: { name: secret.metadata.name, key } });
        return [
            { name: "REGISTRY_STORAGE_S3_ACCESSKEY", valueFrom: fromSecret("accesskey") },
            { name: "REGISTRY_STORAGE_S3_SECRETKEY", valueFrom: fromSecret("secretkey") },
        ];
    }

    private service(name: string, args: RegistryArgs, labels: RegistryLabels, port: number): k8s.core.v1.Service {
        const ports = [
            { name: "registry", port, targetPort: "registry", protocol: "TCP" },
            ...(args.push ? [{ name: "push", port: args.push.port, targetPort: "push", protocol: "TCP" }] : []),
        ];
        if (args.nodePort) this.nodePortService(name, args, labels);
        return new k8s.core.v1.Service(
            `${name}-service`,
            {
                metadata: {
                    name: args.serviceName,
                    namespace: args.namespace,
                    labels: labels.meta,
                    // The certificate needs this Service's ClusterIP, and the Deployment needs the
                    // certificate: waiting here for endpoints (the provider's default) would deadlock.
                    annotations: { "pulumi.com/skipAwait": "true" },
                },
                spec: { type: "ClusterIP", selector: labels.selector, ports },
            },
            { parent: this },
        );
    }

    /**
     * The NodePort on a Service of its own that lists only the push port (the registry port without
     * one): a NodePort Service gives every port it lists a port on every node.
     */
    private nodePortService(name: string, args: RegistryArgs, labels: RegistryLabels): void {
        const target = args.push ? { name: "push", port: args.push.port, targetPort: "push" } : { name: "registry", port: args.port, targetPort: "registry" };
        new k8s.core.v1.Service(
            `${name}-node-port`,
            {
                metadata: {
                    name: `${args.serviceName}-node-port`.slice(0, 63),
                    namespace: args.namespace,
                    labels: labels.meta,
                    annotations: { "pulumi.com/skipAwait": "true" },
                },
                spec: { type: "NodePort", selector: labels.selector, ports: [{ ...target, protocol: "TCP", nodePort: args.nodePort }] },
            },
            { parent: this },
        );
    }

    /**
     * Prometheus metrics on a ClusterIP Service of their own, when asked for: a NodePort Service exposes
     * every port it lists, and the debug listener also serves pprof and expvar.
     */
    private metrics(name: string, args: RegistryArgs, labels: RegistryLabels): void {
        if (!metricsExposed(args)) return;
        this.debugPortPolicy(name, args, labels);
        const metricsLabels = { ...labels.meta, [METRICS_LABEL]: "true" };
        new k8s.core.v1.Service(
            `${name}-metrics`,
            {
                metadata: {
                    name: metricsServiceName(args.serviceName),
                    namespace: args.namespace,
                    labels: metricsLabels,
                    annotations: { "pulumi.com/skipAwait": "true" },
                },
                spec: {
                    type: "ClusterIP",
                    selector: labels.selector,
                    ports: [
                        { name: "metrics", port: REGISTRY_DEBUG_PORT, targetPort: "metrics", protocol: "TCP" },
                        ...(evictionMetricsServed(args)
                            ? [{ name: COALESCER_METRICS_PORT_NAME, port: COALESCER_METRICS_PORT, targetPort: COALESCER_METRICS_PORT_NAME, protocol: "TCP" }]
                            : []),
                    ],
                },
            },
            { parent: this },
        );
        if (!args.serviceMonitor) return;
        new k8s.apiextensions.CustomResource(
            `${name}-service-monitor`,
            {
                apiVersion: "monitoring.coreos.com/v1",
                kind: "ServiceMonitor",
                metadata: { namespace: args.namespace, labels: labels.meta },
                spec: {
                    selector: { matchLabels: { ...labels.selector, [METRICS_LABEL]: "true" } },
                    endpoints: [
                        { port: "metrics", path: METRICS_PATH, scheme: "http", interval: "30s" },
                        ...(evictionMetricsServed(args) ? [{ port: COALESCER_METRICS_PORT_NAME, path: METRICS_PATH, scheme: "http", interval: "30s" }] : []),
                    ],
                },
            },
            { parent: this },
        );
    }

    /**
     * The fill-level alert, rendered from the claim's actual name (kubelet's metrics carry only the
     * namespace and the claim's name, no label of ours to select on).
     */
    private fillAlert(name: string, args: RegistryArgs, labels: RegistryLabels, claimName: pulumi.Input<string> | undefined): void {
        if (!args.fillAlert || claimName === undefined) return;
        const warnPercent = args.fillAlert.warnPercent;
        new k8s.apiextensions.CustomResource(
            `${name}-fill-alert`,
            {
                apiVersion: "monitoring.coreos.com/v1",
                kind: "PrometheusRule",
                metadata: { namespace: args.namespace, labels: labels.meta },
                spec: pulumi
                    .all([args.namespace, claimName])
                    .apply(([namespace, claim]) => renderFillRule({ namespace, claim, registry: args.serviceName, warnPercent })),
            },
            { parent: this },
        );
    }

    /**
     * `http.secret` from a random secret kept in the state (so an unchanged `up` never rotates it and
     * never rolls the pods): every replica and the surge pod of a rollout sign and check upload state
     * with the same key. In a Secret, never in the ConfigMap's config.yml.
     */
    private httpSecretEnv(name: string, args: RegistryArgs, labels: RegistryLabels): k8s.types.input.core.v1.EnvVar[] {
        const value = new random.RandomPassword(`${name}-http-secret`, { length: 48, special: false }, { parent: this });
        const secret = new k8s.core.v1.Secret(
            `${name}-http`,
            { metadata: { namespace: args.namespace, labels: labels.meta }, type: "Opaque", stringData: { [HTTP_SECRET_KEY]: value.result } },
            { parent: this },
        );
        return [{ name: "REGISTRY_HTTP_SECRET", valueFrom: { secretKeyRef: { name: secret.metadata.name, key: HTTP_SECRET_KEY } } }];
    }

    /**
     * Once a NetworkPolicy selects a pod, it admits only what one allows: the registry ports from
     * anywhere (pods, nodes, kubelet's liveness probe), the debug port (and a cache's eviction counters
     * on its nginx) from `metricsFrom` alone.
     */
    private debugPortPolicy(name: string, args: RegistryArgs, labels: RegistryLabels): void {
        const servicePorts = [REGISTRY_CONTAINER_PORT, ...(args.push ? [REGISTRY_PUSH_CONTAINER_PORT] : [])];
        const namespaceSelector = { matchExpressions: [{ key: "kubernetes.io/metadata.name", operator: "In", values: [...(args.metricsFrom ?? [])] }] };
        new k8s.networking.v1.NetworkPolicy(
            `${name}-ingress`,
            {
                metadata: { namespace: args.namespace, labels: labels.meta },
                spec: {
                    podSelector: { matchLabels: labels.selector },
                    policyTypes: ["Ingress"],
                    ingress: [
                        { ports: servicePorts.map((port) => ({ port, protocol: "TCP" })) },
                        {
                            from: [{ namespaceSelector }],
                            ports: [REGISTRY_DEBUG_PORT, ...(evictionMetricsServed(args) ? [COALESCER_METRICS_PORT] : [])].map((port) => ({
                                port,
                                protocol: "TCP",
                            })),
                        },
                    ],
                },
            },
            { parent: this },
        );
    }

    /** A cache's upstream credentials, as env from a Secret of their own. */
    private upstreamEnv(name: string, args: RegistryArgs, labels: RegistryLabels): k8s.types.input.core.v1.EnvVar[] {
        const creds = args.proxy?.credentials;
        if (!creds) return [];
        const secret = new k8s.core.v1.Secret(
            `${name}-upstream`,
            {
                metadata: { namespace: args.namespace, labels: labels.meta },
                type: "Opaque",
                stringData: { username: creds.username, password: creds.password },
            },
            { parent: this },
        );
        // From a Secret, not config.yml: the ConfigMap is readable by anyone who can list pods' config.
        const fromSecret = (key: string) => ({ secretKeyRef: { name: secret.metadata.name, key } });
        return [
            { name: "REGISTRY_PROXY_USERNAME", valueFrom: fromSecret("username") },
            { name: "REGISTRY_PROXY_PASSWORD", valueFrom: fromSecret("password") },
        ];
    }

    /** The registry's storage: a node directory (kind caches) or a PersistentVolumeClaim. */
    private storageVolume(name: string, args: RegistryArgs, labels: RegistryLabels): StorageVolume {
        if (args.hostPath) return { name: "storage", hostPath: { path: args.hostPath, type: "DirectoryOrCreate" } };
        if (args.existingClaim) return { name: "storage", persistentVolumeClaim: { claimName: args.existingClaim } };
        const allowReplacement = args.allowVolumeReplacement ?? false;
        const spec = {
            accessModes: ["ReadWriteOnce"],
            ...(args.storageClass ? { storageClassName: args.storageClass } : {}),
            resources: { requests: { storage: args.storageSize } },
        };
        // The engine keeps the claim's old values for these, so it is never replaced; the guard
        // below compares them with what is asked and stops `pulumi up` with a message instead.
        const guarded = allowReplacement ? [] : CLAIM_REPLACING_FIELDS.map((f) => f.path);
        const claim =
            args.retainVolume && !allowReplacement
                ? keptClaim(name, args, labels, spec, guarded, { parent: this })
                : new k8s.core.v1.PersistentVolumeClaim(
                      `${name}-storage`,
                      { metadata: { namespace: args.namespace, labels: labels.meta }, spec },
                      {
                          parent: this,
                          retainOnDelete: args.retainVolume ?? false,
                          // Turning retainVolume off moves a kept claim's state back here (a replacement is asked
                          // for: no alias). Its name must come along by ignoreChanges, which the engine applies
                          // before the provider's Check: the Check keeps an unnamed object's old name only when
                          // the old inputs carry `pulumi.com/autonamed: "true"` (pulumi-kubernetes
                          // provider/pkg/metadata/naming.go `AdoptOldAutonameIfUnnamed`, `IsAutonamed(oldObj)`),
                          // which a Patch's (named by us) never do, and would otherwise draw a new name: a
                          // replace onto an EMPTY claim. The claim's own (auto-named) state keeps its name
                          // either way; a new stack's first create has no state, so gets `<name>-storage-<random>`.
                          // The cost: a name kept this way is not marked auto-named (Check marks only names it
                          // draws or adopts, and refuses the annotation from the program as internal), so with
                          // allowVolumeReplacement (no ignoreChanges) a new name is drawn: a replace, as its
                          // description says (test/unit/cluster-registry.lifecycle.test.ts).
                          ignoreChanges: allowReplacement ? [] : ["metadata.name", ...guarded],
                          aliases: allowReplacement ? [] : [{ type: "kubernetes:core/v1:PersistentVolumeClaimPatch" }],
                      },
                  );
        if (allowReplacement) return { name: "storage", persistentVolumeClaim: { claimName: claim.metadata.apply((m) => m.name!) } };
        // The Deployment waits on this: a refused change registers no Deployment on another volume.
        const claimName = pulumi.all([claim.metadata, claim.spec, args.namespace]).apply(([metadata, claimSpec, namespace]) => {
            const problem = volumeReplacementProblem(
                `${metadata.namespace}/${metadata.name}`,
                { namespace: metadata.namespace, storageClassName: claimSpec?.storageClassName },
                { namespace, storageClassName: args.storageClass },
                args.settingPrefix,
            );
            if (problem) throw new VolumeReplacementError(problem, claim);
            return metadata.name!;
        });
        return { name: "storage", persistentVolumeClaim: { claimName } };
    }
}

/** The kept claim's name: fixed, so the next stack finds the claim an earlier one's `pulumi destroy` kept. */
export function keptClaimName(serviceName: string): string {
    return `${serviceName}-storage`;
}

/**
 * A claim that outlives the stack (`retainVolume`), taken over by the next one: a server-side apply
 * (PersistentVolumeClaimPatch) of a claim named {@link keptClaimName}, which creates it when missing and
 * takes over the one `pulumi destroy` kept, where a PersistentVolumeClaim resource's client-side create
 * fails with AlreadyExists (pulumi-kubernetes since v4.29.0: see keptNamespace in cluster-registry.ts).
 * Forced (`pulumi.com/patchForce`, read by the provider's `patchForce` in provider/pkg/provider/provider.go):
 * after an upgrade (below) `spec.resources.requests.storage` is owned by the old version's field manager,
 * so an unforced apply of a grown `storageSize` would fail with a field conflict; forced, the claim is
 * resized in place. The name is this installation's (`<serviceName>-storage`); a claim of that name whose
 * class or access modes differ (immutable) still fails the `up` at the API server instead of changing.
 *
 * Upgrading: the stack's claim so far was a PersistentVolumeClaim resource named by the provider
 * (`<name>-storage-<8 hex>`). The alias moves its state here (the engine matches aliases across types,
 * pulumi#2774), and `ignoreChanges: ["metadata.name"]` keeps that name from the state, so the apply goes
 * to the same claim and nothing is replaced. Were the provider to plan a replacement all the same, the
 * old state's `retainOnDelete` (set whenever retainVolume was) keeps the old claim from being deleted.
 * `retainOnDelete` here too: `pulumi destroy` leaves the claim untouched; a Patch's delete un-applies its
 * fields (pulumi/pulumi-kubernetes#2149, #2253), which a claim's immutable spec would refuse.
 */
function keptClaim(
    name: string,
    args: RegistryArgs,
    labels: RegistryLabels,
    spec: k8s.types.input.core.v1.PersistentVolumeClaimSpecPatch,
    guarded: string[],
    opts: pulumi.CustomResourceOptions,
): k8s.core.v1.PersistentVolumeClaimPatch {
    return new k8s.core.v1.PersistentVolumeClaimPatch(
        `${name}-storage`,
        {
            metadata: {
                name: keptClaimName(args.serviceName),
                namespace: args.namespace,
                labels: labels.meta,
                annotations: { [FIELD_MANAGER_ANNOTATION]: keptFieldManager(args.serviceName), [PATCH_FORCE_ANNOTATION]: "true" },
            },
            spec,
        },
        {
            ...opts,
            retainOnDelete: true,
            aliases: [{ type: "kubernetes:core/v1:PersistentVolumeClaim" }],
            ignoreChanges: ["metadata.name", ...guarded],
        },
    );
}

/** A cache's way out through a proxy: only caches talk to upstreams. */
function egressEnvOf(args: Pick<RegistryArgs, "proxy">): k8s.types.input.core.v1.EnvVar[] {
    return args.proxy?.egressEnv ?? [];
}

/**
 * The ConfigMap's config files, with the pod's mount paths: `config.yml`, and with a push port,
 * `push.yml` for the read-write container while `config.yml` turns read-only.
 */
export function registryConfigsOf(
    args: Pick<RegistryArgs, "htpasswd" | "proxy" | "push" | "coalescer" | "objectStorage" | "metricsFrom" | "maxFillPercent"> &
        Partial<Pick<RegistryArgs, "storageSize">>,
): Record<string, string> {
    // Only a cache has misses to coalesce, and the push port has no place behind nginx.
    if (args.coalescer && (!args.proxy || args.push)) throw new Error("a coalescer is for a cache (proxy) without a push port");
    const common = {
        s3: args.objectStorage?.s3,
        storageRoot: MOUNTS.storage,
        drainTimeout: `${GRACEFUL_STOP.drainSeconds}s`,
        tls: { certificate: `${MOUNTS.tls}/tls.crt`, key: `${MOUNTS.tls}/tls.key` },
        proxy: args.proxy ? { remoteUrl: args.proxy.remoteUrl, ttl: args.proxy.ttl } : undefined,
        descriptorCache: !collectsGarbage(args),
    };
    const pull = renderRegistryConfig({
        ...common,
        port: args.coalescer ? COALESCER_BACKEND_PORT : REGISTRY_CONTAINER_PORT,
        debugPort: REGISTRY_DEBUG_PORT,
        debugOnPodAddress: metricsExposed(args),
        htpasswd: args.htpasswd ? { realm: "cluster-registry", path: `${MOUNTS.auth}/htpasswd` } : undefined,
        readOnly: !!args.push,
    });
    if (args.coalescer)
        return {
            [CONFIG_FILES.pull]: pull,
            [NGINX_CONFIG_FILE]: coalescerConfig(
                { port: REGISTRY_CONTAINER_PORT, mounts: MOUNTS },
                !!args.htpasswd,
                args.proxy?.ttl ?? "0",
                args.maxFillPercent === undefined || args.storageSize === undefined
                    ? undefined
                    : evictionThresholds(args.storageSize, args.maxFillPercent).coalescerKiB,
                evictionMetricsServed(args) ? { onPodAddress: metricsExposed(args) } : undefined,
            ),
        };
    if (!args.push) return { [CONFIG_FILES.pull]: pull };
    const push = renderRegistryConfig({
        ...common,
        port: REGISTRY_PUSH_CONTAINER_PORT,
        debugPort: REGISTRY_PUSH_DEBUG_PORT,
        htpasswd: { realm: "cluster-registry-push", path: `${MOUNTS.pushAuth}/htpasswd` },
        deletes: args.push.maintenance?.pushDeletes,
    });
    return { [CONFIG_FILES.pull]: pull, [CONFIG_FILES.push]: push, ...pushSupervisorFiles(args, common) };
}

/**
 * A rollout starts the new pod and waits until it is ready before the old one stops, so the Service
 * always has a ready endpoint.
 */
export const SURGE_FIRST = { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } } as const;

/**
 * A ReadWriteOnce volume (or a node directory) is per node, not per pod: the surge pod must run on
 * the node that holds it, i.e. beside the registry's own running pod. The scheduler lets the first
 * pod of a self-affine set go anywhere.
 */
/**
 * Replicas on different nodes (required: a node's loss takes one) and, where nodes carry zones,
 * different zones (preferred: nodes without the label still schedule). Only the current template's
 * pods count, so a rollout's surge pod is not pushed away by the pods it replaces.
 */
export function spreadOver(selector: Record<string, string>): k8s.types.input.core.v1.TopologySpreadConstraint[] {
    return [
        { topologyKey: "kubernetes.io/hostname", whenUnsatisfiable: "DoNotSchedule" },
        { topologyKey: "topology.kubernetes.io/zone", whenUnsatisfiable: "ScheduleAnyway" },
    ].map((c) => ({ ...c, maxSkew: 1, labelSelector: { matchLabels: selector }, matchLabelKeys: ["pod-template-hash"] }));
}

export function besideItsVolume(selector: Record<string, string>): k8s.types.input.core.v1.Affinity {
    return {
        podAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: { matchLabels: selector }, topologyKey: "kubernetes.io/hostname" }],
        },
    };
}

/** What the pod spec refers to that other resources provide. */
/** A registry's storage volume: a node directory, or a claim whose name the fill alert needs. */
type StorageVolume = k8s.types.input.core.v1.Volume & { persistentVolumeClaim?: { claimName: pulumi.Input<string> } };

interface PodParts {
    configMapName: pulumi.Input<string>;
    tlsSecretName: pulumi.Input<string>;
    /** Absent on object storage. */
    storage?: k8s.types.input.core.v1.Volume;
    /** Every container's: http.secret, storage keys, (a cache's) upstream credentials. */
    env: k8s.types.input.core.v1.EnvVar[];
    /** The registry's own ServiceAccount (object storage). Default: the namespace's default, with no token. */
    serviceAccountName?: pulumi.Input<string>;
}

/** Which containers a pod runs: both over one volume, or one of them on object storage. */
export type PodRole = "both" | "pull" | "push";

/** The registry pod, with a cache's coalescer in front when it has one. */
export function podSpecOf(args: RegistryArgs, parts: PodParts, role: PodRole = "both"): k8s.types.input.core.v1.PodSpec {
    const pod = registryPodSpec(args, parts, role);
    if (!args.coalescer) return pod;
    return withCoalescer(pod, {
        image: args.coalescer.image,
        port: REGISTRY_CONTAINER_PORT,
        mounts: MOUNTS,
        security: RESTRICTED_CONTAINER_SECURITY,
        preStopSeconds: GRACEFUL_STOP.preStopSeconds,
        metricsPort: metricsExposed(args) && evictionMetricsServed(args),
    });
}

/** The registry pod: restricted security, the config, certificate, storage and (hosted) htpasswd mounts. */
export function registryPodSpec(args: RegistryArgs, parts: PodParts, role: PodRole = "both"): k8s.types.input.core.v1.PodSpec {
    const { volumes, mounts } = registryVolumes(args, parts);
    return withPlacement(basePodSpec(args, parts, role, mounts, volumes), args.placement);
}

/** The pod before the platform team's placement (resources, selector, tolerations, priority) goes on top. */
function basePodSpec(
    args: RegistryArgs,
    parts: PodParts,
    role: PodRole,
    mounts: k8s.types.input.core.v1.VolumeMount[],
    volumes: k8s.types.input.core.v1.Volume[],
): k8s.types.input.core.v1.PodSpec & { containers: k8s.types.input.core.v1.Container[] } {
    const pull = role !== "push" ? [pullContainer(args, mounts, parts.env)] : [];
    const push = args.push && role !== "pull" ? [pushContainer(args.image, mounts, parts.env)] : [];
    return {
        ...(parts.serviceAccountName ? { serviceAccountName: parts.serviceAccountName } : {}),
        automountServiceAccountToken: false,
        enableServiceLinks: false,
        terminationGracePeriodSeconds: GRACEFUL_STOP.gracePeriodSeconds,
        nodeSelector: { "kubernetes.io/os": "linux" },
        securityContext: {
            runAsNonRoot: true,
            runAsUser: REGISTRY_UID,
            runAsGroup: REGISTRY_UID,
            fsGroup: REGISTRY_UID,
            seccompProfile: { type: "RuntimeDefault" },
        },
        // fsGroup does not apply to hostPath, and kubelet creates the directory root-owned.
        initContainers: args.hostPath ? [storageOwnerContainer(args.image)] : [],
        containers: [
            ...pull,
            ...push,
            ...(args.proxy && args.maxFillPercent !== undefined && role !== "push"
                ? [evictionContainer(args.image, args.storageSize, args.maxFillPercent)]
                : []),
        ],
        volumes,
    };
}

/** The registry port's container: read-only when a push container (or Deployment) takes the writes. */
function pullContainer(
    args: RegistryArgs,
    mounts: k8s.types.input.core.v1.VolumeMount[],
    env: k8s.types.input.core.v1.EnvVar[],
): k8s.types.input.core.v1.Container {
    return {
        name: "registry",
        image: args.image,
        command: ["registry", "serve", `${MOUNTS.config}/${CONFIG_FILES.pull}`],
        ports: [
            { name: "registry", containerPort: REGISTRY_CONTAINER_PORT, protocol: "TCP" },
            ...(metricsExposed(args) ? [{ name: "metrics", containerPort: REGISTRY_DEBUG_PORT, protocol: "TCP" }] : []),
        ],
        env: [...REGISTRY_ENV, ...env],
        // The read-only container's storage is read-only to the kernel too.
        volumeMounts: args.push ? mounts.map((m) => (m.name === "storage" ? { ...m, readOnly: true } : m)) : mounts,
        // No fill limit: a cache out of its Service would fail every pull of its upstream on
        // fail-closed nodes, and a tenant can fill it by creating pods. It makes room instead.
        readinessProbe: readinessProbe(undefined, REGISTRY_DEBUG_PORT),
        lifecycle: PRE_STOP,
        livenessProbe: livenessProbe("registry"),
        resources: { requests: { cpu: "50m", memory: "64Mi" }, limits: { memory: "512Mi" } },
        securityContext: RESTRICTED_CONTAINER_SECURITY,
    };
}

/** The hosted registry's read-write container: the same image and volume, pushers' htpasswd, its own ports. */
function pushContainer(image: string, mounts: k8s.types.input.core.v1.VolumeMount[], env: k8s.types.input.core.v1.EnvVar[]): k8s.types.input.core.v1.Container {
    return {
        name: "push",
        image,
        command: PUSH_COMMAND,
        ports: [{ name: "push", containerPort: REGISTRY_PUSH_CONTAINER_PORT, protocol: "TCP" }],
        // The same http.secret as every other replica: an upload started on one pod may finish on another.
        env: [...REGISTRY_ENV, ...env],
        volumeMounts: [...mounts.filter((m) => m.name !== "auth"), { name: "push-auth", mountPath: MOUNTS.pushAuth, readOnly: true }],
        readinessProbe: readinessProbe(undefined, REGISTRY_PUSH_DEBUG_PORT),
        lifecycle: PRE_STOP,
        livenessProbe: livenessProbe("push"),
        resources: { requests: { cpu: "50m", memory: "64Mi" }, limits: { memory: "512Mi" } },
        securityContext: RESTRICTED_CONTAINER_SECURITY,
    };
}

function registryVolumes(args: RegistryArgs, parts: PodParts) {
    const volumes: k8s.types.input.core.v1.Volume[] = [
        { name: "config", configMap: { name: parts.configMapName } },
        { name: "tls", secret: { secretName: parts.tlsSecretName, defaultMode: 0o440 } },
        ...(parts.storage ? [parts.storage] : []),
        { name: "tmp", emptyDir: { sizeLimit: "64Mi" } },
    ];
    const mounts: k8s.types.input.core.v1.VolumeMount[] = [
        { name: "config", mountPath: MOUNTS.config, readOnly: true },
        { name: "tls", mountPath: MOUNTS.tls, readOnly: true },
        ...(parts.storage ? [{ name: "storage", mountPath: MOUNTS.storage }] : []),
        { name: "tmp", mountPath: MOUNTS.tmp },
    ];
    if (args.htpasswd) {
        volumes.push({ name: "auth", secret: { secretName: args.htpasswd.secretName, defaultMode: 0o440 } });
        mounts.push({ name: "auth", mountPath: MOUNTS.auth, readOnly: true });
    }
    if (args.push) volumes.push({ name: "push-auth", secret: { secretName: args.push.htpasswd.secretName, defaultMode: 0o440 } });
    return { volumes, mounts };
}

/** Kept serving while kube-proxy catches up with the endpoint's removal (the image's busybox sleep). */
const PRE_STOP: k8s.types.input.core.v1.Lifecycle = { preStop: { exec: { command: ["sleep", String(GRACEFUL_STOP.preStopSeconds)] } } };

/** How often a cache's eviction loop measures what it holds: what fetches write in this time is how far it can pass its hard mark. */
export const EVICTION_EVERY_SECONDS = 1;
/** An eviction takes a cache this many points of its size under its fill limit (but keeps at least half the limit). */
export const EVICTION_MARGIN_PERCENT = 10;

/**
 * What a cache with `storageSize` and a fill limit keeps, in KiB of what it owns: from `highKiB` on
 * it deletes its oldest blobs not read in the last pass until it is under `lowKiB`; from `hardKiB`
 * (a quarter of the way from the limit to the whole size) read ones too. Its coalescer's copies stay under
 * `coalescerKiB`, half of `lowKiB` (at most 2 GiB), so they never hold the cache above `lowKiB` by
 * themselves, where every blob would be deleted every second.
 */
export function evictionThresholds(storageSize: string, maxFillPercent: number): { highKiB: bigint; lowKiB: bigint; hardKiB: bigint; coalescerKiB: bigint } {
    const kib = storageQuantityBytes(storageSize) / 1024n;
    const lowPercent = Math.max(maxFillPercent - EVICTION_MARGIN_PERCENT, Math.floor(maxFillPercent / 2));
    const lowKiB = (kib * BigInt(lowPercent)) / 100n;
    const highKiB = (kib * BigInt(maxFillPercent)) / 100n;
    const coalescerKiB = lowKiB / 2n < BigInt(COALESCER_MAX_KIB) ? lowKiB / 2n : BigInt(COALESCER_MAX_KIB);
    return { highKiB, lowKiB, hardKiB: highKiB + (kib - highKiB) / 4n, coalescerKiB };
}

/** The command of a cache's eviction container: the image's busybox runs {@link EVICTION_SCRIPT}. */
export function evictionCommand(storageSize: string, maxFillPercent: number): string[] {
    const { highKiB, lowKiB, hardKiB } = evictionThresholds(storageSize, maxFillPercent);
    return ["sh", "-c", EVICTION_SCRIPT, "cache-evict", MOUNTS.storage, String(highKiB), String(lowKiB), String(hardKiB), String(EVICTION_EVERY_SECONDS)];
}

/** A cache's eviction loop, beside the registry on the same volume, as the registry's user (who owns what it deletes). */
function evictionContainer(image: string, storageSize: string, maxFillPercent: number): k8s.types.input.core.v1.Container {
    return {
        name: "evict",
        image,
        command: evictionCommand(storageSize, maxFillPercent),
        volumeMounts: [{ name: "storage", mountPath: MOUNTS.storage }],
        resources: { requests: { cpu: "5m", memory: "8Mi" }, limits: { memory: "32Mi" } },
        securityContext: RESTRICTED_CONTAINER_SECURITY,
    };
}

/** Gives a kubelet-created (root-owned) node directory to the registry's user, with CAP_CHOWN alone. */
function storageOwnerContainer(image: string): k8s.types.input.core.v1.Container {
    return {
        name: "storage-owner",
        image,
        command: ["chown", `${REGISTRY_UID}:${REGISTRY_UID}`, MOUNTS.storage],
        volumeMounts: [{ name: "storage", mountPath: MOUNTS.storage }],
        resources: { requests: { cpu: "5m", memory: "8Mi" }, limits: { memory: "32Mi" } },
        securityContext: {
            ...RESTRICTED_CONTAINER_SECURITY,
            runAsNonRoot: false,
            runAsUser: 0,
            runAsGroup: 0,
            capabilities: { drop: ["ALL"], add: ["CHOWN"] },
        },
    };
}

/** The exec readiness check's command: the image's busybox runs {@link READINESS_SCRIPT}. */
export function readinessCommand(maxFillPercent: number | undefined, debugPort = REGISTRY_DEBUG_PORT): string[] {
    const health = `http://${LOOPBACK}:${debugPort}${HEALTH_PATH}`;
    return ["sh", "-c", READINESS_SCRIPT, "registry-ready", MOUNTS.storage, maxFillPercent === undefined ? "-" : String(maxFillPercent), health];
}

/** Ready only while it can serve: storage healthy and (a cache) its volume below the fill limit. */
function readinessProbe(maxFillPercent: number | undefined, debugPort: number): k8s.types.input.core.v1.Probe {
    return { exec: { command: readinessCommand(maxFillPercent, debugPort) }, initialDelaySeconds: 2, periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 2 };
}

function livenessProbe(port: string): k8s.types.input.core.v1.Probe {
    return {
        // `/` answers 200 without credentials even with htpasswd on; kubelet does not verify the
        // certificate of an HTTPS probe.
        httpGet: { path: "/", port, scheme: "HTTPS" },
        initialDelaySeconds: 10,
        periodSeconds: 20,
        timeoutSeconds: 3,
        failureThreshold: 3,
    };
}

/** Garbage is collected on a schedule or on demand. */
function collectsGarbage(args: Pick<RegistryArgs, "push">): boolean {
    return (args.push?.maintenance?.gcSchedule ?? "off") !== "off";
}

/** The push container's command: its supervisor, run by the image's busybox sh, which runs the registry. */
export const PUSH_COMMAND = ["sh", `${MOUNTS.config}/${CONFIG_FILES.supervisor}`, `${MOUNTS.config}/${CONFIG_FILES.supervisorSettings}`];

/** The supervisor script, shipped unchanged in the registry's ConfigMap. */
export function pushSupervisorScript(): string {
    return fs.readFileSync(path.join(__dirname, "push-supervisor", CONFIG_FILES.supervisor), "utf8");
}

/**
 * The push supervisor's files: its script and settings, and with garbage collection on, the config of
 * the read-only registry that answers the push port meanwhile (pushes get 405 and a Warning header).
 */
function pushSupervisorFiles(
    args: Pick<RegistryArgs, "push" | "objectStorage">,
    common: Omit<Parameters<typeof renderRegistryConfig>[0], "port" | "debugPort">,
): Record<string, string> {
    if (!args.push) return {};
    const m = args.push.maintenance;
    const onVolume = !args.objectStorage;
    const settings = renderPushSupervisorSettings({
        writeConfig: `${MOUNTS.config}/${CONFIG_FILES.push}`,
        readOnlyConfig: `${MOUNTS.config}/${CONFIG_FILES.pushReadOnly}`,
        // Object storage has no volume to measure or to lock.
        storage: onVolume ? MOUNTS.storage : undefined,
        gcSchedule: m?.gcSchedule ?? "off",
        gcDeleteUntagged: m?.gcDeleteUntagged ?? false,
        fillWarnPercent: m?.fillWarnPercent,
        healthUrl: `http://127.0.0.1:${REGISTRY_PUSH_DEBUG_PORT}${HEALTH_PATH}`,
        // A collection needs every other writer gone: on the volume, each writer holds this lock; on a
        // bucket, the push Deployment rolls with Recreate and a replacement pod waits out the grace
        // period of the pod it replaced (a deleted or evicted pod is replaced at once).
        writerLock: onVolume ? `${MOUNTS.storage}/${WRITER_LOCK_FILE}` : undefined,
        gcHoldoffSeconds: onVolume ? 0 : GRACEFUL_STOP.gracePeriodSeconds,
    });
    const files = { [CONFIG_FILES.supervisor]: pushSupervisorScript(), [CONFIG_FILES.supervisorSettings]: settings };
    if (!collectsGarbage(args)) return files;
    const readOnly = renderRegistryConfig({
        ...common,
        port: REGISTRY_PUSH_CONTAINER_PORT,
        debugPort: REGISTRY_PUSH_DEBUG_PORT,
        htpasswd: { realm: "cluster-registry-push", path: `${MOUNTS.pushAuth}/htpasswd` },
        readOnly: true,
        headers: { Warning: GC_REFUSAL_WARNING },
    });
    return { ...files, [CONFIG_FILES.pushReadOnly]: readOnly };
}

/** The writer lock's file in the volume's root, beside distribution's `docker/` (which garbage-collect never walks outside of); the push supervisor keeps its probe lock beside it, in `push-writers.lock.probe`. */
export const WRITER_LOCK_FILE = "push-writers.lock";

/** What a push refused during garbage collection is told, beside the 405 (an RFC 7234 warn-code 299). */
export const GC_REFUSAL_WARNING = '299 - "garbage collection in progress: pushes are refused for a few minutes, retry later"';
