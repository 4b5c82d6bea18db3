/**
 * Turns `ClusterRegistryArgs` into `Settings`: the environment's defaults applied, every value
 * checked against what its consumer accepts, every problem collected before anything is created.
 */
import * as pulumi from "@pulumi/pulumi";
import { RESERVED_USER_NAMES } from "./credentials";
import { ENVIRONMENT_NAMES, EnvironmentName } from "./environments";
import { serviceDnsNames } from "./names";
import {
    CacheArgs,
    CacheSetting,
    ClusterRegistryArgs,
    defaultFor,
    ObjectStorageSetting,
    parseCacheEntry,
    PROJECT,
    RegistryUserArgs,
    Setting,
    SETTING_KEYS,
    SettingKey,
    settingOf,
    SettingValues,
    Settings,
    StackOnlySettings,
} from "./settings";
import { cacheServiceName, UPSTREAM_PRESETS } from "./upstreams";
import * as v from "./validators";

/**
 * Raised for bad settings; lists every problem found, one per line, and never a secret value. A
 * `RunError`, because Pulumi prints those as their message alone: any other error is "an unhandled
 * exception" with a stack trace, and its message printed a second time.
 */
export class ConfigError extends pulumi.RunError {
    constructor(public readonly problems: string[]) {
        super(`invalid configuration:\n  - ${problems.join("\n  - ")}`);
        this.name = "ConfigError";
    }
}

/** Args made from a stack's config by `parseConfig`: their problems are named as stack keys. */
const STACK_CONFIG_ARGS = new WeakSet<object>();

/** Marks args as the stack's own config, so that messages name `cluster-registry:KEY` rather than an argument. */
export function markStackConfig<T extends object>(args: T): T {
    STACK_CONFIG_ARGS.add(args);
    return args;
}

export function isStackConfig(args: object): boolean {
    return STACK_CONFIG_ARGS.has(args);
}

/** Collects problems, each naming the setting as the user wrote it (`cluster-registry:port`). */
export class Problems {
    readonly list: string[] = [];
    constructor(private readonly prefix: string) {}

    key(k: string): string {
        return `${this.prefix}${k}`;
    }
    add(k: string, text: string): void {
        this.list.push(`${this.key(k)}: ${text}`);
    }
    /** A value the consumer refuses; a secret setting's value is never shown, nor one that looks like a secret. */
    invalid(k: SettingKey, value: unknown, expected: string): void {
        if (settingOf(k).secret) return this.add(k, `its value is not valid; expected ${expected}`);
        const shown = this.shown(value);
        this.add(
            k,
            `${shown ?? "a value that looks like a password or token (not shown)"} is not valid; expected ${expected}${shown ? "" : this.secretHint(k)}`,
        );
    }
    /** A non-secret value as the user typed it, or undefined when it looks like a password or token. */
    shown(value: unknown): string | undefined {
        // Numbers as the text the user typed in `pulumi config set`; lists as JSON.
        const text = typeof value === "string" ? value : typeof value === "number" ? String(value) : JSON.stringify(value);
        // A URL's credentials stay out even where they do not belong (a proxy URL written with them).
        const cleaned = text.replace(/\/\/[^/"]*@/g, "//(credentials hidden)@");
        if (v.looksLikeSecret(cleaned)) return undefined;
        return typeof value === "string" || typeof value === "number" ? JSON.stringify(cleaned) : cleaned;
    }
    /** Where a secret typed into a plain key belongs: a stack stores the key in plain text, so it is in the stack file now. */
    secretHint(k: string): string {
        if (this.prefix !== `${PROJECT}:`) {
            return "; pass a password as pulumi.secret(...) in its own field (users[].password, caches[].credentials)";
        }
        const home: Record<string, string> = { users: "userPasswords (NAME:PASSWORD)", caches: "cacheCredentials (HOST=USER:PASSWORD)" };
        const where = home[k] ? `passwords belong in ${this.key(home[k])}, ` : "";
        return `. ${this.key(k)} is stored in plain text: ${where}set secrets with \`pulumi config set --secret\`, and rotate this one if it is real`;
    }
    throwIfAny(): void {
        if (this.list.length > 0) throw new ConfigError(this.list);
    }
}

/** Settings the generic pass handles: one value (or list of values) with its own check. */
type PlainKey = Exclude<SettingKey, "environment" | "users" | "caches" | keyof StackOnlySettings>;
const SPECIAL_KEYS: readonly string[] = ["environment", "users", "caches", "userPasswords", "cacheCredentials"];
const PLAIN_KEYS = SETTING_KEYS.filter((k): k is PlainKey => !SPECIAL_KEYS.includes(k));

/** The plain settings resolved; only these have no default in some environment. */
type PlainValues = {
    [K in PlainKey]: K extends "bcryptCost" | "nodeAgentNamespace" | "cacheProxyCredentials" ? SettingValues[K] | undefined : SettingValues[K];
};

/** A setting's value: the given one if any, else the environment's default; checked. */
function checked<K extends PlainKey>(args: Partial<SettingValues>, key: K, environment: EnvironmentName, problems: Problems): SettingValues[K] | undefined {
    const given = args[key];
    const value = given ?? defaultFor(key, environment);
    const setting: Setting = settingOf(key);
    if (given === undefined || !setting.check) return value;
    for (const entry of Array.isArray(value) ? value : [value]) {
        const verdict = setting.check(entry);
        if (!verdict.ok) problems.invalid(key, entry, verdict.expected);
    }
    if (Array.isArray(value)) noDuplicates(key, value, problems);
    return value;
}

/** Generic in its key, so that TypeScript pairs each key with its own value type. */
function resolveInto<K extends PlainKey>(
    out: Partial<Pick<SettingValues, PlainKey>>,
    key: K,
    args: ClusterRegistryArgs,
    e: EnvironmentName,
    problems: Problems,
) {
    out[key] = checked(args, key, e, problems);
}

/**
 * Every plain setting, given or defaulted, and checked. The cast is the one place where a loop over
 * keys becomes a record TypeScript can type: every key is filled above, and every key but bcryptCost
 * and nodeAgentNamespace has a default in every environment (a unit test checks that).
 */
function plainValues(args: ClusterRegistryArgs, environment: EnvironmentName, problems: Problems): PlainValues {
    const out: Partial<Pick<SettingValues, PlainKey>> = {};
    for (const key of PLAIN_KEYS) resolveInto(out, key, args, environment, problems);
    return out as PlainValues;
}

function noDuplicates(key: string, values: readonly unknown[], problems: Problems): void {
    const seen = new Set<unknown>();
    for (const x of values) {
        if (seen.has(x)) problems.add(key, `${problems.shown(x) ?? "a value that looks like a password or token"} is listed twice; list each once`);
        seen.add(x);
    }
}

function isEnvironmentName(e: string): e is EnvironmentName {
    return (ENVIRONMENT_NAMES as readonly string[]).includes(e);
}

function environmentOf(args: ClusterRegistryArgs, problems: Problems): EnvironmentName {
    const e = args.environment ?? defaultFor("environment", "kind") ?? "kind";
    if (isEnvironmentName(e)) return e;
    problems.invalid("environment", e, `one of ${ENVIRONMENT_NAMES.join(", ")}`);
    return "kind";
}

function usersOf(args: ClusterRegistryArgs, problems: Problems): RegistryUserArgs[] {
    const users = (args.users ?? defaultFor("users", "kind") ?? []).map((u) => (typeof u === "string" ? { name: u } : u));
    if (users.length === 0) problems.invalid("users", [], "at least one user name");
    for (const u of users) {
        const name = v.checkHtpasswdUser(u.name);
        if (!name.ok) problems.invalid("users", u.name, name.expected);
        if (RESERVED_USER_NAMES.includes(u.name))
            problems.invalid("users", u.name, `a name other than ${RESERVED_USER_NAMES.join(" and ")}, the program's own identities`);
        // A password given as an Output is checked by whoever made it; a plain one here.
        const password = typeof u.password === "string" ? v.checkPassword(u.password) : v.ACCEPTED;
        if (!password.ok) problems.add("userPasswords", `the password for ${JSON.stringify(u.name)} is not valid; expected ${password.expected}`);
    }
    noDuplicates(
        "users",
        users.map((u) => u.name),
        problems,
    );
    return users;
}

/** A cache entry: a preset host, `HOST=URL`, or `CacheArgs`. */
function cacheOf(entry: string | CacheArgs, problems: Problems): CacheSetting | undefined {
    const given = typeof entry === "string" ? parseCacheEntry(entry) : entry;
    const remoteUrl = given.remoteUrl ?? UPSTREAM_PRESETS[given.host];
    // Shown as the user wrote it, but never credentials someone put in the URL.
    const shown = given.remoteUrl === undefined ? given.host : `${given.host}=${given.remoteUrl.replace(/\/\/[^/]*@/, "//(credentials hidden)@")}`;
    const host = v.checkCacheHost(given.host);
    const url = remoteUrl === undefined ? v.ACCEPTED : v.checkUpstreamUrl(remoteUrl);
    const presets = Object.keys(UPSTREAM_PRESETS).join(", ");
    if (remoteUrl === undefined) {
        problems.invalid("caches", shown, `a preset (${presets}) or HOST=URL such as registry.example.com=https://registry.example.com`);
    } else if (!host.ok) {
        problems.invalid("caches", shown, `HOST=URL where HOST is ${host.expected}`);
    } else if (!url.ok) {
        problems.invalid("caches", shown, `HOST=URL where URL is ${url.expected}`);
    } else {
        return { ...given, remoteUrl, serviceName: cacheServiceName(given.host) };
    }
    return undefined;
}

/** The hosted registry's certs.d directory names: a cache may not take one of them. */
function hostedHosts(s: Pick<Settings, "serviceName" | "namespace" | "clusterDomain" | "port" | "pushPort" | "extraDnsNames" | "extraIpAddresses">): string[] {
    const names = [...serviceDnsNames(s.serviceName, s.namespace, s.clusterDomain), ...s.extraDnsNames, ...s.extraIpAddresses];
    return names.flatMap((n) => [`${n}:${s.port}`, `${n}:${s.pushPort}`]);
}

function cachesOf(args: ClusterRegistryArgs, hosted: Parameters<typeof hostedHosts>[0], problems: Problems): CacheSetting[] {
    const caches: CacheSetting[] = [];
    const taken = hostedHosts(hosted);
    for (const entry of args.caches ?? []) {
        const c = cacheOf(entry, problems);
        if (!c) continue;
        if (caches.some((o) => o.host === c.host)) {
            problems.add("caches", `${JSON.stringify(c.host)} is listed twice; one cache serves one upstream, list each once`);
        } else if (taken.includes(c.host)) {
            problems.add("caches", `${JSON.stringify(c.host)} is the hosted registry's own name; a cache needs a host of its own`);
        } else if (c.serviceName === hosted.serviceName || caches.some((o) => o.serviceName === c.serviceName)) {
            problems.add(
                "caches",
                `${JSON.stringify(c.host)} would need the Service name ${c.serviceName}, which is taken; rename ${problems.key("serviceName")}`,
            );
        } else {
            caches.push(c);
        }
    }
    return caches;
}

/** Cache data is chowned to the registry's user: it must never share containerd's hosts directory. */
function nodeDirectoriesApart(s: Pick<Settings, "certsDir" | "cacheHostPath">, problems: Problems): void {
    const cache = s.cacheHostPath;
    if (cache === undefined) return;
    const within = (inner: string, outer: string) => inner === outer || inner.startsWith(`${outer}/`);
    if (within(cache, s.certsDir) || within(s.certsDir, cache)) {
        const where = cache === s.certsDir ? "is" : within(cache, s.certsDir) ? "is inside" : "contains";
        problems.invalid(
            "cacheHostPath",
            cache,
            `a directory apart from certsDir; this one ${where} certsDir (${JSON.stringify(s.certsDir)}), so cache data would be owned by the registry's user inside containerd's hosts directory`,
        );
    }
}

/** A preloaded upstream is not the hosted registry itself and needs node pulls; proxy credentials need a proxy. */
function preloadedApart(s: Settings, problems: Problems): void {
    const taken = hostedHosts(s);
    for (const h of s.preloadedUpstreams) {
        if (taken.includes(h)) problems.add("preloadedUpstreams", `${JSON.stringify(h)} is the hosted registry's own name; list upstream registries only`);
    }
    // Kubelet's pull secrets name the hosted registry, never docker.io: only the node identity gets there.
    if (s.preloadedUpstreams.length > 0 && !s.nodePulls) {
        problems.add("preloadedUpstreams", `needs ${problems.key("nodePulls")}: nodes reach preloaded images with the node identity from hosts.toml`);
    }
    if (s.cacheProxyCredentials !== undefined && s.cacheHttpsProxy === "" && s.cacheHttpProxy === "") {
        problems.add(
            "cacheProxyCredentials",
            `is set but neither ${problems.key("cacheHttpsProxy")} nor ${problems.key("cacheHttpProxy")} is; set the proxy they are for`,
        );
    }
}

/** Checks that involve more than one setting. */
function checkTogether(s: Settings, problems: Problems): void {
    if (s.certEarlyRenewalHours >= s.certValidityHours) {
        problems.invalid("certEarlyRenewalHours", String(s.certEarlyRenewalHours), `fewer hours than certValidityHours (${s.certValidityHours})`);
    }
    if (s.certValidityHours > s.caValidityHours) {
        problems.invalid("certValidityHours", String(s.certValidityHours), `at most caValidityHours (${s.caValidityHours})`);
    }
    if (s.pushPort === s.port) {
        problems.invalid("pushPort", s.pushPort, `a port other than port (${s.port}): pulls and pushes are served by different containers`);
    }
    for (const key of ["namespace", "nodeAgentNamespace"] as const) {
        // A name that is no DNS label at all was reported once already, by its own check.
        const creatable = s.createNamespace && v.checkDnsLabel(s[key]).ok ? v.checkNamespaceToCreate(s[key]) : v.ACCEPTED;
        if (!creatable.ok) problems.add(key, `${JSON.stringify(s[key])} cannot be created: expected ${creatable.expected}, or set createNamespace to false`);
    }
    nodeDirectoriesApart(s, problems);
    if (s.registryVolumeClaim && s.createNamespace) {
        problems.add(
            "registryVolumeClaim",
            `names an existing claim, which lives in an existing namespace, but ${problems.key("createNamespace")} is true (the default) and would create the namespace; set createNamespace to false`,
        );
    }
    if (s.objectStorage && s.registryVolumeClaim) {
        problems.add("registryVolumeClaim", `names a volume, but objectStorageBucket keeps the images in a bucket; unset one of them`);
    }
    preloadedApart(s, problems);
    if (s.nodeAgentNamespace === s.namespace) {
        problems.add("nodeAgentNamespace", `is the registries' namespace; the privileged node agent needs a namespace of its own`);
    }
    if (s.patchDefaultServiceAccounts && s.pullSecretNamespaces.length === 0) {
        problems.add(
            "patchDefaultServiceAccounts",
            `is true but ${problems.key("pullSecretNamespaces")} is empty; list the namespaces whose default ServiceAccount should get the pull secret`,
        );
    }
    if (s.serviceMonitors && s.metricsNamespaces.length === 0) {
        problems.add(
            "serviceMonitors",
            `is true but ${problems.key("metricsNamespaces")} is empty, so no pod can reach the metrics; list the namespace Prometheus scrapes from`,
        );
    }
}

/** Applies defaults and checks everything, adding to `problems`; the result is only usable when there are none. */
export function collectSettings(args: ClusterRegistryArgs, problems: Problems): Settings {
    const environment = environmentOf(args, problems);
    const { extraNames, nodePort, cacheHostPath, registryVolumeClaim, nodeAgentNamespace, ...plain } = plainValues(args, environment, problems);
    const base = {
        ...plain,
        environment,
        extraDnsNames: extraNames.filter((n) => !v.isIpAddress(n)),
        extraIpAddresses: extraNames.filter((n) => v.isIpAddress(n)),
        nodePort: nodePort === 0 ? undefined : nodePort,
        cacheHostPath: cacheHostPath === "" ? undefined : cacheHostPath,
        registryVolumeClaim: registryVolumeClaim === "" ? undefined : registryVolumeClaim,
        nodeAgentNamespace: nodeAgentNamespace ?? `${plain.namespace}-node-agent`,
    };
    // Only when namespace itself is valid (else it is reported once, as itself): then length is the only way to fail.
    if (args.nodeAgentNamespace === undefined && v.checkDnsLabel(plain.namespace).ok && !v.checkDnsLabel(base.nodeAgentNamespace).ok) {
        problems.add(
            "nodeAgentNamespace",
            `${JSON.stringify(base.nodeAgentNamespace)}, made from namespace, is too long for a namespace; set nodeAgentNamespace`,
        );
    }
    const storage = objectStorageOf(plain, environment, problems);
    // Their raw strings live on as `objectStorage` alone.
    for (const k of ["objectStorageBucket", ...OBJECT_STORAGE_KEYS]) delete (base as Record<string, unknown>)[k];
    const settings: Settings = { ...base, ...storage, users: usersOf(args, problems), caches: cachesOf(args, base, problems) };
    checkTogether(settings, problems);
    return settings;
}

/** The object storage settings, set only with a bucket. */
const OBJECT_STORAGE_KEYS = [
    "objectStorageRegion",
    "objectStorageEndpoint",
    "objectStorageRootDirectory",
    "objectStorageKmsKeyId",
    "objectStorageRoleArn",
    "objectStorageAccessKey",
    "objectStorageSecretKey",
] as const;

/**
 * The hosted registry's object storage and replicas, and the combinations that cannot work: storage
 * settings without a bucket, several read replicas on one ReadWriteOnce volume, static keys on EKS.
 */
function objectStorageOf(plain: Record<string, unknown>, environment: EnvironmentName, problems: Problems): Pick<Settings, "objectStorage" | "pullReplicas"> {
    const text = (k: string) => ((plain[k] as string | undefined) ?? "") || undefined;
    const bucket = text("objectStorageBucket");
    const pullReplicas = (plain.pullReplicas as number | undefined) ?? (bucket ? 2 : 1);
    if (!bucket) {
        for (const k of OBJECT_STORAGE_KEYS.filter((key) => text(key) !== undefined)) {
            problems.add(
                k,
                `is set but ${problems.key("objectStorageBucket")} is empty; set objectStorageBucket to keep the images in that bucket, or unset ${k}`,
            );
        }
        if (pullReplicas > 1) {
            problems.invalid(
                "pullReplicas",
                pullReplicas,
                `1 while the images are on a ReadWriteOnce volume (one node holds it); set objectStorageBucket for more read replicas`,
            );
        }
        return { objectStorage: undefined, pullReplicas };
    }
    const region = text("objectStorageRegion");
    if (!region)
        problems.add("objectStorageRegion", `is required with objectStorageBucket: the bucket's AWS region, or us-east-1 for most S3-compatible stores`);
    const [accessKey, secretKey] = [text("objectStorageAccessKey"), text("objectStorageSecretKey")];
    if (!accessKey !== !secretKey)
        problems.add(accessKey ? "objectStorageSecretKey" : "objectStorageAccessKey", "is required with the other key of the pair; set both or neither");
    if (accessKey && environment === "eks") {
        problems.add(
            "objectStorageAccessKey",
            `static keys are refused on eks; unset them and use objectStorageRoleArn (IRSA) or an EKS Pod Identity association`,
        );
    }
    if (text("objectStorageRoleArn") && accessKey)
        problems.add("objectStorageRoleArn", "and objectStorageAccessKey both give the registry an identity; keep one");
    const objectStorage: ObjectStorageSetting = {
        bucket,
        region: region ?? "",
        endpoint: text("objectStorageEndpoint"),
        rootDirectory: text("objectStorageRootDirectory"),
        kmsKeyId: text("objectStorageKmsKeyId"),
        roleArn: text("objectStorageRoleArn"),
        keys: accessKey && secretKey ? { accessKey, secretKey } : undefined,
    };
    return { objectStorage, pullReplicas };
}

/** Defaults applied and everything checked; throws a `ConfigError` naming every problem. */
export function resolveSettings(args: ClusterRegistryArgs, prefix = ""): Settings {
    const problems = new Problems(prefix);
    const settings = collectSettings(args, problems);
    problems.throwIfAny();
    return settings;
}
