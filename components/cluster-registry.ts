/** The whole product: CA, credentials, hosted registry, caches, pull secrets and node configuration. */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { Settings } from "./config";
import { RegistryCredentials } from "./credentials";
import { NodeConfig, NodeRegistry } from "./node-config";
import { CertificateAuthority } from "./pki";
import { PullSecret } from "./pull-secret";
import { Registry } from "./registry";
import { MirrorEntry, renderBottlerocketSettings, renderK3sRegistries, renderKindClusterConfig, renderLocalRegistryHosting } from "./render/discovery";
import { PART_OF } from "./labels";

/** KEP-1755's well-known place, read by Tilt, Skaffold, ctlptl and others. */
export const LOCAL_REGISTRY_HOSTING = { namespace: "kube-public", name: "local-registry-hosting", key: "localRegistryHosting.v1" } as const;
/** Suggested directory on the machine running kind that keeps caches across cluster re-creation. */
export const KIND_CACHE_HOST_DIR = "/var/tmp/cluster-registry-caches";
/** Where the k3s registries.yaml snippet expects the CA on each node. */
export const K3S_CA_FILE = "/etc/rancher/k3s/cluster-registry-ca.crt";
/** The `help` field of the discovery ConfigMap: the KEP that defines it and what its fields mean. */
export const HELP_URL = "https://github.com/kubernetes/enhancements/tree/master/keps/sig-cluster-lifecycle/generic/1755-communicating-a-local-registry";

/** A private registry, and caches of public ones, that every node trusts. */
export class ClusterRegistry extends pulumi.ComponentResource {
    /** `<svc>.<ns>.svc.<domain>:<port>`: use it in image references. */
    public readonly host: pulumi.Output<string>;
    /** Where a workstation pushes, once it reaches the Service (see `pushHelp`). */
    public readonly pushEndpoint: pulumi.Output<string>;
    /** How to reach `pushEndpoint` from a workstation. */
    public readonly pushHelp: pulumi.Output<string>;
    /** The Service's ClusterIP, which nodes use in place of DNS. */
    public readonly clusterIP: pulumi.Output<string>;
    /** The CA certificate, PEM: trust it to push from a workstation. */
    public readonly caCertPem: pulumi.Output<string>;
    /** Registry user names. */
    public readonly users: pulumi.Output<string[]>;
    /** Passwords by user (secret). */
    public readonly passwords: pulumi.Output<Record<string, string>>;
    /** `.dockerconfigjson` for the first user (secret): an authfile for skopeo, docker or crane. */
    public readonly dockerConfigJson: pulumi.Output<string>;
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

    constructor(name: string, settings: Settings, opts?: pulumi.ComponentResourceOptions) {
        super("cluster-registry:index:ClusterRegistry", name, {}, opts);
        const s = settings;

        const namespaceResource = s.createNamespace
            ? new k8s.core.v1.Namespace(
                  `${name}-namespace`,
                  {
                      metadata: {
                          name: s.namespace,
                          // The node-config DaemonSet mounts a hostPath, which only the privileged
                          // Pod Security level admits; the registry pods themselves are restricted.
                          labels: { "pod-security.kubernetes.io/enforce": "privileged", ...PART_OF },
                      },
                  },
                  { parent: this },
              )
            : undefined;
        const namespace = namespaceResource ? namespaceResource.metadata.name : pulumi.output(s.namespace);
        const inNamespace = { parent: this, dependsOn: namespaceResource ? [namespaceResource] : [] };

        const ca = new CertificateAuthority(
            `${name}-ca`,
            { commonName: `cluster-registry CA (${s.namespace})`, keyAlgorithm: s.keyAlgorithm, validityHours: s.caValidityHours },
            { parent: this },
        );

        const credentials = new RegistryCredentials(
            `${name}-credentials`,
            {
                namespace,
                users: s.users.map((u) => ({ name: u.name, password: u.password === undefined ? undefined : pulumi.secret(u.password) })),
                bcryptCost: s.bcryptCost,
            },
            { parent: this },
        );

        const common = {
            namespace,
            port: s.port,
            clusterDomain: s.clusterDomain,
            ca,
            certValidityHours: s.certValidityHours,
            certEarlyRenewalHours: s.certEarlyRenewalHours,
            image: s.image,
            storageClass: s.profile.storageClass,
        };
        const registry = new Registry(
            `${name}-hosted`,
            {
                ...common,
                serviceName: s.serviceName,
                nodePort: s.nodePort,
                extraDnsNames: s.extraDnsNames,
                extraIpAddresses: s.extraIpAddresses,
                storageSize: s.profile.storageSize,
                htpasswd: { secretName: credentials.secretName, content: credentials.htpasswd },
            },
            inNamespace,
        );

        // One cache per upstream: distribution's proxy mode serves one upstream and takes no pushes.
        const caches = s.caches.map((c) => ({
            host: c.host,
            remoteUrl: c.remoteUrl,
            registry: new Registry(
                `${name}-${c.serviceName}`,
                {
                    ...common,
                    serviceName: c.serviceName,
                    storageSize: s.profile.cacheStorageSize,
                    hostPath: s.profile.cacheHostPath ? `${s.profile.cacheHostPath}/${c.serviceName}` : undefined,
                    proxy: {
                        remoteUrl: c.remoteUrl,
                        ttl: s.cacheTtl,
                        credentials: c.credentials && { username: pulumi.secret(c.credentials.username), password: pulumi.secret(c.credentials.password) },
                    },
                },
                inNamespace,
            ),
        }));

        const pushEndpoint = s.nodePort ? `<node address>:${s.nodePort}` : `localhost:${s.port}`;
        const firstUser = s.users[0].name;
        const pullSecret = new PullSecret(
            `${name}-pull`,
            {
                secretName: s.pullSecretName,
                namespaces: [s.namespace, ...s.pullSecretNamespaces],
                // The workstation's name too, so the same authfile pushes through a port-forward.
                registries: [registry.host, ...(s.nodePort ? [] : [pushEndpoint])],
                username: firstUser,
                password: credentials.passwords.apply((p) => p[firstUser]),
            },
            inNamespace,
        );

        if (s.patchDefaultServiceAccounts) {
            for (const ns of s.pullSecretNamespaces) {
                // imagePullSecrets is an atomic list for server-side apply: if another manager
                // already set it, this patch fails with a conflict rather than replacing theirs.
                new k8s.core.v1.ServiceAccountPatch(
                    `${name}-default-sa-${ns}`,
                    { metadata: { name: "default", namespace: ns }, imagePullSecrets: [{ name: s.pullSecretName }] },
                    { parent: this, dependsOn: pullSecret.secrets },
                );
            }
        }

        const nodeRegistries: NodeRegistry[] = [
            {
                host: registry.host,
                server: pulumi.interpolate`https://${registry.host}`,
                endpoint: registry.endpoint,
                // Nodes only pull; pushes come from people and CI with credentials.
                capabilities: ["pull", "resolve"],
                serverIsOurs: true,
            },
            ...caches.map((c): NodeRegistry => ({
                host: c.host,
                // Fail closed: the cache is also the fallback, so a pull never leaves the cluster.
                server: s.mirrorFallback === "upstream" ? c.remoteUrl : c.registry.endpoint,
                endpoint: c.registry.endpoint,
                capabilities: ["pull", "resolve"],
                serverIsOurs: s.mirrorFallback !== "upstream",
            })),
        ];
        const nodeConfig = new NodeConfig(
            `${name}-node-config`,
            {
                namespace,
                owner: `${s.namespace}.${s.serviceName}`,
                image: s.image,
                certsDir: s.profile.certsDir,
                caPem: ca.certPem,
                registries: nodeRegistries,
            },
            inNamespace,
        );

        if (s.localRegistryHosting) {
            new k8s.core.v1.ConfigMap(
                `${name}-local-registry-hosting`,
                {
                    metadata: {
                        name: LOCAL_REGISTRY_HOSTING.name,
                        namespace: LOCAL_REGISTRY_HOSTING.namespace,
                        labels: { ...PART_OF },
                    },
                    data: {
                        [LOCAL_REGISTRY_HOSTING.key]: registry.host.apply((h) =>
                            // With a NodePort, kind and k3d publish it on the machine's localhost.
                            renderLocalRegistryHosting({
                                host: `localhost:${s.nodePort ?? s.port}`,
                                hostFromContainerRuntime: h,
                                hostFromClusterNetwork: h,
                                help: HELP_URL,
                            }),
                        ),
                    },
                },
                { parent: this },
            );
        }

        const mirrors: pulumi.Output<MirrorEntry[]> = pulumi.all(
            nodeRegistries.map((r) => pulumi.all([r.host, r.endpoint]).apply(([host, endpoint]) => ({ host, endpoint }))),
        );
        this.kindClusterConfig = pulumi.output(
            renderKindClusterConfig(
                s.profile.certsDir,
                s.profile.cacheHostPath ? { hostDir: KIND_CACHE_HOST_DIR, nodeDir: s.profile.cacheHostPath } : undefined,
            ),
        );
        this.k3sRegistriesYaml = mirrors.apply((m) => renderK3sRegistries(m, K3S_CA_FILE));
        this.bottlerocketSettings = pulumi.all([mirrors, ca.certPem]).apply(([m, pem]) => renderBottlerocketSettings(m, pem, "cluster-registry"));

        this.host = registry.host;
        this.pushEndpoint = pulumi.output(pushEndpoint);
        this.pushHelp = pulumi.output(
            s.nodePort
                ? `push to <node address>:${s.nodePort} (NodePort); ${s.profile.pushHelp}`
                : `kubectl -n ${s.namespace} port-forward svc/${s.serviceName} ${s.port}:${s.port}, then push to localhost:${s.port} (${s.profile.pushHelp})`,
        );
        this.clusterIP = registry.clusterIP;
        this.caCertPem = ca.certPem;
        this.users = pulumi.output(credentials.userNames);
        this.passwords = credentials.passwords;
        this.dockerConfigJson = pullSecret.dockerConfigJson;
        this.pullSecretName = pulumi.output(pullSecret.secretName);
        this.certsDir = pulumi.output(nodeConfig.certsDir);
        this.caches = pulumi.all(caches.map((c) => c.registry.endpoint.apply((e) => [c.host, e] as const))).apply((pairs) => Object.fromEntries(pairs));
        this.registerOutputs({
            host: this.host,
            pushEndpoint: this.pushEndpoint,
            clusterIP: this.clusterIP,
            caCertPem: this.caCertPem,
            users: this.users,
            passwords: this.passwords,
            dockerConfigJson: this.dockerConfigJson,
            pullSecretName: this.pullSecretName,
            certsDir: this.certsDir,
            caches: this.caches,
            kindClusterConfig: this.kindClusterConfig,
            k3sRegistriesYaml: this.k3sRegistriesYaml,
            bottlerocketSettings: this.bottlerocketSettings,
        });
    }
}
