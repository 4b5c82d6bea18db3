/**
 * The stack's `cluster-registry:*` config as `ClusterRegistryArgs`: each raw string read by the
 * type `SETTINGS` declares, the secret lists folded into users and caches, every problem at once.
 */
import * as pulumi from "@pulumi/pulumi";
import { collectSettings, markStackConfig, Problems } from "./resolve-settings";
import {
    CacheArgs,
    ClusterRegistryArgs,
    defaultFor,
    parseCacheEntry,
    PROJECT,
    RegistryUserArgs,
    SETTING_KEYS,
    SettingKey,
    settingOf,
    SETTINGS,
    Settings,
    StackOnlySettings,
} from "./settings";

/** What `pulumi config` holds: every value as the string Pulumi stores (arrays as JSON). */
export type RawConfig = Record<string, string | undefined>;

/** A raw string as the declared type, or `undefined` (and a problem) when it is not one. */
function typed(key: SettingKey, raw: string, problems: Problems): unknown {
    const s = settingOf(key);
    switch (s.type) {
        case "string":
            return raw;
        case "integer":
            if (/^-?[0-9]+$/.test(raw.trim())) return Number(raw);
            problems.invalid(key, raw, "an integer");
            return undefined;
        case "boolean":
            if (raw === "true" || raw === "false") return raw === "true";
            problems.invalid(key, raw, "true or false");
            return undefined;
        case "array":
            return stringList(key, raw, s.secret === true, problems);
    }
}

function stringList(key: SettingKey, raw: string, secret: boolean, problems: Problems): string[] | undefined {
    let parsed: unknown;
    try {
        parsed = JSON.parse(raw);
    } catch {
        parsed = undefined;
    }
    if (Array.isArray(parsed) && parsed.every((e) => typeof e === "string")) return parsed;
    const flag = secret ? "--secret " : "";
    problems.invalid(key, raw, `a list of strings (set it with \`pulumi config set ${flag}--path '${key}[0]' VALUE\`)`);
    return undefined;
}

/** A secret list given in plain text is refused: it would sit unencrypted in the stack file. */
function requireSecret(key: SettingKey, raw: RawConfig, secretKeys: ReadonlySet<string>, problems: Problems, example: string): void {
    if (raw[key] !== undefined && !secretKeys.has(`${PROJECT}:${key}`)) {
        problems.add(key, `is stored in plain text; set it with \`pulumi config set --secret --path '${key}[0]' ${example}\``);
    }
}

/** `NAME:PASSWORD` entries onto their users. Entries are named by position: they hold passwords. */
function foldPasswords(users: RegistryUserArgs[], entries: string[], problems: Problems): void {
    entries.forEach((entry, i) => {
        const colon = entry.indexOf(":");
        const user = users.find((u) => colon > 0 && u.name === entry.slice(0, colon));
        const where = `entry ${i + 1}`;
        if (!user) {
            problems.add(
                "userPasswords",
                `${where} names no user in ${problems.key("users")} (${users.map((u) => u.name).join(", ")}); entries are NAME:PASSWORD`,
            );
        } else if (user.password !== undefined) {
            problems.add("userPasswords", `user ${JSON.stringify(user.name)} has two passwords; give one`);
        } else {
            user.password = entry.slice(colon + 1);
        }
    });
}

/** `HOST=USER:PASSWORD` entries onto their caches; only a listed cache's host is ever shown. */
function foldCredentials(caches: CacheArgs[], entries: string[], problems: Problems): void {
    entries.forEach((entry, i) => {
        const eq = entry.indexOf("=");
        const cache = caches.find((c) => eq > 0 && c.host === entry.slice(0, eq));
        const rest = eq > 0 ? entry.slice(eq + 1) : "";
        const colon = rest.indexOf(":");
        const where = `entry ${i + 1}`;
        if (!cache) {
            problems.add("cacheCredentials", `${where} names no cache in ${problems.key("caches")}; entries are HOST=USER:PASSWORD for a listed cache`);
        } else if (colon === 0) {
            problems.add("cacheCredentials", `the entry for ${JSON.stringify(cache.host)} has no user; entries are HOST=USER:PASSWORD`);
        } else if (colon < 0 || colon === rest.length - 1) {
            // HOST=USER with no ':' is a user whose password was left out, the likelier slip than a lone password.
            problems.add("cacheCredentials", `the entry for ${JSON.stringify(cache.host)} has no password; entries are HOST=USER:PASSWORD`);
        } else if (cache.credentials) {
            problems.add("cacheCredentials", `${JSON.stringify(cache.host)} has two entries; give one`);
        } else {
            cache.credentials = { username: rest.slice(0, colon), password: rest.slice(colon + 1) };
        }
    });
}

/** Edits (insertions, deletions, substitutions) from one key to another; keys are short. */
function editDistance(a: string, b: string): number {
    let row = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
        const next = [i];
        for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
        row = next;
    }
    return row[b.length];
}

/** The problem for an unknown key: the close match that was most likely meant, or (with none) every key. */
function unknownKey(key: string, problems: Problems): string {
    const keys = Object.keys(SETTINGS);
    // Case first (storageclass), then a typo or two; never a guess further than a quarter of the key.
    const distance = (k: string) => (k.toLowerCase() === key.toLowerCase() ? 0 : editDistance(k.toLowerCase(), key.toLowerCase()));
    const [best] = keys.map((k) => ({ k, d: distance(k) })).sort((x, y) => x.d - y.d);
    if (best.d <= Math.max(1, Math.floor(key.length / 4))) return `unknown key; did you mean ${problems.key(best.k)}?`;
    return `unknown key; accepted keys are ${keys.join(", ")} (Pulumi.yaml and the README describe each)`;
}

/**
 * Parses and checks raw config. `secretKeys` names the keys Pulumi holds encrypted. Throws a
 * `ConfigError` listing every problem, before any resource exists.
 */
export function parseConfig(raw: RawConfig, secretKeys: ReadonlySet<string> = new Set()): { args: ClusterRegistryArgs; settings: Settings } {
    const problems = new Problems(`${PROJECT}:`);
    const values: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(raw)) {
        if (value === undefined) continue;
        if (!(key in SETTINGS)) problems.add(key, unknownKey(key, problems));
        else values[key] = typed(key as SettingKey, value, problems);
    }
    requireSecret("userPasswords", raw, secretKeys, problems, "NAME:PASSWORD");
    requireSecret("cacheCredentials", raw, secretKeys, problems, "HOST=USER:PASSWORD");
    if (raw.objectStorageSecretKey !== undefined && !secretKeys.has(`${PROJECT}:objectStorageSecretKey`)) {
        problems.add("objectStorageSecretKey", "is stored in plain text; set it with `pulumi config set --secret objectStorageSecretKey VALUE`");
    }
    requireSecret("cacheProxyCredentials", raw, secretKeys, problems, "USER:PASSWORD");
    // Each value has its declared Pulumi type (typed() saw to it); a choice such as environment is
    // still any string here, and collectSettings checks it as it checks any caller's args.
    const { userPasswords, cacheCredentials, users, caches, ...rest } = values as StackOnlySettings &
        Omit<ClusterRegistryArgs, "users" | "caches"> & {
            users?: string[];
            caches?: string[];
        };
    const userArgs: RegistryUserArgs[] = (users ?? defaultFor("users", "kind") ?? []).map((u) => (typeof u === "string" ? { name: u } : u));
    // As `CacheArgs`, so credentials can be attached; checked later with the rest.
    const cacheArgs = (caches ?? []).map(parseCacheEntry);
    foldPasswords(userArgs, userPasswords ?? [], problems);
    foldCredentials(cacheArgs, cacheCredentials ?? [], problems);
    const args: ClusterRegistryArgs = markStackConfig({ ...rest, users: userArgs, caches: cacheArgs });
    const settings = collectSettings(args, problems);
    problems.throwIfAny();
    return { args, settings };
}

/**
 * The keys Pulumi.yaml declares `secret: true`. The Pulumi CLI refuses to run a stack whose value for
 * such a key is plain text ("must be encrypted as it's secret"), so every one that reaches the program
 * is encrypted: the SDK has no declared way to ask, and needs none.
 */
export const DECLARED_SECRET_KEYS: ReadonlySet<string> = new Set(SETTING_KEYS.filter((k) => settingOf(k).secret).map((k) => `${PROJECT}:${k}`));

/** This stack's raw config for the project. */
export function readRawConfig(): RawConfig {
    const raw: RawConfig = {};
    for (const [fullKey, value] of Object.entries(pulumi.runtime.allConfig())) {
        if (fullKey.startsWith(`${PROJECT}:`)) raw[fullKey.slice(PROJECT.length + 1)] = value;
    }
    return raw;
}
