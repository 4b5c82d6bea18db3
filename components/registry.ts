/** One distribution registry in the cluster: hosted (takes pushes) or a pull-through cache of one upstream. */
import * as net from "node:net";
import * as fs from "node:fs";
import * as path from "node:path";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { CertificateAuthority, ServerCertificate } from "./pki";
import { contentChecksum } from "./render/checksum";
import { HEALTH_PATH, METRICS_PATH, READINESS_SCRIPT, renderRegistryConfig } from "./render/registry-config";
import { CHECKSUM_ANNOTATION, PART_OF } from "./labels";
import { serviceDnsNames } from "./names";
import { renderPushSupervisorSettings } from "./render/push-supervisor";

/** Port the registry listens on inside its pod; the Service maps its own port to this one. */
export const REGISTRY_CONTAINER_PORT = 5000;
/** Port of distribution's debug listener (metrics, health, pprof) inside the pod, and of the metrics Service. */
export const REGISTRY_DEBUG_PORT = 5001;
/** The hosted registry's read-write container: where it takes pushes inside the pod. */
export const REGISTRY_PUSH_CONTAINER_PORT = 5002;
/** The read-write container's own debug listener (its health check; containers in a pod share ports). */
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
/** Marks a registry's metrics Service, which its ServiceMonitor selects. */
export const METRICS_LABEL = "cluster-registry/metrics";

/** `<service>-metrics`, kept a DNS label (63 characters at most). */
export function metricsServiceName(serviceName: string): string {
    return `${serviceName.slice(0, 63 - "-metrics".length).replace(/-+$/, "")}-metrics`;
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
    /** Not ready (out of its Service) while its storage is at least this full, in percent. Default: no limit. */
    maxFillPercent?: number;
    /** Also create a Prometheus Operator ServiceMonitor for the metrics Service. Default: false. */
    serviceMonitor?: boolean;
    /** Keep the volume's claim when the stack is destroyed (`retainOnDelete`). Default: false. */
    retainVolume?: boolean;
    /** Run on this existing claim, created and deleted by nobody here. Default: a claim of its own. */
    existingClaim?: string;
    /** Let a change Kubernetes can only make by replacing the claim give the registry a new, empty volume. Default: false. */
    allowVolumeReplacement?: boolean;
}

/**
 * Fields of a PersistentVolumeClaim the Kubernetes provider can only change by replacing the claim
 * (a new, empty one first, then the old one deleted), and the setting that feeds each.
 */
export const CLAIM_REPLACING_FIELDS = [
    { path: "metadata.namespace", setting: "namespace" },
    { path: "spec.storageClassName", setting: "storageClass" },
] as const;

/** Raised when a change would move a registry onto an empty volume and nobody asked for that. */
export class VolumeReplacementError extends Error {
    constructor(message: string) {
        super(message);
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
    settingPrefix = "cluster-registry:",
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
        `to one on the new volume), then run pulumi up with ${settingPrefix}allowVolumeReplacement=true, which replaces the claim (and deletes the old one unless it is kept).`
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
        const pod = registryPodSpec(args, {
            configMapName: configMap.metadata.name,
            tlsSecretName: tlsSecret.metadata.name,
            storage: this.storageVolume(name, args, labels),
            env: this.upstreamEnv(name, args, labels),
        });
        // Upstream credentials stay out: even hashed, a password has no place in an annotation. Their
        // Secret is replaced when they change, and its new name rolls the pod.
        // A sha256, so not a secret although the htpasswd is: left secret, it would hide the whole
        // pod template from `pulumi preview` diffs, and nobody could see why a pod rolls.
        const checksum = pulumi.unsecret(
            pulumi
                .all([cert.certPem, args.htpasswd?.content ?? "", args.push?.htpasswd.content ?? ""])
                .apply(([certPem, pull, push]) => contentChecksum([...Object.values(configs), certPem, pull, push])),
        );
        new k8s.apps.v1.Deployment(
            `${name}`,
            {
                metadata: { namespace: args.namespace, labels: labels.meta },
                spec: {
                    replicas: 1,
                    // One ReadWriteOnce volume: the old pod must let go before the new one mounts it.
                    strategy: { type: "Recreate" },
                    selector: { matchLabels: labels.selector },
                    template: { metadata: { labels: labels.meta, annotations: { [CHECKSUM_ANNOTATION]: checksum } }, spec: pod },
                },
            },
            { parent: this },
        );

        this.host = namespace.apply((ns) => `${serviceDnsNames(args.serviceName, ns, clusterDomain)[3]}:${port}`);
        this.endpoint = this.clusterIP.apply((ip) => `https://${net.isIPv6(ip) ? `[${ip}]` : ip}:${port}`);
        this.registerOutputs({ clusterIP: this.clusterIP, host: this.host, endpoint: this.endpoint, certPem: this.certPem });
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
     * Prometheus metrics on a ClusterIP Service of their own: a NodePort Service exposes every port it
     * lists, and the debug listener also serves pprof and expvar, which stay inside the cluster.
     */
    private metrics(name: string, args: RegistryArgs, labels: RegistryLabels): void {
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
                    ports: [{ name: "metrics", port: REGISTRY_DEBUG_PORT, targetPort: "metrics", protocol: "TCP" }],
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
                    endpoints: [{ port: "metrics", path: METRICS_PATH, scheme: "http", interval: "30s" }],
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
    private storageVolume(name: string, args: RegistryArgs, labels: RegistryLabels): k8s.types.input.core.v1.Volume {
        if (args.hostPath) return { name: "storage", hostPath: { path: args.hostPath, type: "DirectoryOrCreate" } };
        if (args.existingClaim) return { name: "storage", persistentVolumeClaim: { claimName: args.existingClaim } };
        const allowReplacement = args.allowVolumeReplacement ?? false;
        const claim = new k8s.core.v1.PersistentVolumeClaim(
            `${name}-storage`,
            {
                metadata: { namespace: args.namespace, labels: labels.meta },
                spec: {
                    accessModes: ["ReadWriteOnce"],
                    ...(args.storageClass ? { storageClassName: args.storageClass } : {}),
                    resources: { requests: { storage: args.storageSize } },
                },
            },
            {
                parent: this,
                retainOnDelete: args.retainVolume ?? false,
                // The engine keeps the claim's old values for these, so it is never replaced; the guard
                // below compares them with what is asked and stops `pulumi up` with a message instead.
                ignoreChanges: allowReplacement ? [] : CLAIM_REPLACING_FIELDS.map((f) => f.path),
            },
        );
        if (allowReplacement) return { name: "storage", persistentVolumeClaim: { claimName: claim.metadata.name } };
        // The Deployment waits on this: a refused change registers no Deployment on another volume.
        const claimName = pulumi.all([claim.metadata, claim.spec, args.namespace]).apply(([metadata, spec, namespace]) => {
            const problem = volumeReplacementProblem(
                `${metadata.namespace}/${metadata.name}`,
                { namespace: metadata.namespace, storageClassName: spec.storageClassName },
                { namespace, storageClassName: args.storageClass },
            );
            if (problem) throw new VolumeReplacementError(problem);
            return metadata.name;
        });
        return { name: "storage", persistentVolumeClaim: { claimName } };
    }
}

/**
 * The ConfigMap's config files, with the pod's mount paths: `config.yml`, and with a push port,
 * `push.yml` for the read-write container while `config.yml` turns read-only.
 */
export function registryConfigsOf(args: Pick<RegistryArgs, "htpasswd" | "proxy" | "push">): Record<string, string> {
    const common = {
        storageRoot: MOUNTS.storage,
        tls: { certificate: `${MOUNTS.tls}/tls.crt`, key: `${MOUNTS.tls}/tls.key` },
        proxy: args.proxy ? { remoteUrl: args.proxy.remoteUrl, ttl: args.proxy.ttl } : undefined,
        descriptorCache: !collectsGarbage(args),
    };
    const pull = renderRegistryConfig({
        ...common,
        port: REGISTRY_CONTAINER_PORT,
        debugPort: REGISTRY_DEBUG_PORT,
        htpasswd: args.htpasswd ? { realm: "cluster-registry", path: `${MOUNTS.auth}/htpasswd` } : undefined,
        readOnly: !!args.push,
    });
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

/** What the pod spec refers to that other resources provide. */
interface PodParts {
    configMapName: pulumi.Input<string>;
    tlsSecretName: pulumi.Input<string>;
    storage: k8s.types.input.core.v1.Volume;
    env: k8s.types.input.core.v1.EnvVar[];
}

/** The registry pod: restricted security, the config, certificate, storage and (hosted) htpasswd mounts. */
export function registryPodSpec(args: RegistryArgs, parts: PodParts): k8s.types.input.core.v1.PodSpec {
    const { volumes, mounts } = registryVolumes(args, parts);
    return {
        automountServiceAccountToken: false,
        enableServiceLinks: false,
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
            {
                name: "registry",
                image: args.image,
                command: ["registry", "serve", `${MOUNTS.config}/${CONFIG_FILES.pull}`],
                ports: [
                    { name: "registry", containerPort: REGISTRY_CONTAINER_PORT, protocol: "TCP" },
                    { name: "metrics", containerPort: REGISTRY_DEBUG_PORT, protocol: "TCP" },
                ],
                env: [...REGISTRY_ENV, ...parts.env],
                // The read-only container's storage is read-only to the kernel too.
                volumeMounts: args.push ? mounts.map((m) => (m.name === "storage" ? { ...m, readOnly: true } : m)) : mounts,
                readinessProbe: readinessProbe(args.maxFillPercent, REGISTRY_DEBUG_PORT),
                // Not the readiness check: a full cache is taken out of its Service, never restarted for it.
                livenessProbe: livenessProbe("registry"),
                resources: { requests: { cpu: "50m", memory: "64Mi" }, limits: { memory: "512Mi" } },
                securityContext: RESTRICTED_CONTAINER_SECURITY,
            },
            ...(args.push ? [pushContainer(args.image, mounts)] : []),
        ],
        volumes,
    };
}

/** The hosted registry's read-write container: the same image and volume, pushers' htpasswd, its own ports. */
function pushContainer(image: string, mounts: k8s.types.input.core.v1.VolumeMount[]): k8s.types.input.core.v1.Container {
    return {
        name: "push",
        image,
        command: PUSH_COMMAND,
        ports: [
            { name: "push", containerPort: REGISTRY_PUSH_CONTAINER_PORT, protocol: "TCP" },
            { name: "push-metrics", containerPort: REGISTRY_PUSH_DEBUG_PORT, protocol: "TCP" },
        ],
        env: [...REGISTRY_ENV],
        volumeMounts: [...mounts.filter((m) => m.name !== "auth"), { name: "push-auth", mountPath: MOUNTS.pushAuth, readOnly: true }],
        readinessProbe: readinessProbe(undefined, REGISTRY_PUSH_DEBUG_PORT),
        livenessProbe: livenessProbe("push"),
        resources: { requests: { cpu: "50m", memory: "64Mi" }, limits: { memory: "512Mi" } },
        securityContext: RESTRICTED_CONTAINER_SECURITY,
    };
}

function registryVolumes(args: RegistryArgs, parts: PodParts) {
    const volumes: k8s.types.input.core.v1.Volume[] = [
        { name: "config", configMap: { name: parts.configMapName } },
        { name: "tls", secret: { secretName: parts.tlsSecretName, defaultMode: 0o440 } },
        parts.storage,
        { name: "tmp", emptyDir: { sizeLimit: "64Mi" } },
    ];
    const mounts: k8s.types.input.core.v1.VolumeMount[] = [
        { name: "config", mountPath: MOUNTS.config, readOnly: true },
        { name: "tls", mountPath: MOUNTS.tls, readOnly: true },
        { name: "storage", mountPath: MOUNTS.storage },
        { name: "tmp", mountPath: MOUNTS.tmp },
    ];
    if (args.htpasswd) {
        volumes.push({ name: "auth", secret: { secretName: args.htpasswd.secretName, defaultMode: 0o440 } });
        mounts.push({ name: "auth", mountPath: MOUNTS.auth, readOnly: true });
    }
    if (args.push) volumes.push({ name: "push-auth", secret: { secretName: args.push.htpasswd.secretName, defaultMode: 0o440 } });
    return { volumes, mounts };
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
    const health = `http://127.0.0.1:${debugPort}${HEALTH_PATH}`;
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
    args: Pick<RegistryArgs, "push">,
    common: Omit<Parameters<typeof renderRegistryConfig>[0], "port" | "debugPort">,
): Record<string, string> {
    if (!args.push) return {};
    const m = args.push.maintenance;
    const settings = renderPushSupervisorSettings({
        writeConfig: `${MOUNTS.config}/${CONFIG_FILES.push}`,
        readOnlyConfig: `${MOUNTS.config}/${CONFIG_FILES.pushReadOnly}`,
        storage: MOUNTS.storage,
        gcSchedule: m?.gcSchedule ?? "off",
        gcDeleteUntagged: m?.gcDeleteUntagged ?? false,
        fillWarnPercent: m?.fillWarnPercent,
        healthUrl: `http://127.0.0.1:${REGISTRY_PUSH_DEBUG_PORT}${HEALTH_PATH}`,
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

/** What a push refused during garbage collection is told, beside the 405 (an RFC 7234 warn-code 299). */
export const GC_REFUSAL_WARNING = '299 - "garbage collection in progress: pushes are refused for a few minutes, retry later"';
