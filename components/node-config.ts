/** The DaemonSet that makes every node's containerd trust and reach the in-cluster registries. */
import * as fs from "node:fs";
import * as path from "node:path";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { CHECKSUM_ANNOTATION, PART_OF } from "./labels";
import { ContainerdCheckMode, NodeFile, renderNodeFilesData, validateOwner } from "./node-agent/files";
import { contentChecksum } from "./render/checksum";
import { HostCapability, HostEntry, renderHostsToml } from "./render/hosts-toml";

export { CONTAINERD_CHECK_MODES } from "./node-agent/files";
export type { ContainerdCheckMode, NodeFile } from "./node-agent/files";

/** Where the node's certs.d directory appears inside the DaemonSet's container. */
export const NODE_CERTS_MOUNT = "/host/certs.d";
/** Where the agent's ConfigMap (the agent, its parts and the containerd check) is mounted. */
export const NODE_AGENT_MOUNT = "/node-agent";
/** The script's name in the repository, in the ConfigMap and in the container. */
export const NODE_AGENT_FILE = "node-agent.sh";
/** Where the Secret with the files to write (a manifest plus one key per file) is mounted. */
export const NODE_FILES_MOUNT = "/node-files";
/** The pod's own scratch directory (an emptyDir): the readiness file, the API call's error output. */
export const NODE_AGENT_RUN_DIR = "/run/node-agent";
/** Written by the agent after a successful apply, removed when it cannot apply: the readiness probe. */
export const NODE_AGENT_READY_FILE = `${NODE_AGENT_RUN_DIR}/ready`;
/** Where the agent's ServiceAccount token (allowed to `get` its own DaemonSet, nothing else) is mounted. */
export const NODE_AGENT_TOKEN_DIR = "/var/run/secrets/cluster-registry";
/** How often a running pod re-applies, putting back files of ours someone deleted. */
export const REAPPLY_SECONDS = 300;
/** Name of the CA file next to each hosts.toml. */
export const NODE_CA_FILE = "ca.crt";
/** The agent as it is in the repository; it reaches the nodes byte for byte. */
export const NODE_AGENT_SCRIPT_PATH = path.join(__dirname, "node-agent", NODE_AGENT_FILE);
/** The check the agent runs on the node's containerd config, shipped beside it in the same ConfigMap. */
export const CONTAINERD_CHECK_FILE = "containerd-check.sh";
export const CONTAINERD_CHECK_SCRIPT_PATH = path.join(__dirname, "node-agent", CONTAINERD_CHECK_FILE);
/** Where the directory holding the node's containerd config is mounted, read-only. */
export const CONTAINERD_CONFIG_MOUNT = "/host/containerd-config";
/**
 * How long `pulumi up` waits for the DaemonSet's rollout (every pod ready) before it fails naming it.
 * The provider awaits DaemonSets (kstatus: desired = updated = ready = available) for 10 minutes by
 * default. Create starts every node's pod at once; an update rolls node by node (maxSurge 1, some
 * seconds a node), so it gets longer.
 */
export const NODE_AGENT_TIMEOUTS = { create: "5m", update: "10m" } as const;

/** The agent's parts, one concern each, which node-agent.sh sources from beside itself (see its README). */
export const NODE_AGENT_PARTS = ["state.sh", "lock.sh", "journal.sh", "apply.sh", "remove.sh", "holder.sh", "containerd.sh"] as const;

/**
 * The node agent's script. Read when the program runs (it is a shell file, linted by shellcheck,
 * not a TypeScript string) and the same for every cluster: what it writes comes from the Secret.
 */
export function nodeAgentScript(): string {
    return fs.readFileSync(NODE_AGENT_SCRIPT_PATH, "utf8");
}

/**
 * The ConfigMap's data: the agent, its parts and the containerd check, each byte for byte as in the
 * repository, all in one ConfigMap so they reach the pod together and change together.
 */
export function nodeAgentScripts(): Record<string, string> {
    const files = [NODE_AGENT_FILE, ...NODE_AGENT_PARTS, CONTAINERD_CHECK_FILE];
    return Object.fromEntries(files.map((f) => [f, fs.readFileSync(path.join(__dirname, "node-agent", f), "utf8")]));
}

/** One registry as a node sees it. */
export interface NodeRegistry {
    /** The name in image references, `host[:port]`: the certs.d directory's name. */
    host: pulumi.Input<string>;
    /** URL containerd falls back to after the endpoint (the upstream for a fail-open cache). */
    server: pulumi.Input<string>;
    /** URL containerd tries first: the registry's ClusterIP. */
    endpoint: pulumi.Input<string>;
    /** What containerd may do there. */
    capabilities: HostCapability[];
    /** `server` is one of ours (signed by our CA), not a public upstream. */
    serverIsOurs: boolean;
    /** Headers containerd sends to the endpoint (the node identity's Authorization). Default: none. */
    header?: pulumi.Input<Record<string, string>>;
    /** Endpoints containerd tries, in order, when `endpoint` fails (a cache's other replicas). Default: none. */
    fallbacks?: pulumi.Input<string>[];
    /** `endpoint` (and `server`, when ours) is an API root with a path (`override_path`). Default: false. */
    overridePath?: boolean;
    /** `[host]` entries containerd tries before `endpoint`, in order (preloaded copies). Default: none. */
    before?: pulumi.Input<HostEntry[]>;
}

/** The files a node needs for the given registries, all trusting one CA. Pure, for tests. */
export function nodeFiles(
    owner: string,
    caPem: string,
    registries: ReadonlyArray<{
        host: string;
        server: string;
        endpoint: string;
        capabilities: readonly HostCapability[];
        serverIsOurs: boolean;
        header?: Record<string, string>;
        fallbacks?: string[];
        overridePath?: boolean;
        before?: HostEntry[];
    }>,
): NodeFile[] {
    return registries.flatMap((r) => [
        {
            path: `${r.host}/hosts.toml`,
            content: renderHostsToml({
                owner: `cluster-registry (${owner})`,
                server: r.server,
                endpoint: r.endpoint,
                capabilities: r.capabilities,
                ca: NODE_CA_FILE,
                serverIsOurs: r.serverIsOurs,
                header: r.header,
                fallbacks: r.fallbacks,
                overridePath: r.overridePath,
                before: r.before,
            }),
        },
        { path: `${r.host}/${NODE_CA_FILE}`, content: caPem },
    ]);
}

/**
 * The pod-template checksum: every key of the scripts ConfigMap and of the files Secret, so a change
 * to either rolls the pods. A sha256 reveals nothing of what it hashes: the component unsecrets it
 * (see NodeConfig) so a credential in the Secret does not hide the pod template from preview diffs.
 */
export function nodeAgentChecksum(scripts: Readonly<Record<string, string>>, filesData: Readonly<Record<string, string>>): string {
    const flat = (d: Readonly<Record<string, string>>) =>
        Object.keys(d)
            .sort()
            .flatMap((k) => [k, d[k]]);
    return contentChecksum(["scripts", ...flat(scripts), "files", ...flat(filesData)]);
}

/** Where the agent reads the node's containerd config: `configFile` is the node's path. */
export function containerdConfigMountPath(configFile: string): string {
    return `${CONTAINERD_CONFIG_MOUNT}/${path.posix.basename(configFile)}`;
}

/**
 * The agent's container: the DaemonSet's one command, `run`, with everything it reads mounted
 * read-only. `daemonSet` is its own DaemonSet's name, which it asks the API about on SIGTERM.
 */
export function nodeAgentContainer(
    image: string,
    owner: string,
    daemonSet: string,
    check: { mode: ContainerdCheckMode; configFile: string; certsDir: string },
): k8s.types.input.core.v1.Container {
    const checkEnv =
        check.mode === "off"
            ? [{ name: "CONTAINERD_CHECK", value: "off" }]
            : [
                  { name: "CONTAINERD_CHECK", value: check.mode },
                  { name: "CONTAINERD_CONFIG", value: containerdConfigMountPath(check.configFile) },
                  // The check compares containerd's config_path with the node's name for certs.d, not the mount's.
                  { name: "NODE_CERTS_DIR", value: check.certsDir },
                  // Named in its log line, rather than where it is mounted.
                  { name: "NODE_CONTAINERD_CONFIG", value: check.configFile },
              ];
    const checkMount = check.mode === "off" ? [] : [{ name: "containerd-config", mountPath: CONTAINERD_CONFIG_MOUNT, readOnly: true }];
    return {
        name: "node-config",
        image,
        command: ["/bin/sh", `${NODE_AGENT_MOUNT}/${NODE_AGENT_FILE}`, "run"],
        env: [
            { name: "CERTS_DIR", value: NODE_CERTS_MOUNT },
            { name: "FILES_DIR", value: NODE_FILES_MOUNT },
            { name: "OWNER", value: owner },
            { name: "REAPPLY_SECONDS", value: String(REAPPLY_SECONDS) },
            // Tells this pod from the rollout's next one: the pod that reached the node later holds it.
            { name: "POD_UID", valueFrom: { fieldRef: { fieldPath: "metadata.uid" } } },
            // On SIGTERM the agent restores the node only if this DaemonSet is gone or being deleted.
            { name: "NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
            { name: "DAEMONSET", value: daemonSet },
            { name: "TOKEN_FILE", value: `${NODE_AGENT_TOKEN_DIR}/token` },
            { name: "RUN_DIR", value: NODE_AGENT_RUN_DIR },
            ...checkEnv,
        ],
        // Ready only once this pod has applied (and, under `enforce`, containerd will read what it
        // wrote); not ready while it cannot, or while a newer pod holds the node.
        readinessProbe: { exec: { command: ["cat", NODE_AGENT_READY_FILE] }, periodSeconds: 5, failureThreshold: 1 },
        volumeMounts: [
            { name: "certs-d", mountPath: NODE_CERTS_MOUNT },
            { name: "run", mountPath: NODE_AGENT_RUN_DIR },
            { name: "token", mountPath: NODE_AGENT_TOKEN_DIR, readOnly: true },
            { name: "agent", mountPath: NODE_AGENT_MOUNT, readOnly: true },
            { name: "files", mountPath: NODE_FILES_MOUNT, readOnly: true },
            ...checkMount,
        ],
        resources: { requests: { cpu: "5m", memory: "8Mi" }, limits: { memory: "32Mi" } },
        // Root only to own files in a root-owned directory; no capabilities at all.
        securityContext: {
            runAsUser: 0,
            runAsGroup: 0,
            readOnlyRootFilesystem: true,
            allowPrivilegeEscalation: false,
            capabilities: { drop: ["ALL"] },
            seccompProfile: { type: "RuntimeDefault" },
        },
    };
}

/**
 * The node directory the agent writes to, its script, the files it writes, and (unless the check is
 * off) the directory of the node's containerd config.
 */
export function nodeAgentVolumes(
    certsDir: string,
    scriptConfigMap: pulumi.Input<string>,
    filesSecret: pulumi.Input<string>,
    containerdConfig?: string,
): k8s.types.input.core.v1.Volume[] {
    // The config's directory, not the file: a single-file bind mount pins the inode, so a config
    // rewritten by rename (k3s regenerates its own at every start) would never be seen; `Directory`
    // because creating it (`DirectoryOrCreate`, `FileOrCreate`) would change the node and hide a
    // missing config from the check.
    const configDir =
        containerdConfig === undefined ? [] : [{ name: "containerd-config", hostPath: { path: path.posix.dirname(containerdConfig), type: "Directory" } }];
    return [
        // Only the one directory it writes to; created if the node lacks it.
        { name: "certs-d", hostPath: { path: certsDir, type: "DirectoryOrCreate" } },
        { name: "agent", configMap: { name: scriptConfigMap, defaultMode: 0o444 } },
        // The agent runs as root and copies what it writes with its own umask: nobody else needs to read these.
        { name: "files", secret: { secretName: filesSecret, defaultMode: 0o400 } },
        { name: "run", emptyDir: { medium: "Memory", sizeLimit: "1Mi" } },
        // Only this container gets a token (automountServiceAccountToken stays off), renewed by kubelet.
        { name: "token", projected: { defaultMode: 0o400, sources: [{ serviceAccountToken: { path: "token", expirationSeconds: 3600 } }] } },
        ...configDir,
    ];
}

/** Every Linux node that runs pods under containerd, control plane and tainted pools included: any of them may pull. */
export function nodeAgentPodSpec(
    container: k8s.types.input.core.v1.Container,
    volumes: k8s.types.input.core.v1.Volume[],
    serviceAccountName?: pulumi.Input<string>,
): k8s.types.input.core.v1.PodSpec {
    return {
        serviceAccountName,
        tolerations: [{ operator: "Exists" }],
        // ...but only where containerd on Linux runs pods: not Windows nodes, not EKS Fargate's
        // virtual nodes (pods that can never start there would hold the rollout, and `pulumi up`,
        // until it times out).
        nodeSelector: { "kubernetes.io/os": "linux" },
        affinity: {
            nodeAffinity: {
                requiredDuringSchedulingIgnoredDuringExecution: {
                    nodeSelectorTerms: [{ matchExpressions: [{ key: "eks.amazonaws.com/compute-type", operator: "NotIn", values: ["fargate"] }] }],
                },
            },
        },
        automountServiceAccountToken: false,
        enableServiceLinks: false,
        // Time for the SIGTERM trap to restore the node before the kill.
        terminationGracePeriodSeconds: 30,
        securityContext: { seccompProfile: { type: "RuntimeDefault" } },
        containers: [container],
        volumes,
    };
}

export interface NodeConfigArgs {
    /** Namespace of the DaemonSet. */
    namespace: pulumi.Input<string>;
    /** Tells this installation's files apart from another's on the same node: `<namespace>.<service>`. */
    owner: string;
    /** Image with a POSIX shell: the registry's own, so an air-gapped cluster needs only one image. */
    image: string;
    /** containerd's certs.d directory on the node. */
    certsDir: string;
    /** containerd's config file on the node, which containerd-check.sh reads. */
    containerdConfig: string;
    /** What a node whose containerd will not read certs.d does: see `ContainerdCheckMode` (the setting's default is in SETTINGS). */
    containerdCheck: ContainerdCheckMode;
    /** CA certificate PEM that signs every registry's certificate. */
    caPem: pulumi.Input<string>;
    /** Registries the nodes must reach. */
    registries: NodeRegistry[];
    /**
     * The DaemonSet's name, set explicitly: the agent asks the API about it by name and its Role
     * names it. Unique per namespace.
     */
    daemonSetName: string;
}

/** What the agent's ServiceAccount may do: read its own DaemonSet, to tell an uninstall from a restart. */
export function nodeAgentRules(daemonSetName: string): k8s.types.input.rbac.v1.PolicyRule[] {
    return [{ apiGroups: ["apps"], resources: ["daemonsets"], resourceNames: [daemonSetName], verbs: ["get"] }];
}

/**
 * A DaemonSet on every node keeping certs.d in line with the registries: the agent script from a
 * ConfigMap that never changes, and what it writes from a Secret.
 */
export class NodeConfig extends pulumi.ComponentResource {
    /** The node directory it writes to. */
    public readonly certsDir: string;

    constructor(name: string, args: NodeConfigArgs, opts?: pulumi.ComponentResourceOptions) {
        super("cluster-registry:index:NodeConfig", name, {}, opts);
        validateOwner(args.owner);
        this.certsDir = args.certsDir;
        const labels = { "app.kubernetes.io/name": "node-config", "app.kubernetes.io/instance": name };
        const metadata = { namespace: args.namespace, labels: { ...labels, ...PART_OF } };

        const containerdCheck = args.containerdCheck;
        const scripts = nodeAgentScripts();
        const registries = pulumi.all(args.registries.map((r) => pulumi.output(r)));
        const filesData = pulumi.all([args.caPem, registries]).apply(([caPem, regs]) => renderNodeFilesData(nodeFiles(args.owner, caPem, regs)));

        const agent = new k8s.core.v1.ConfigMap(`${name}-script`, { metadata, data: scripts }, { parent: this });
        const files = new k8s.core.v1.Secret(`${name}-files`, { metadata, type: "Opaque", stringData: filesData }, { parent: this });
        const account = new k8s.core.v1.ServiceAccount(`${name}-agent`, { metadata, automountServiceAccountToken: false }, { parent: this });
        const role = new k8s.rbac.v1.Role(`${name}-agent`, { metadata, rules: nodeAgentRules(args.daemonSetName) }, { parent: this });
        const binding = new k8s.rbac.v1.RoleBinding(
            `${name}-agent`,
            {
                metadata,
                roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: role.metadata.name },
                subjects: [{ kind: "ServiceAccount", name: account.metadata.name, namespace: args.namespace }],
            },
            { parent: this },
        );
        const podSpec = nodeAgentPodSpec(
            nodeAgentContainer(args.image, args.owner, args.daemonSetName, {
                mode: containerdCheck,
                configFile: args.containerdConfig,
                certsDir: args.certsDir,
            }),
            nodeAgentVolumes(args.certsDir, agent.metadata.name, files.metadata.name, containerdCheck === "off" ? undefined : args.containerdConfig),
            account.metadata.name,
        );

        // A sha256 is not a secret, although what it hashes may be (node credentials in the Secret):
        // left secret, it would make the whole pod template secret and hide it from preview diffs.
        const checksum = pulumi.unsecret(filesData.apply((d) => nodeAgentChecksum(scripts, d)));
        new k8s.apps.v1.DaemonSet(
            name,
            {
                metadata: {
                    ...metadata,
                    name: args.daemonSetName,
                    // The DaemonSet stays, marked for deletion, until its pods are gone, and Pulumi
                    // waits for that before it deletes the RBAC below: the last pods can still ask.
                    annotations: { "pulumi.com/deletionPropagationPolicy": "foreground" },
                },
                spec: {
                    selector: { matchLabels: labels },
                    // The new pod starts (and takes the node over) before the old one stops, so a
                    // rollout never leaves a node without its hosts.toml files.
                    updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
                    // A new CA, ClusterIP or registry list changes the Secret and rolls the pods.
                    template: {
                        metadata: { labels: metadata.labels, annotations: { [CHECKSUM_ANNOTATION]: checksum } },
                        spec: podSpec,
                    },
                },
            },
            // Deleted before its ServiceAccount and Role, which its pods need to the end. The provider
            // awaits a DaemonSet's rollout (every pod ready): a node whose containerd will not read
            // certs.d keeps its pod unready under `enforce`, and `pulumi up` fails within these
            // timeouts naming the DaemonSet, its pods' state, rather than reporting success.
            { parent: this, dependsOn: [binding], customTimeouts: NODE_AGENT_TIMEOUTS },
        );
        this.registerOutputs({ certsDir: this.certsDir });
    }
}
