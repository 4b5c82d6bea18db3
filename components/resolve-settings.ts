/**
 * Turns `ClusterRegistryArgs` into `Settings`: the environment's defaults applied, every value
 * checked against what its consumer accepts, every problem collected before anything is created.
 */
import { RESERVED_USER_NAMES } from "./credentials";
import { ENVIRONMENT_NAMES, EnvironmentName } from "./environments";
import { serviceDnsNames } from "./names";
import {
    CacheArgs,
    CacheSetting,
    ClusterRegistryArgs,
    defaultFor,
    parseCacheEntry,
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

/** Raised for bad settings; lists every problem found, one per line, and never a secret value. */
export class ConfigError extends Error {
    constructor(public readonly problems: string[]) {
        super(`invalid configuration:\n  - ${problems.join("\n  - ")}`);
        this.name = "ConfigError";
    }
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
    /** A value the consumer refuses; a secret setting's value is never shown. */
    invalid(k: SettingKey, value: unknown, expected: string): void {
        // Numbers as the text the user typed in `pulumi config set`.
        const shown = settingOf(k).secret
            ? "its value"
            : // A URL's credentials stay out even where they do not belong (a proxy URL written with them).
              JSON.stringify(typeof value === "number" ? String(value) : value).replace(/\/\/[^/"]*@/g, "//(credentials hidden)@");
        this.add(k, `${shown} is not valid; expected ${expected}`);
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
        const expected = setting.check(entry);
        if (expected) problems.invalid(key, entry, expected);
    }
    if (Array.isArray(value)) noDuplicates(key, value, problems);
    return value;
}

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
        if (seen.has(x)) problems.add(key, `${JSON.stringify(x)} is listed twice; list each once`);
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
        const expected = v.htpasswdUser(u.name);
        if (expected) problems.invalid("users", u.name, expected);
        if (RESERVED_USER_NAMES.includes(u.name))
            problems.invalid("users", u.name, `a name other than ${RESERVED_USER_NAMES.join(" and ")}, the program's own identities`);
        // A password given as an Output is checked by whoever made it; a plain one here.
        const weak = typeof u.password === "string" ? v.password(u.password) : undefined;
        if (weak) problems.add("userPasswords", `the password for ${JSON.stringify(u.name)} is not valid; expected ${weak}`);
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
    const hostProblem = v.cacheHost(given.host);
    const presets = Object.keys(UPSTREAM_PRESETS).join(", ");
    if (remoteUrl === undefined) {
        problems.invalid("caches", shown, `a preset (${presets}) or HOST=URL such as registry.example.com=https://registry.example.com`);
    } else if (hostProblem) {
        problems.invalid("caches", shown, `HOST=URL where HOST is ${hostProblem}`);
    } else if (v.upstreamUrl(remoteUrl)) {
        problems.invalid("caches", shown, `HOST=URL where URL is ${v.upstreamUrl(remoteUrl)}`);
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
        const system = s.createNamespace ? v.namespaceToCreate(s[key]) : undefined;
        if (system) problems.add(key, `${JSON.stringify(s[key])} cannot be created: expected ${system}, or set createNamespace to false`);
    }
    nodeDirectoriesApart(s, problems);
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
}

/** Applies defaults and checks everything, adding to `problems`; the result is only usable when there are none. */
export function collectSettings(args: ClusterRegistryArgs, problems: Problems): Settings {
    const environment = environmentOf(args, problems);
    const { extraNames, nodePort, cacheHostPath, registryVolumeClaim, nodeAgentNamespace, ...plain } = plainValues(args, environment, problems);
    const base = {
        ...plain,
        environment,
        extraDnsNames: extraNames.filter((n) => v.ipAddress(n) !== undefined),
        extraIpAddresses: extraNames.filter((n) => v.ipAddress(n) === undefined),
        nodePort: nodePort === 0 ? undefined : nodePort,
        cacheHostPath: cacheHostPath === "" ? undefined : cacheHostPath,
        registryVolumeClaim: registryVolumeClaim === "" ? undefined : registryVolumeClaim,
        nodeAgentNamespace: nodeAgentNamespace ?? `${plain.namespace}-node-agent`,
    };
    if (args.nodeAgentNamespace === undefined && v.dnsLabel(base.nodeAgentNamespace)) {
        problems.add(
            "nodeAgentNamespace",
            `${JSON.stringify(base.nodeAgentNamespace)}, made from namespace, is too long for a namespace; set nodeAgentNamespace`,
        );
    }
    const settings: Settings = { ...base, users: usersOf(args, problems), caches: cachesOf(args, base, problems) };
    checkTogether(settings, problems);
    return settings;
}

/** Defaults applied and everything checked; throws a `ConfigError` naming every problem. */
export function resolveSettings(args: ClusterRegistryArgs, prefix = ""): Settings {
    const problems = new Problems(prefix);
    const settings = collectSettings(args, problems);
    problems.throwIfAny();
    return settings;
}
