/** The DaemonSet that makes every node's containerd trust and reach the in-cluster registries. */
import * as fs from "node:fs";
import * as path from "node:path";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { CHECKSUM_ANNOTATION, PART_OF } from "./labels";
import { NodeFile, renderNodeFilesData, validateOwner } from "./node-agent/files";
import { contentChecksum } from "./render/checksum";
import { HostCapability, renderHostsToml } from "./render/hosts-toml";

export type { NodeFile } from "./node-agent/files";

/** Where the node's certs.d directory appears inside the DaemonSet's container. */
export const NODE_CERTS_MOUNT = "/host/certs.d";
/** Where the agent's ConfigMap (the script alone) is mounted. */
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

/**
 * The node agent's script. Read when the program runs (it is a shell file, linted by shellcheck,
 * not a TypeScript string) and the same for every cluster: what it writes comes from the Secret.
 */
export function nodeAgentScript(): string {
    return fs.readFileSync(NODE_AGENT_SCRIPT_PATH, "utf8");
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
}

/** The files a node needs for the given registries, all trusting one CA. Pure, for tests. */
export function nodeFiles(
    owner: string,
    caPem: string,
    registries: ReadonlyArray<{ host: string; server: string; endpoint: string; capabilities: readonly HostCapability[]; serverIsOurs: boolean }>,
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
            }),
        },
        { path: `${r.host}/${NODE_CA_FILE}`, content: caPem },
    ]);
}

/**
 * The pod-template checksum: the script and every key of the files Secret, so a change to either
 * rolls the pods. Today every node file is public (hosts.toml, the CA); a credential added to the
 * Secret later must enter here already hashed, as the annotation is plain text.
 */
export function nodeAgentChecksum(script: string, filesData: Readonly<Record<string, string>>): string {
    const keys = Object.keys(filesData).sort();
    return contentChecksum([script, ...keys.flatMap((k) => [k, filesData[k]])]);
}

/**
 * The agent's container: the DaemonSet's one command, `run`, with everything it reads mounted
 * read-only. `daemonSet` is its own DaemonSet's name, which it asks the API about on SIGTERM.
 */
export function nodeAgentContainer(image: string, owner: string, daemonSet: string): k8s.types.input.core.v1.Container {
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
        ],
        // Ready only once this pod has applied; not ready while it cannot, or while a newer pod holds the node.
        readinessProbe: { exec: { command: ["cat", NODE_AGENT_READY_FILE] }, periodSeconds: 5, failureThreshold: 1 },
        volumeMounts: [
            { name: "certs-d", mountPath: NODE_CERTS_MOUNT },
            { name: "run", mountPath: NODE_AGENT_RUN_DIR },
            { name: "token", mountPath: NODE_AGENT_TOKEN_DIR, readOnly: true },
            { name: "agent", mountPath: NODE_AGENT_MOUNT, readOnly: true },
            { name: "files", mountPath: NODE_FILES_MOUNT, readOnly: true },
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

/** The node directory the agent writes to, its script, and the files it writes. */
export function nodeAgentVolumes(certsDir: string, scriptConfigMap: pulumi.Input<string>, filesSecret: pulumi.Input<string>): k8s.types.input.core.v1.Volume[] {
    return [
        // Only the one directory it writes to; created if the node lacks it.
        { name: "certs-d", hostPath: { path: certsDir, type: "DirectoryOrCreate" } },
        { name: "agent", configMap: { name: scriptConfigMap, defaultMode: 0o444 } },
        // The agent runs as root and copies what it writes with its own umask: nobody else needs to read these.
        { name: "files", secret: { secretName: filesSecret, defaultMode: 0o400 } },
        { name: "run", emptyDir: { medium: "Memory", sizeLimit: "1Mi" } },
        // Only this container gets a token (automountServiceAccountToken stays off), renewed by kubelet.
        { name: "token", projected: { defaultMode: 0o400, sources: [{ serviceAccountToken: { path: "token", expirationSeconds: 3600 } }] } },
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

        const script = nodeAgentScript();
        const registries = pulumi.all(args.registries.map((r) => pulumi.output(r)));
        const filesData = pulumi.all([args.caPem, registries]).apply(([caPem, regs]) => renderNodeFilesData(nodeFiles(args.owner, caPem, regs)));

        const agent = new k8s.core.v1.ConfigMap(`${name}-script`, { metadata, data: { [NODE_AGENT_FILE]: script } }, { parent: this });
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
            nodeAgentContainer(args.image, args.owner, args.daemonSetName),
            nodeAgentVolumes(args.certsDir, agent.metadata.name, files.metadata.name),
            account.metadata.name,
        );

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
                        metadata: { labels: metadata.labels, annotations: { [CHECKSUM_ANNOTATION]: filesData.apply((d) => nodeAgentChecksum(script, d)) } },
                        spec: podSpec,
                    },
                },
            },
            // Deleted before its ServiceAccount and Role, which its pods need to the end.
            { parent: this, dependsOn: [binding] },
        );
        this.registerOutputs({ certsDir: this.certsDir });
    }
}
