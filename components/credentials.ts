/** Registry users: passwords (generated or given), stable bcrypt hashes, and the htpasswd Secret. */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { BCRYPT_SALT_BYTES, bcryptHash, renderHtpasswd } from "./render/htpasswd";
import { PART_OF } from "./labels";

/**
 * bcrypt cost for generated passwords. The registry checks bcrypt on every request (a CRI pull of a
 * 4-layer image makes 7 authenticated ones) and caches nothing. `npm run bench`, two runs here (the
 * README's Performance table): cost 5 adds 2.9-3.7 ms per request and 8 clients get 369-392 requests/s;
 * cost 10 adds 74-82 ms and caps them at 21-25 requests/s, and a cold 60 MB pull takes 0.54-0.75 s
 * against 0.94 s at cost 10. A 32-character random password has ~190 bits of entropy: no amount of key
 * stretching makes guessing it any harder.
 */
export const GENERATED_PASSWORD_BCRYPT_COST = 5;
/** bcrypt cost for passwords a person chose, which may be guessable and do need stretching. */
export const GIVEN_PASSWORD_BCRYPT_COST = 10;
/** Length of generated passwords: letters and digits only, so they survive shells and URLs. */
export const GENERATED_PASSWORD_LENGTH = 32;

export interface RegistryUser {
    /** User name. */
    name: string;
    /** Password; generated with `random.RandomPassword` when absent. */
    password?: pulumi.Input<string>;
}

export interface RegistryCredentialsArgs {
    /** Namespace of the htpasswd Secret. */
    namespace: pulumi.Input<string>;
    /** Users, at least one. */
    users: RegistryUser[];
    /** bcrypt cost for every user. Default: 5 for generated passwords, 10 for given ones. */
    bcryptCost?: number;
}

/** The users of the hosted registry and the htpasswd Secret it mounts. */
export class RegistryCredentials extends pulumi.ComponentResource {
    /** User names, in config order. */
    public readonly userNames: string[];
    /** Passwords by user name (secret). */
    public readonly passwords: pulumi.Output<Record<string, string>>;
    /** The htpasswd file's content (secret; hashes only, but still nobody's business). */
    public readonly htpasswd: pulumi.Output<string>;
    /** Name of the Secret holding `htpasswd`. */
    public readonly secretName: pulumi.Output<string>;

    constructor(name: string, args: RegistryCredentialsArgs, opts?: pulumi.ComponentResourceOptions) {
        super("cluster-registry:index:RegistryCredentials", name, {}, opts);
        if (args.users.length === 0) throw new Error("RegistryCredentials needs at least one user");

        const entries = args.users.map((user) => {
            const given = user.password !== undefined;
            const password = given
                ? pulumi.secret(user.password as pulumi.Input<string>)
                : new random.RandomPassword(`${name}-${user.name}-password`, { length: GENERATED_PASSWORD_LENGTH, special: false }, { parent: this }).result;
            // The salt lives in state, so an unchanged password hashes to the same line on every run.
            const salt = new random.RandomBytes(`${name}-${user.name}-salt`, { length: BCRYPT_SALT_BYTES }, { parent: this });
            const cost = args.bcryptCost ?? (given ? GIVEN_PASSWORD_BCRYPT_COST : GENERATED_PASSWORD_BCRYPT_COST);
            const hash = pulumi.all([password, salt.base64]).apply(([p, s]) => bcryptHash(p, s, cost));
            return { user: user.name, password, hash };
        });

        this.userNames = args.users.map((u) => u.name);
        this.passwords = pulumi.secret(pulumi.all(entries.map((e) => e.password)).apply((ps) => Object.fromEntries(ps.map((p, i) => [this.userNames[i], p]))));
        this.htpasswd = pulumi.secret(
            pulumi.all(entries.map((e) => e.hash)).apply((hashes) => renderHtpasswd(hashes.map((hash, i) => ({ user: this.userNames[i], hash })))),
        );

        const secret = new k8s.core.v1.Secret(
            `${name}-htpasswd`,
            {
                metadata: { namespace: args.namespace, labels: { ...PART_OF } },
                type: "Opaque",
                stringData: { htpasswd: this.htpasswd },
            },
            { parent: this },
        );
        this.secretName = secret.metadata.name;
        this.registerOutputs({ userNames: this.userNames, secretName: this.secretName });
    }
}
