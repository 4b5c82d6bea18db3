/**
 * The stack's configuration: every key, its parser, and the validation that runs before any
 * resource is registered. Everything here is plain TypeScript so tests call it directly.
 */
import * as net from "node:net";
import * as pulumi from "@pulumi/pulumi";
import { ENVIRONMENTS, ENVIRONMENT_NAMES, EnvironmentName, EnvironmentProfile } from "./environments";
import { cacheServiceName, DEFAULT_CACHE_TTL, UPSTREAM_PRESETS } from "./upstreams";

/** Config namespace: the project name in Pulumi.yaml. */
export const PROJECT = "cluster-registry";

/**
 * The distribution registry image (the program inside `registry:2`). Pinned: a moving tag would
 * change the pod on a rerun with no config change.
 */
export const DEFAULT_REGISTRY_IMAGE = "docker.io/library/registry:2.8.3";

/** A user's password as given in config, or generated when absent. */
export interface UserSetting {
    name: string;
    /** Plain text only while config is parsed; components wrap it with `pulumi.secret` at once. */
    password?: string;
}

/** A pull-through cache of one upstream registry. */
export interface CacheSetting {
    /** The name in image references, e.g. `docker.io`: the certs.d directory containerd looks up. */
    host: string;
    /** The upstream's registry API, e.g. `https://registry-1.docker.io`. */
    remoteUrl: string;
    /** The cache's Service name. */
    serviceName: string;
    /** Upstream credentials; plain text only while config is parsed. */
    credentials?: { username: string; password: string };
}

/** What a node does when a cache is down: go to the upstream itself, or fail the pull. */
export type MirrorFallback = "upstream" | "none";

/** Validated settings, with the environment's defaults and the user's overrides applied. */
export interface Settings {
    environment: EnvironmentName;
    profile: EnvironmentProfile;
    namespace: string;
    createNamespace: boolean;
    serviceName: string;
    port: number;
    nodePort: number | undefined;
    clusterDomain: string;
    extraDnsNames: string[];
    extraIpAddresses: string[];
    users: UserSetting[];
    bcryptCost: number | undefined;
    image: string;
    pullSecretName: string;
    pullSecretNamespaces: string[];
    keyAlgorithm: "ECDSA" | "RSA";
    caValidityHours: number;
    certValidityHours: number;
    certEarlyRenewalHours: number;
    caches: CacheSetting[];
    mirrorFallback: MirrorFallback;
    cacheTtl: string;
    patchDefaultServiceAccounts: boolean;
    localRegistryHosting: boolean;
}

/** Raised for bad configuration; lists every problem found, one per line. */
export class ConfigError extends Error {
    constructor(public readonly problems: string[]) {
        super(`invalid configuration:\n  - ${problems.join("\n  - ")}`);
        this.name = "ConfigError";
    }
}

/** What `pulumi config` holds: every value as the string Pulumi stores (arrays as JSON). */
export type RawConfig = Record<string, string | undefined>;

/** The keys this program reads; anything else under `cluster-registry:` is a typo we report. */
export const CONFIG_KEYS = [
    "environment",
    "namespace",
    "createNamespace",
    "serviceName",
    "port",
    "nodePort",
    "clusterDomain",
    "extraNames",
    "users",
    "userPasswords",
    "bcryptCost",
    "image",
    "storageClass",
    "storageSize",
    "certsDir",
    "pullSecretName",
    "pullSecretNamespaces",
    "keyAlgorithm",
    "caValidityHours",
    "certValidityHours",
    "certEarlyRenewalHours",
    "caches",
    "cacheCredentials",
    "mirrorFallback",
    "cacheTtl",
    "cacheStorageSize",
    "cacheHostPath",
    "patchDefaultServiceAccounts",
    "localRegistryHosting",
] as const;
export type ConfigKey = (typeof CONFIG_KEYS)[number];

/** Keys whose values are credentials and must be stored encrypted (`pulumi config set --secret`). */
export const SECRET_KEYS: readonly ConfigKey[] = ["userPasswords", "cacheCredentials"];

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const QUANTITY = /^[1-9][0-9]*(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/;
// htpasswd separates user and hash with ':'; the registry also rejects names with control chars.
const USER_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
// Go durations as distribution parses proxy.ttl: 168h, 72h30m, 90m.
const DURATION = /^(?=\d)(\d+h)?(\d+m)?(\d+s)?$/;

/** True for a registry host as it appears in image references: a DNS name with an optional port. */
export function isRegistryHost(value: string): boolean {
    const m = /^([^:]+)(?::(\d{1,5}))?$/.exec(value);
    return m !== null && isDnsName(m[1]) && m[1].includes(".") && (m[2] === undefined || (Number(m[2]) > 0 && Number(m[2]) < 65536));
}

/** True for an upstream URL distribution can proxy: http(s), a host, no path, query or credentials. */
export function isUpstreamUrl(value: string): boolean {
    let u: URL;
    try {
        u = new URL(value);
    } catch {
        return false;
    }
    return (
        (u.protocol === "https:" || u.protocol === "http:") &&
        u.hostname !== "" &&
        u.username === "" &&
        u.password === "" &&
        (u.pathname === "/" || u.pathname === "") &&
        u.search === "" &&
        u.hash === "" &&
        !value.endsWith("/")
    );
}

/** True for an RFC 1123 DNS name (lower case labels of at most 63 characters, 253 in all). */
export function isDnsName(value: string): boolean {
    return value.length <= 253 && value.split(".").every((label) => DNS_LABEL.test(label));
}

/** True for a Kubernetes namespace or Service name (an RFC 1123 label). */
export function isDnsLabel(value: string): boolean {
    return DNS_LABEL.test(value);
}

/** True for an absolute directory path on a node, with nothing a shell or YAML could trip on. */
export function isNodePath(value: string): boolean {
    return /^\/[A-Za-z0-9._/-]*[A-Za-z0-9._-]$/.test(value) && !value.split("/").includes("..");
}

/** True for a Kubernetes storage quantity such as `10Gi`. */
export function isStorageQuantity(value: string): boolean {
    return QUANTITY.test(value);
}

/**
 * Parses and validates raw config. Collects every problem before throwing so a user fixes them
 * in one round; `secretKeys` names the keys Pulumi holds encrypted.
 */
export function parseSettings(raw: RawConfig, secretKeys: ReadonlySet<string> = new Set()): Settings {
    const problems: string[] = [];
    const key = (k: ConfigKey) => `${PROJECT}:${k}`;
    const fail = (k: ConfigKey, value: unknown, expected: string) => {
        // A secret key's value is never echoed: these messages reach terminals and CI logs.
        const shown = SECRET_KEYS.includes(k) ? "its value" : JSON.stringify(value);
        problems.push(`${key(k)}: ${shown} is not valid; expected ${expected}`);
    };

    const str = (k: ConfigKey, def: string, ok: (v: string) => boolean, expected: string): string => {
        const v = raw[k];
        if (v === undefined) return def;
        if (!ok(v)) fail(k, v, expected);
        return v;
    };
    const int = (k: ConfigKey, def: number | undefined, min: number, max: number, expected?: string) => {
        const v = raw[k];
        if (v === undefined) return def;
        const n = /^-?[0-9]+$/.test(v.trim()) ? Number(v) : NaN;
        if (!Number.isInteger(n) || n < min || n > max) {
            fail(k, v, expected ?? `an integer from ${min} to ${max}`);
            return def;
        }
        return n;
    };
    const bool = (k: ConfigKey, def: boolean) => {
        const v = raw[k];
        if (v === undefined) return def;
        if (v !== "true" && v !== "false") {
            fail(k, v, "true or false");
            return def;
        }
        return v === "true";
    };
    const list = (k: ConfigKey, def: string[]): string[] => {
        const v = raw[k];
        if (v === undefined) return def;
        let parsed: unknown;
        try {
            parsed = JSON.parse(v);
        } catch {
            parsed = undefined;
        }
        if (!Array.isArray(parsed) || !parsed.every((e) => typeof e === "string")) {
            const secret = SECRET_KEYS.includes(k) ? "--secret " : "";
            fail(k, v, `a list of strings (set it with \`pulumi config set ${secret}--path '${k}[0]' VALUE\`)`);
            return def;
        }
        return parsed as string[];
    };
    const noDuplicates = (k: ConfigKey, values: string[]) => {
        const seen = new Set<string>();
        for (const v of values) {
            if (seen.has(v)) problems.push(`${key(k)}: ${JSON.stringify(v)} is listed twice; list each once`);
            seen.add(v);
        }
    };

    for (const k of Object.keys(raw)) {
        if (raw[k] !== undefined && !(CONFIG_KEYS as readonly string[]).includes(k)) {
            problems.push(`${key(k as ConfigKey)}: unknown key; accepted keys are ${CONFIG_KEYS.join(", ")}`);
        }
    }

    const envRaw = raw.environment ?? "kind";
    const environment = (ENVIRONMENT_NAMES as readonly string[]).includes(envRaw)
        ? (envRaw as EnvironmentName)
        : (fail("environment", envRaw, `one of ${ENVIRONMENT_NAMES.join(", ")}`), "kind" as const);
    const base = ENVIRONMENTS[environment];

    const namespace = str("namespace", "registry", isDnsLabel, "a DNS label (lower case a-z, 0-9 and '-', at most 63)");
    const serviceName = str("serviceName", "registry", isDnsLabel, "a DNS label (lower case a-z, 0-9 and '-', at most 63)");
    const port = int("port", 5000, 1, 65535) as number;
    const nodePortRaw = int("nodePort", 0, 0, 32767, "0 (no NodePort) or a port from 30000 to 32767");
    if (nodePortRaw !== undefined && nodePortRaw !== 0 && nodePortRaw < 30000) {
        fail("nodePort", raw.nodePort, "0 (no NodePort) or a port from 30000 to 32767");
    }
    const clusterDomain = str("clusterDomain", "cluster.local", isDnsName, "a DNS name such as cluster.local");

    const extraNames = list("extraNames", []);
    noDuplicates("extraNames", extraNames);
    const extraIpAddresses = extraNames.filter((n) => net.isIP(n) !== 0);
    const extraDnsNames = extraNames.filter((n) => net.isIP(n) === 0);
    for (const n of extraDnsNames) {
        if (!isDnsName(n)) fail("extraNames", n, "DNS names (RFC 1123, lower case) or IP addresses");
    }

    const userNames = list("users", ["admin"]);
    if (userNames.length === 0) fail("users", raw.users, "at least one user name");
    for (const u of userNames) {
        if (!USER_NAME.test(u)) fail("users", u, "names of 1-64 characters from A-Z a-z 0-9 . _ @ - (no ':')");
    }
    noDuplicates("users", userNames);

    const passwords = new Map<string, string>();
    const given = list("userPasswords", []);
    if (raw.userPasswords !== undefined && !secretKeys.has(key("userPasswords"))) {
        problems.push(`${key("userPasswords")}: is stored in plain text; set it with \`pulumi config set --secret --path 'userPasswords[0]' NAME:PASSWORD\``);
    }
    for (const entry of given) {
        const i = entry.indexOf(":");
        const name = i > 0 ? entry.slice(0, i) : "";
        const password = i > 0 ? entry.slice(i + 1) : "";
        // Never echo the entry: it holds a password.
        if (!name || !userNames.includes(name)) {
            problems.push(
                `${key("userPasswords")}: an entry names user ${JSON.stringify(name)}, which is not in ${key("users")}; entries are NAME:PASSWORD for a listed user`,
            );
        } else if (password.length < 12) {
            problems.push(`${key("userPasswords")}: the password for ${JSON.stringify(name)} has ${password.length} characters; give at least 12`);
        } else if (passwords.has(name)) {
            problems.push(`${key("userPasswords")}: user ${JSON.stringify(name)} has two passwords; give one`);
        } else {
            passwords.set(name, password);
        }
    }

    const bcryptCost = int("bcryptCost", undefined, 4, 14);
    const image = str("image", DEFAULT_REGISTRY_IMAGE, (v) => /^[^\s]+$/.test(v) && v.length > 0, "an image reference such as " + DEFAULT_REGISTRY_IMAGE);
    const storageClass = raw.storageClass === undefined ? base.storageClass : str("storageClass", "", isDnsName, "a StorageClass name");
    const storageSize = str("storageSize", base.storageSize, isStorageQuantity, "a storage quantity such as 10Gi or 500Mi");
    const certsDir = str("certsDir", base.certsDir, isNodePath, "an absolute directory path on the node, such as /etc/containerd/certs.d");
    const pullSecretName = str("pullSecretName", "registry-pull", isDnsName, "a Kubernetes object name (RFC 1123)");
    const pullSecretNamespaces = list("pullSecretNamespaces", []);
    for (const ns of pullSecretNamespaces) if (!isDnsLabel(ns)) fail("pullSecretNamespaces", ns, "namespace names (DNS labels)");
    noDuplicates("pullSecretNamespaces", pullSecretNamespaces);
    if (pullSecretNamespaces.includes(namespace)) {
        problems.push(
            `${key("pullSecretNamespaces")}: ${JSON.stringify(namespace)} is the registry's own namespace, which always gets the pull secret; leave it out`,
        );
    }
    const keyAlgorithm = str("keyAlgorithm", "ECDSA", (v) => v === "ECDSA" || v === "RSA", "ECDSA (P-256) or RSA (2048 bits)") as "ECDSA" | "RSA";
    const caValidityHours = int("caValidityHours", 87600, 24, 876000) as number;
    const certValidityHours = int("certValidityHours", 8760, 24, 876000) as number;
    const certEarlyRenewalHours = int("certEarlyRenewalHours", 720, 0, 876000) as number;
    if (certEarlyRenewalHours >= certValidityHours) {
        fail("certEarlyRenewalHours", raw.certEarlyRenewalHours ?? String(certEarlyRenewalHours), `fewer hours than certValidityHours (${certValidityHours})`);
    }
    if (certValidityHours > caValidityHours) {
        fail("certValidityHours", raw.certValidityHours ?? String(certValidityHours), `at most caValidityHours (${caValidityHours})`);
    }

    const createNamespace = bool("createNamespace", true);

    const caches: CacheSetting[] = [];
    for (const entry of list("caches", [])) {
        const eq = entry.indexOf("=");
        const host = eq < 0 ? entry : entry.slice(0, eq);
        const remoteUrl = eq < 0 ? UPSTREAM_PRESETS[entry] : entry.slice(eq + 1);
        if (eq < 0 && remoteUrl === undefined) {
            fail(
                "caches",
                entry,
                `a preset (${Object.keys(UPSTREAM_PRESETS).join(", ")}) or HOST=URL such as registry.example.com=https://registry.example.com`,
            );
        } else if (!isRegistryHost(host)) {
            fail("caches", entry, "HOST=URL where HOST is a registry host name as in image references, such as docker.io or registry.example.com:5000");
        } else if (!isUpstreamUrl(remoteUrl)) {
            fail("caches", entry, "HOST=URL where URL is an http(s) URL with no path, such as https://registry-1.docker.io");
        } else if (caches.some((c) => c.host === host)) {
            problems.push(`${key("caches")}: ${JSON.stringify(host)} is listed twice; one cache serves one upstream, list each once`);
        } else if (cacheServiceName(host) === serviceName || caches.some((c) => c.serviceName === cacheServiceName(host))) {
            problems.push(
                `${key("caches")}: ${JSON.stringify(host)} would need the Service name ${cacheServiceName(host)}, which is taken; rename ${key("serviceName")}`,
            );
        } else {
            caches.push({ host, remoteUrl, serviceName: cacheServiceName(host) });
        }
    }
    const cacheCredentials = list("cacheCredentials", []);
    if (raw.cacheCredentials !== undefined && !secretKeys.has(key("cacheCredentials"))) {
        problems.push(
            `${key("cacheCredentials")}: is stored in plain text; set it with \`pulumi config set --secret --path 'cacheCredentials[0]' HOST=USER:PASSWORD\``,
        );
    }
    for (const entry of cacheCredentials) {
        // Never echo the entry: it holds a password.
        const eq = entry.indexOf("=");
        const host = eq > 0 ? entry.slice(0, eq) : "";
        const colon = entry.indexOf(":", eq + 1);
        const username = eq > 0 && colon > eq ? entry.slice(eq + 1, colon) : "";
        const password = colon > eq ? entry.slice(colon + 1) : "";
        const cache = caches.find((c) => c.host === host);
        if (!cache) {
            problems.push(
                `${key("cacheCredentials")}: an entry names ${JSON.stringify(host)}, which is not in ${key("caches")}; entries are HOST=USER:PASSWORD for a listed cache`,
            );
        } else if (!username) {
            problems.push(`${key("cacheCredentials")}: the entry for ${JSON.stringify(host)} has no user; entries are HOST=USER:PASSWORD`);
        } else if (!password) {
            problems.push(`${key("cacheCredentials")}: the entry for ${JSON.stringify(host)} has no password; entries are HOST=USER:PASSWORD`);
        } else if (cache.credentials) {
            problems.push(`${key("cacheCredentials")}: ${JSON.stringify(host)} has two entries; give one`);
        } else {
            cache.credentials = { username, password };
        }
    }
    const mirrorFallback = str(
        "mirrorFallback",
        "upstream",
        (v) => v === "upstream" || v === "none",
        "upstream (pull from the upstream when its cache is down) or none (fail the pull: air-gapped clusters)",
    ) as MirrorFallback;
    const cacheTtl = str("cacheTtl", DEFAULT_CACHE_TTL, (v) => DURATION.test(v) && /[1-9]/.test(v), "a duration above zero such as 168h or 72h30m");
    const cacheStorageSize = str("cacheStorageSize", base.cacheStorageSize, isStorageQuantity, "a storage quantity such as 10Gi or 500Mi");
    // "" turns host storage off (volumes instead), also for kind.
    const cacheHostPathRaw = str(
        "cacheHostPath",
        base.cacheHostPath ?? "",
        (v) => v === "" || isNodePath(v),
        'an absolute directory path on the node, or "" for volumes',
    );
    const cacheHostPath = cacheHostPathRaw === "" ? undefined : cacheHostPathRaw;
    const patchDefaultServiceAccounts = bool("patchDefaultServiceAccounts", false);
    if (patchDefaultServiceAccounts && pullSecretNamespaces.length === 0) {
        problems.push(
            `${key("patchDefaultServiceAccounts")}: is true but ${key("pullSecretNamespaces")} is empty; list the namespaces whose default ServiceAccount should get the pull secret`,
        );
    }
    const localRegistryHosting = bool("localRegistryHosting", true);

    if (problems.length > 0) throw new ConfigError(problems);

    return {
        environment,
        profile: { ...base, certsDir, storageClass, storageSize, cacheStorageSize, cacheHostPath },
        namespace,
        createNamespace,
        serviceName,
        port,
        nodePort: nodePortRaw === 0 ? undefined : nodePortRaw,
        clusterDomain,
        extraDnsNames,
        extraIpAddresses,
        users: userNames.map((name) => ({ name, password: passwords.get(name) })),
        bcryptCost,
        image,
        pullSecretName,
        pullSecretNamespaces,
        keyAlgorithm,
        caValidityHours,
        certValidityHours,
        certEarlyRenewalHours,
        caches,
        mirrorFallback,
        cacheTtl,
        patchDefaultServiceAccounts,
        localRegistryHosting,
    };
}

// The SDK exports this at run time but not in its typings; it is how `Config.getSecret` knows.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { isConfigSecret } = require("@pulumi/pulumi/runtime/config") as { isConfigSecret(key: string): boolean };

/** This stack's raw config for the project, and which keys Pulumi holds encrypted. */
export function readRawConfig(): { raw: RawConfig; secretKeys: Set<string> } {
    const raw: RawConfig = {};
    const secretKeys = new Set<string>();
    for (const [fullKey, value] of Object.entries(pulumi.runtime.allConfig())) {
        if (!fullKey.startsWith(`${PROJECT}:`)) continue;
        raw[fullKey.slice(PROJECT.length + 1)] = value;
        if (isConfigSecret(fullKey)) secretKeys.add(fullKey);
    }
    return { raw, secretKeys };
}
