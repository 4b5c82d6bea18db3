/** The whole product: CA, credentials, hosted registry, pull secrets and node configuration. */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { Settings } from "./config";
import { RegistryCredentials } from "./credentials";
import { NodeConfig } from "./node-config";
import { CertificateAuthority } from "./pki";
import { PullSecret } from "./pull-secret";
import { Registry } from "./registry";

/** A private registry that every node trusts, built from validated settings. */
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
                          labels: { "pod-security.kubernetes.io/enforce": "privileged", "app.kubernetes.io/part-of": "cluster-registry" },
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

        const registry = new Registry(
            `${name}-hosted`,
            {
                namespace,
                serviceName: s.serviceName,
                port: s.port,
                nodePort: s.nodePort,
                clusterDomain: s.clusterDomain,
                extraDnsNames: s.extraDnsNames,
                extraIpAddresses: s.extraIpAddresses,
                ca,
                certValidityHours: s.certValidityHours,
                certEarlyRenewalHours: s.certEarlyRenewalHours,
                image: s.image,
                storageClass: s.profile.storageClass,
                storageSize: s.profile.storageSize,
                htpasswd: { secretName: credentials.secretName, content: credentials.htpasswd },
            },
            inNamespace,
        );

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

        const nodeConfig = new NodeConfig(
            `${name}-node-config`,
            {
                namespace,
                owner: `${s.namespace}.${s.serviceName}`,
                image: s.image,
                certsDir: s.profile.certsDir,
                caPem: ca.certPem,
                registries: [
                    {
                        host: registry.host,
                        server: pulumi.interpolate`https://${registry.host}`,
                        endpoint: registry.endpoint,
                        // Nodes only pull; pushes come from people and CI with credentials.
                        capabilities: ["pull", "resolve"],
                    },
                ],
            },
            inNamespace,
        );

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
        });
    }
}
