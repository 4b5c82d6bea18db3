/** Registry users: passwords (generated or given), stable bcrypt hashes, and the htpasswd Secret. */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { BCRYPT_SALT_BYTES, bcryptHash, renderHtpasswd } from "./render/htpasswd";
import { PART_OF } from "./labels";

/**
 * bcrypt cost for generated passwords. The registry checks bcrypt on every request (a CRI pull of a
 * 4-layer image makes 7 authenticated ones) and caches nothing; `npm run bench` measures what each
 * cost adds (the README's Performance section has the figures: cost 10 serves about a fourteenth of
 * cost 5's requests/s). A 32-character random password has ~190 bits of entropy: no amount of key
 * stretching makes guessing it any harder.
 */
export const GENERATED_PASSWORD_BCRYPT_COST = 5;
/** bcrypt cost for passwords a person chose, which may be guessable and do need stretching. */
export const GIVEN_PASSWORD_BCRYPT_COST = 10;
/** Length of generated passwords: letters and digits only, so they survive shells and URLs. */
export const GENERATED_PASSWORD_LENGTH = 32;

/**
 * bcrypt cost for the identities the program makes for machines (the node identity, the pull-only
 * identity): the lowest bcrypt allows. Their passwords are 32 random letters and digits (~190 bits),
 * which no guessing reaches at any cost, so stretching adds nothing but the price every request pays:
 * the registry checks bcrypt on every request, and every node pull of every image goes through it.
 * Requiring the node identity on caches costs each cache request that check (the README's "What node
 * pulls cost" has the benchmark's figures), against nothing for the anonymous caches before.
 */
export const GENERATED_IDENTITY_BCRYPT_COST = 4;
/** The identity every node's containerd pulls with (sent by hosts.toml, never in a pod's reach). */
export const NODE_IDENTITY = "cluster-registry-node";
/** The identity of the pull secret: may pull from the hosted registry, nothing else. */
export const PULL_IDENTITY = "cluster-registry-pull";
/** Names users may not take: the program's own identities. */
export const RESERVED_USER_NAMES: readonly string[] = [NODE_IDENTITY, PULL_IDENTITY];

/** A registry user as the components take it. */
export interface RegistryUserArgs {
    /** User name, as htpasswd and the pull secret carry it. */
    name: string;
    /** The user's password (12 characters to 72 bytes); generated when absent. Default: generated. */
    password?: pulumi.Input<string>;
}

export interface RegistryCredentialsArgs {
    /** Namespace of the htpasswd Secrets. */
    namespace: pulumi.Input<string>;
    /** People and CI that push, at least one. */
    users: RegistryUserArgs[];
    /** bcrypt cost for every user. Default: 5 for generated passwords, 10 for given ones. */
    bcryptCost?: number;
    /** Machine identities with generated passwords at {@link GENERATED_IDENTITY_BCRYPT_COST}. Default: none. */
    identities?: string[];
    /**
     * The htpasswd Secrets to make, by a short name (the Secret's logical name is `<name>-<key>`), each
     * listing the users and identities it admits. Default: one, `htpasswd`, with every user.
     */
    files?: Record<string, string[]>;
}

/** An htpasswd Secret: its name, and its content for the pod's rollout checksum (secret). */
export interface HtpasswdSecret {
    secretName: pulumi.Output<string>;
    content: pulumi.Output<string>;
}

/** The registries' users and machine identities, and the htpasswd Secrets the registries mount. */
export class RegistryCredentials extends pulumi.ComponentResource {
    /** User names, in config order. */
    public readonly userNames: string[];
    /** Passwords by user name (secret). */
    public readonly passwords: pulumi.Output<Record<string, string>>;
    /** Passwords of the machine identities, by name (secret). */
    public readonly identityPasswords: pulumi.Output<Record<string, string>>;
    /** Each htpasswd Secret asked for in `files`. */
    public readonly htpasswd: Record<string, HtpasswdSecret>;

    constructor(name: string, args: RegistryCredentialsArgs, opts?: pulumi.ComponentResourceOptions) {
        super("cluster-registry:index:RegistryCredentials", name, {}, opts);
        if (args.users.length === 0) throw new Error("RegistryCredentials needs at least one user");
        const identities = args.identities ?? [];

        const users = args.users.map((user) => {
            const password =
                user.password !== undefined
                    ? pulumi.secret(user.password)
                    : new random.RandomPassword(`${name}-${user.name}-password`, { length: GENERATED_PASSWORD_LENGTH, special: false }, { parent: this })
                          .result;
            const cost = args.bcryptCost ?? (user.password !== undefined ? GIVEN_PASSWORD_BCRYPT_COST : GENERATED_PASSWORD_BCRYPT_COST);
            return { user: user.name, password, hash: this.hashed(`${name}-${user.name}`, password, cost) };
        });
        const machines = identities.map((id) => {
            const password = new random.RandomPassword(
                `${name}-identity-${id}-password`,
                { length: GENERATED_PASSWORD_LENGTH, special: false },
                { parent: this },
            ).result;
            return { user: id, password, hash: this.hashed(`${name}-identity-${id}`, password, GENERATED_IDENTITY_BCRYPT_COST) };
        });

        this.userNames = args.users.map((u) => u.name);
        this.passwords = byName(users);
        this.identityPasswords = byName(machines);
        const all = [...users, ...machines];
        const files = args.files ?? { htpasswd: this.userNames };
        this.htpasswd = Object.fromEntries(
            Object.entries(files).map(([key, names]) => {
                const entries = names.map(
                    (n) => all.find((e) => e.user === n) ?? fail(`RegistryCredentials: ${key} names ${n}, who is not a user or identity`),
                );
                // Before the doors (05fd80f), one Secret `<name>-htpasswd` admitted every user; the read-only
                // door's, which admits them too, takes over its state rather than a new one replacing it.
                const aliases = args.files && key === "pull" ? [{ name: `${name}-htpasswd` }] : [];
                return [key, this.htpasswdSecret(`${name}-${key}`, args.namespace, entries, aliases)];
            }),
        );
        this.registerOutputs({ userNames: this.userNames });
    }

    /** A bcrypt hash whose salt lives in state, so an unchanged password hashes to the same line on every run. */
    private hashed(prefix: string, password: pulumi.Output<string>, cost: number): pulumi.Output<string> {
        const salt = new random.RandomBytes(`${prefix}-salt`, { length: BCRYPT_SALT_BYTES }, { parent: this });
        return pulumi.all([password, salt.base64]).apply(([p, s]) => bcryptHash(p, s, cost));
    }

    private htpasswdSecret(
        secretName: string,
        namespace: pulumi.Input<string>,
        entries: Array<{ user: string; hash: pulumi.Output<string> }>,
        aliases: pulumi.Alias[],
    ): HtpasswdSecret {
        // Hashes only, but still nobody's business: secret.
        const content = pulumi.secret(
            pulumi.all(entries.map((e) => e.hash)).apply((hashes) => renderHtpasswd(hashes.map((hash, i) => ({ user: entries[i].user, hash })))),
        );
        const secret = new k8s.core.v1.Secret(
            secretName,
            { metadata: { namespace, labels: { ...PART_OF } }, type: "Opaque", stringData: { htpasswd: content } },
            { parent: this, aliases },
        );
        return { secretName: secret.metadata.name, content };
    }
}

function byName(entries: Array<{ user: string; password: pulumi.Output<string> }>): pulumi.Output<Record<string, string>> {
    return pulumi.secret(pulumi.all(entries.map((e) => e.password)).apply((ps) => Object.fromEntries(ps.map((p, i) => [entries[i].user, p]))));
}

function fail(message: string): never {
    throw new Error(message);
}
