/**
 * What a node identity costs the registries (issue 11): nodes pull with an htpasswd user of bcrypt
 * cost 4, sent by containerd as a static Authorization header, and caches require it, so every request
 * a node makes to the hosted registry or to a cache pays one bcrypt check.
 *
 * Measured independently of the program's own node-identity code: the htpasswd files are made here
 * with bcryptjs (IDENTITY_COSTS: 4, and 5 for comparison), and the real registry (the distribution release the default image ships)
 * runs from the generated hosted and cache configs with only `auth` replaced (removed for the
 * anonymous baseline) and the debug listener dropped. For each target, three registries run side by
 * side on the same config and content: anonymous (no auth, today's cache), cost 4 and cost 5, and one
 * request, a manifest HEAD by digest (answered from local storage, also by a cache), is measured
 * one at a time (latency, the three interleaved) and from 8 concurrent clients (requests/s, the three
 * in turn in 1-second slices).
 */
import * as bcrypt from "bcryptjs";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import YAML from "yaml";
import { freePort } from "../test/integration/harness/procs";
import { basicAuth, startRegistry, type RegistryHandle } from "../test/integration/harness/registry";
import { CACHE_IP, HOSTED_IP, type LoopbackCluster } from "../test/integration/support";
import { headLatencies, headThroughputs, MEASURE, type Stats } from "./measure";

/** The node identity's bcrypt cost, and one more for comparison. */
export const IDENTITY_COSTS = [4, 5] as const;
const NODE_USER = "bench-node";

/** One registry variant: anonymous (no auth) or an htpasswd at a bcrypt cost. */
export interface IdentityVariant {
    /** null: anonymous, no auth configured. */
    cost: number | null;
    ms: Stats;
    /** Median minus the anonymous variant's median (0 for the anonymous one). */
    addedMs: number;
    reqPerSec: number;
    /** This variant's 8-client requests/s over the anonymous variant's. */
    reqPerSecOverAnonymous: number;
    errors: number;
}

export interface IdentityTarget {
    target: "hosted registry" | "docker.io cache";
    /** What was requested (a manifest HEAD by digest), relative to the registry. */
    request: string;
    variants: IdentityVariant[];
    /** Requests the stand-in docker.io saw while this target was measured (a cache: its fills only, one or two per variant). */
    upstreamRequests: number;
}

export interface IdentityRow {
    kind: "identity";
    label: string;
    loadAverageAtStart: number;
    costs: readonly number[];
    targets: IdentityTarget[];
}

/**
 * `cluster` runs with a docker.io cache, the hosted registry holds `hostedRepo` and the stand-in
 * docker.io `publicRepo` (both without tag), both the image with manifest `manifestDigest`.
 */
export async function nodeIdentityTargets(
    cluster: LoopbackCluster,
    o: { hostedRepo: string; publicRepo: string; manifestDigest: string; log(msg: string): void },
): Promise<IdentityTarget[]> {
    const dir = path.join(cluster.work, "node-identity");
    fs.mkdirSync(dir, { recursive: true });
    const password = randomBytes(24).toString("base64url");
    const authorization = basicAuth(NODE_USER, password);
    const htpasswd = new Map<number, string>();
    for (const cost of IDENTITY_COSTS) {
        const file = path.join(dir, `htpasswd-${cost}`);
        fs.writeFileSync(file, `${NODE_USER}:${bcrypt.hashSync(password, cost)}\n`, { mode: 0o600 });
        htpasswd.set(cost, file);
    }
    const ca = cluster.dep.outputs.caCertPem as string;
    const cache = cluster.cache ?? fail("nodeIdentityTargets needs a cluster started with dockerIoCache");
    // The registry image trusts docker.io's public CA; here the stand-in's.
    const cacheEnv: Record<string, string> = cluster.upstream ? { SSL_CERT_FILE: cluster.upstream.trustBundle } : {};
    const specs = [
        { target: "hosted registry", base: cluster.hosted, ip: HOSTED_IP, repo: o.hostedRepo, env: {}, ownStorage: false },
        // A cache writes what it fetches (and its expiry schedule): each variant gets storage of its own.
        { target: "docker.io cache", base: cache, ip: CACHE_IP, repo: o.publicRepo, env: cacheEnv, ownStorage: true },
    ] as const;

    const targets: IdentityTarget[] = [];
    for (const spec of specs) {
        const request = `/v2/${spec.repo}/manifests/${o.manifestDigest}`;
        const costs = [null, ...IDENTITY_COSTS];
        const started: RegistryHandle[] = [];
        const upstreamLog = cluster.upstream?.registry.proc.logFile;
        const upstreamFrom = upstreamLog ? fs.statSync(upstreamLog).size : 0;
        try {
            for (const cost of costs) {
                const name = `${spec.target.split(" ")[1]}-${cost ?? "anon"}`;
                const configYaml = variantConfig(spec.base.configFile, {
                    htpasswd: cost === null ? null : htpasswd.get(cost)!,
                    storage: spec.ownStorage ? path.join(dir, name, "data") : null,
                });
                const addr = `${spec.ip}:${await freePort()}`;
                started.push(await startRegistry({ configYaml, env: spec.env, workDir: path.join(dir, name), addr, caFile: cluster.client.caFile }));
            }
            const heads = started.map((r, i) => ({ url: r.url + request, authorization: costs[i] === null ? undefined : authorization, want: 200 }));
            // HEAD_WARMUP rounds first, so each cache has fetched the manifest before the samples.
            const ms = await headLatencies(heads, ca);
            const throughput = await headThroughputs(heads, ca);
            const variants: IdentityVariant[] = heads.map((_, i) => ({
                cost: costs[i],
                ms: ms[i],
                addedMs: ms[i].median - ms[0].median,
                reqPerSec: throughput[i].reqPerSec,
                reqPerSecOverAnonymous: throughput[i].reqPerSec / throughput[0].reqPerSec,
                errors: throughput[i].errors,
            }));
            const said = variants.map(
                (v) => `${v.cost === null ? "anonymous" : `cost ${v.cost}`} ${v.ms.median.toFixed(1)} ms, ${v.reqPerSec.toFixed(0)} req/s`,
            );
            const upstreamRequests = upstreamLog ? accessLines(upstreamLog, upstreamFrom) : 0;
            o.log(`${spec.target}, manifest HEAD by digest: ${said.join("; ")} (${MEASURE.CLIENTS} clients); ${upstreamRequests} requests upstream`);
            targets.push({ target: spec.target, request, variants, upstreamRequests });
        } finally {
            for (const r of started) await r.stop();
        }
    }
    return targets;
}

/** A running registry's config with `auth` replaced (null: removed), no debug listener, and optionally storage elsewhere. */
function variantConfig(configFile: string, o: { htpasswd: string | null; storage: string | null }): string {
    const config = YAML.parse(fs.readFileSync(configFile, "utf8")) as {
        auth?: unknown;
        http?: { debug?: unknown };
        storage?: { filesystem?: { rootdirectory?: string } };
    };
    if (o.htpasswd === null) delete config.auth;
    else config.auth = { htpasswd: { realm: "bench-node-identity", path: o.htpasswd } };
    delete config.http?.debug;
    if (o.storage !== null) {
        if (!config.storage?.filesystem) throw new Error(`no storage.filesystem in ${configFile}`);
        config.storage.filesystem.rootdirectory = o.storage;
    }
    return YAML.stringify(config);
}

/** Access-log lines (one per request) a registry wrote from byte `from` of its log on. */
function accessLines(logFile: string, from: number): number {
    const text = fs.readFileSync(logFile).subarray(from).toString("utf8");
    return (text.match(/"(GET|HEAD) \S+ HTTP\/[\d.]+" \d{3} /g) ?? []).length;
}

function fail(message: string): never {
    throw new Error(message);
}
