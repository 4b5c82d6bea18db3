/** The `kubernetes.io/dockerconfigjson` Secret pods name in `imagePullSecrets`. */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { renderDockerConfigJson } from "./render/docker-config";
import { PART_OF } from "./labels";

export interface PullSecretArgs {
    /** The Secret's name in every namespace (pods refer to it by name). */
    secretName: string;
    /** Namespaces to create it in; they must exist (pass the Namespace resource in `dependsOn`). */
    namespaces: string[];
    /** Registry hosts (`host:port`) the credentials are for. */
    registries: pulumi.Input<string>[];
    /** User name. */
    username: pulumi.Input<string>;
    /** Password (kept secret). */
    password: pulumi.Input<string>;
}

/** One pull secret per namespace, all with the same credentials. */
export class PullSecret extends pulumi.ComponentResource {
    /** The `.dockerconfigjson` content (secret); also a skopeo/docker authfile. */
    public readonly dockerConfigJson: pulumi.Output<string>;
    /** The Secret's name. */
    public readonly secretName: string;
    /** The Secrets, for `dependsOn`. */
    public readonly secrets: k8s.core.v1.Secret[];

    constructor(name: string, args: PullSecretArgs, opts?: pulumi.ComponentResourceOptions) {
        super("cluster-registry:index:PullSecret", name, {}, opts);
        this.secretName = args.secretName;
        this.dockerConfigJson = pulumi.secret(
            pulumi.all([pulumi.all(args.registries), args.username, args.password]).apply(([hosts, u, p]) => renderDockerConfigJson(hosts, u, p)),
        );
        this.secrets = args.namespaces.map(
            (ns) =>
                new k8s.core.v1.Secret(
                    // Named by namespace, so dropping one namespace from config touches no other.
                    `${name}-${ns}`,
                    {
                        metadata: { name: args.secretName, namespace: ns, labels: { ...PART_OF } },
                        type: "kubernetes.io/dockerconfigjson",
                        stringData: { ".dockerconfigjson": this.dockerConfigJson },
                    },
                    { parent: this },
                ),
        );
        this.registerOutputs({ secretName: this.secretName });
    }
}
