/**
 * What differs between the clusters we support, as data. Components read a profile; they never
 * branch on the environment's name themselves.
 */

/** The environments a stack can select with `cluster-registry:environment`. */
export const ENVIRONMENT_NAMES = ["kind", "k3d", "eks"] as const;
export type EnvironmentName = (typeof ENVIRONMENT_NAMES)[number];

export interface EnvironmentProfile {
    /** Directory on the node that containerd reads `hosts.toml` files from (its `config_path`). */
    certsDir: string;
    /** StorageClass for registry volumes; `undefined` means the cluster's default class. */
    storageClass: string | undefined;
    /** Size of the hosted registry's volume. */
    storageSize: string;
    /** Size of each pull-through cache's volume. */
    cacheStorageSize: string;
    /**
     * Node directory for cache storage instead of volumes, so caches outlive the cluster when the
     * node directory is a mount from the machine (kind's extraMounts); `undefined` means volumes.
     */
    cacheHostPath: string | undefined;
    /** One line on how a workstation reaches the registry to push. */
    pushHelp: string;
}

export const ENVIRONMENTS: Readonly<Record<EnvironmentName, EnvironmentProfile>> = {
    kind: {
        // kind v0.31+ (containerd 2.2) sets config_path here; older kind needs the patch we output.
        certsDir: "/etc/containerd/certs.d",
        storageClass: "standard",
        storageSize: "10Gi",
        cacheStorageSize: "10Gi",
        // kind clusters are recreated all day: keep caches where a host mount can hold them.
        cacheHostPath: "/var/lib/cluster-registry/caches",
        pushHelp: "kind nodes are containers: push through `kubectl port-forward` (or a NodePort published with extraPortMappings)",
    },
    k3d: {
        // k3s points containerd here and only rewrites the directories it generates itself.
        certsDir: "/var/lib/rancher/k3s/agent/etc/containerd/certs.d",
        storageClass: "local-path",
        storageSize: "10Gi",
        cacheStorageSize: "10Gi",
        cacheHostPath: undefined,
        pushHelp: "push through `kubectl port-forward` (or a NodePort published with `k3d cluster create -p`)",
    },
    eks: {
        // AL2023 nodes set config_path to /etc/containerd/certs.d:/etc/docker/certs.d.
        certsDir: "/etc/containerd/certs.d",
        // gp2 exists on every EKS cluster (the in-tree class); from EKS 1.30 no class is the default.
        storageClass: "gp2",
        storageSize: "50Gi",
        cacheStorageSize: "50Gi",
        cacheHostPath: undefined,
        pushHelp: "push through `kubectl port-forward` from a machine with cluster access",
    },
};
