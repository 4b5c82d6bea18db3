/** The DaemonSet that makes every node's containerd trust and reach the in-cluster registries. */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { contentChecksum } from "./render/checksum";
import { HostCapability, renderHostsToml } from "./render/hosts-toml";
import { NodeFile, renderNodeScript } from "./render/node-script";
import { CHECKSUM_ANNOTATION, PART_OF } from "./labels";

/** Where the node's certs.d directory appears inside the DaemonSet's container. */
export const NODE_CERTS_MOUNT = "/host/certs.d";
/** Where the script's ConfigMap is mounted. */
export const NODE_SCRIPT_MOUNT = "/scripts";
export const NODE_SCRIPT_FILE = "node-config.sh";
/** How often a running pod re-applies, repairing files someone else changed. */
export const REAPPLY_SECONDS = 300;
/** Name of the CA file next to each hosts.toml. */
export const NODE_CA_FILE = "ca.crt";

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
}

/** A DaemonSet on every node, control plane included, keeping certs.d in line with the registries. */
export class NodeConfig extends pulumi.ComponentResource {
    /** The script the DaemonSet runs (also what tests run against a temp dir). */
    public readonly script: pulumi.Output<string>;
    /** The node directory it writes to. */
    public readonly certsDir: string;

    constructor(name: string, args: NodeConfigArgs, opts?: pulumi.ComponentResourceOptions) {
        super("cluster-registry:index:NodeConfig", name, {}, opts);
        this.certsDir = args.certsDir;
        const labels = { "app.kubernetes.io/name": "node-config", "app.kubernetes.io/instance": name };
        const metaLabels = { ...labels, ...PART_OF };

        const registries = pulumi.all(args.registries.map((r) => pulumi.output(r)));
        this.script = pulumi.all([args.caPem, registries]).apply(([caPem, regs]) => renderNodeScript(args.owner, nodeFiles(args.owner, caPem, regs)));

        const configMap = new k8s.core.v1.ConfigMap(
            `${name}-script`,
            { metadata: { namespace: args.namespace, labels: metaLabels }, data: { [NODE_SCRIPT_FILE]: this.script } },
            { parent: this },
        );

        new k8s.apps.v1.DaemonSet(
            name,
            {
                metadata: { namespace: args.namespace, labels: metaLabels },
                spec: {
                    selector: { matchLabels: labels },
                    // The new pod starts (and takes the node over) before the old one stops, so a
                    // rollout never leaves a node without its hosts.toml files.
                    updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
                    template: {
                        // A new CA, ClusterIP or registry list changes the script and rolls the pods.
                        metadata: { labels: metaLabels, annotations: { [CHECKSUM_ANNOTATION]: this.script.apply((s) => contentChecksum([s])) } },
                        spec: {
                            // Every node, control plane and tainted pools included: any of them may pull.
                            tolerations: [{ operator: "Exists" }],
                            // ...but only where containerd on Linux runs pods: not Windows nodes, not
                            // EKS Fargate's virtual nodes (pods that can never start there would hold
                            // the rollout, and `pulumi up`, until it times out).
                            nodeSelector: { "kubernetes.io/os": "linux" },
                            affinity: {
                                nodeAffinity: {
                                    requiredDuringSchedulingIgnoredDuringExecution: {
                                        nodeSelectorTerms: [
                                            { matchExpressions: [{ key: "eks.amazonaws.com/compute-type", operator: "NotIn", values: ["fargate"] }] },
                                        ],
                                    },
                                },
                            },
                            automountServiceAccountToken: false,
                            enableServiceLinks: false,
                            // Time for the SIGTERM trap to restore the node before the kill.
                            terminationGracePeriodSeconds: 30,
                            securityContext: { seccompProfile: { type: "RuntimeDefault" } },
                            containers: [
                                {
                                    name: "node-config",
                                    image: args.image,
                                    command: ["/bin/sh", `${NODE_SCRIPT_MOUNT}/${NODE_SCRIPT_FILE}`, "run"],
                                    env: [
                                        { name: "CERTS_DIR", value: NODE_CERTS_MOUNT },
                                        { name: "REAPPLY_SECONDS", value: String(REAPPLY_SECONDS) },
                                        // Tells this pod from the rollout's next one: whichever applied last holds the node.
                                        { name: "POD_UID", valueFrom: { fieldRef: { fieldPath: "metadata.uid" } } },
                                    ],
                                    volumeMounts: [
                                        { name: "certs-d", mountPath: NODE_CERTS_MOUNT },
                                        { name: "script", mountPath: NODE_SCRIPT_MOUNT, readOnly: true },
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
                                },
                            ],
                            volumes: [
                                // Only the one directory it writes to; created if the node lacks it.
                                { name: "certs-d", hostPath: { path: args.certsDir, type: "DirectoryOrCreate" } },
                                { name: "script", configMap: { name: configMap.metadata.name, defaultMode: 0o444 } },
                            ],
                        },
                    },
                },
            },
            { parent: this },
        );
        this.registerOutputs({ certsDir: this.certsDir });
    }
}
