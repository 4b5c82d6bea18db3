/**
 * How `npm run bench` measures: cold CRI pulls, each checked cold and counted in a registry's access
 * log, and manifest HEADs, one at a time (latency) and from concurrent clients (requests/s).
 */
import * as fs from "node:fs";
import * as https from "node:https";
import * as path from "node:path";
import { criImageStatus, criPull, criRemove, type CriAuth } from "../test/integration/harness/cri";
import { waitFor } from "../test/integration/harness/procs";

/** How many of each measurement, and how long. */
export const MEASURE = {
    /** Cold pulls per scenario (the median is reported), after PULL_WARMUP cold pulls that are not counted. */
    PULL_WARMUP: 1,
    COLD_PULLS: 7,
    /** Sequential manifest HEADs per kind (authenticated, anonymous), after a warm-up. */
    HEAD_WARMUP: 20,
    HEAD_SAMPLES: 200,
    /** Concurrent clients and duration of the throughput run. */
    CLIENTS: 8,
    THROUGHPUT_MS: 5_000,
    /** Slices the throughput of targets compared with each other is measured in, taken in turn. */
    THROUGHPUT_SLICES: 5,
    REQUEST_TIMEOUT_MS: 10_000,
    /** How long containerd may take to garbage-collect a removed image's content. */
    GC_WAIT_MS: 15_000,
} as const;

const MANIFEST_ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

export interface Stats {
    median: number;
    min: number;
    max: number;
    p90: number;
}

function stats(xs: number[]): Stats {
    const s = [...xs].sort((a, b) => a - b);
    const median = s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    return { median, min: s[0], max: s[s.length - 1], p90: s[Math.min(s.length - 1, Math.floor(0.9 * s.length))] };
}

export const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`;

/** What the cold pulls of one scenario did. */
export interface ColdPulls {
    seconds: number[];
    /** The first pulls of a fresh containerd are slower; they are made cold too but not counted. */
    warmupSeconds: number[];
    stats: Stats;
    /** Per pull, from the registry's log. */
    requests: number[];
    authenticated: number[];
    challenges: number[];
    blobGets: number[];
    /** Bytes in containerd's content store and snapshots before the first pull, after each pull and after each removal. */
    storeBytesBefore: number;
    storeBytesAfterPull: number[];
    storeBytesAfterRemove: number[];
    /** Every pull fetched every blob (config and layers) and every removal gave back all it took. */
    allCold: boolean;
}

export interface ColdPullsInput {
    socket: string;
    /** containerd's root: the content store and snapshots are measured there. */
    containerdRoot: string;
    ref: string;
    /** The pull secret's credentials; none for a public image through a cache. */
    auth?: CriAuth;
    /** Run before every pull (e.g. empty the cache). */
    beforeEach?: () => Promise<unknown>;
    /** Blob GETs every pull must cause in `registryLog`; unchecked when absent. */
    expectBlobGets?: number;
    /** Every blob of the image: none may be in the content store before a pull. */
    digests: string[];
    /** The access log of the registry whose requests are counted. */
    registryLog: string;
    log(msg: string): void;
}

type OnePull = { seconds: number; storeBytesAfterPull: number; storeBytesAfterRemove: number } & LoggedRequests;

/**
 * PULL_WARMUP + COLD_PULLS cold pulls. Before each, none of the image's blobs may be in containerd's
 * content store; after each, the image is removed over CRI and containerd's garbage collection awaited.
 */
export async function coldPulls(o: ColdPullsInput): Promise<ColdPulls> {
    // The blobs and the unpacked layers; not the metadata databases beside them, which never shrink.
    const contentDir = path.join(o.containerdRoot, "io.containerd.content.v1.content", "blobs");
    const storeBytes = () => dirBytes(contentDir) + dirBytes(path.join(o.containerdRoot, "io.containerd.snapshotter.v1.overlayfs", "snapshots"));
    const held = () => o.digests.filter((d) => fs.existsSync(path.join(contentDir, ...d.split(":")))).length;
    const before = storeBytes();
    const onePull = async (): Promise<OnePull> => {
        if (held() > 0) throw new Error(`the pull would not be cold: containerd still holds ${held()} of the image's blobs`);
        await o.beforeEach?.();
        const logFrom = fs.statSync(o.registryLog).size;
        const t0 = performance.now();
        await criPull(o.socket, o.ref, o.auth);
        const seconds = (performance.now() - t0) / 1000;
        const storeBytesAfterPull = storeBytes();
        await criRemove(o.socket, o.ref);
        if ((await criImageStatus(o.socket, o.ref)) !== null) throw new Error("CRI RemoveImage left the image in place");
        await waitFor(() => held() === 0, MEASURE.GC_WAIT_MS, "containerd to delete the removed image's content");
        // Read after the removal, so the registry has long written the pull's last lines.
        return { seconds, ...requestsSince(o.registryLog, logFrom), storeBytesAfterPull, storeBytesAfterRemove: storeBytes() };
    };
    const summary = (p: OnePull) =>
        `${p.seconds.toFixed(2)} s, ${p.requests} requests (${p.authenticated} authenticated, ${p.challenges} 401), ${p.blobGets} blob GETs; ` +
        `content + snapshots ${mb(p.storeBytesAfterPull)} -> ${mb(p.storeBytesAfterRemove)}`;

    const warmupSeconds: number[] = [];
    for (let i = 0; i < MEASURE.PULL_WARMUP; i++) {
        const p = await onePull();
        warmupSeconds.push(p.seconds);
        o.log(`warm-up pull (not counted): ${summary(p)}`);
    }
    const pulls: OnePull[] = [];
    for (let i = 0; i < MEASURE.COLD_PULLS; i++) {
        pulls.push(await onePull());
        o.log(`pull ${i + 1}/${MEASURE.COLD_PULLS} (containerd cold): ${summary(pulls[i])}`);
    }
    const each = <K extends keyof OnePull>(k: K) => pulls.map((p) => p[k]);
    return {
        seconds: each("seconds"),
        warmupSeconds,
        stats: stats(each("seconds")),
        requests: each("requests"),
        authenticated: each("authenticated"),
        challenges: each("challenges"),
        blobGets: each("blobGets"),
        storeBytesBefore: before,
        storeBytesAfterPull: each("storeBytesAfterPull"),
        storeBytesAfterRemove: each("storeBytesAfterRemove"),
        allCold: pulls.every((p) => (o.expectBlobGets === undefined || p.blobGets === o.expectBlobGets) && p.storeBytesAfterRemove <= before),
    };
}

interface LoggedRequests {
    requests: number;
    /** Requests whose credentials passed the bcrypt check. */
    authenticated: number;
    challenges: number;
    blobGets: number;
}

/** Requests the registry logged from byte `from` of its log on. */
function requestsSince(logFile: string, from: number): LoggedRequests {
    const text = fs.readFileSync(logFile).subarray(from).toString("utf8");
    // The access log (combined format) has one line per request, whatever its status.
    const access = [...text.matchAll(/"(GET|HEAD|POST|PUT|PATCH|DELETE) (\S+) HTTP\/[\d.]+" (\d{3}) /g)].map((m) => ({
        method: m[1],
        uri: m[2],
        status: Number(m[3]),
    }));
    return {
        requests: access.length,
        // Logged once per request whose credentials passed the bcrypt check.
        authenticated: (text.match(/msg="authorized request"/g) ?? []).length,
        challenges: access.filter((a) => a.status === 401).length,
        blobGets: access.filter((a) => a.method === "GET" && /^\/v2\/.+\/blobs\//.test(a.uri) && a.status < 400).length,
    };
}

/** Total size of the files under dir (0 if it does not exist). */
function dirBytes(dir: string): number {
    if (!fs.existsSync(dir)) return 0;
    let total = 0;
    for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) total += fs.statSync(path.join(e.parentPath, e.name)).size;
    return total;
}

/** One manifest HEAD; resolves with its status and duration. */
function head(url: string, agent: https.Agent, authorization?: string): Promise<{ status: number; ms: number }> {
    return new Promise((resolve, reject) => {
        const headers: Record<string, string> = { Accept: MANIFEST_ACCEPT };
        if (authorization !== undefined) headers.Authorization = authorization;
        const t0 = performance.now();
        const req = https.request(url, { method: "HEAD", agent, headers, timeout: MEASURE.REQUEST_TIMEOUT_MS }, (res) => {
            res.resume();
            res.on("end", () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - t0 }));
            res.on("error", reject);
        });
        req.on("timeout", () => req.destroy(new Error(`timeout after ${MEASURE.REQUEST_TIMEOUT_MS} ms: HEAD ${url}`)));
        req.on("error", reject);
        req.end();
    });
}

export interface HeadLatency {
    samples: number;
    authMs: Stats;
    anonMs: Stats;
    /** Median authenticated minus median anonymous. */
    addedMs: number;
}

/** Sequential HEADs over keep-alive connections, authenticated and anonymous interleaved so drift hits both alike. */
export async function headLatency(url: string, ca: string, authorization: string): Promise<HeadLatency> {
    const [auth, anon] = await headLatencies(
        [
            { url, authorization, want: 200 },
            { url, want: 401 },
        ],
        ca,
    );
    return { samples: MEASURE.HEAD_SAMPLES, authMs: auth, anonMs: anon, addedMs: auth.median - anon.median };
}

/** One kind of HEAD: where, with which credentials (none: anonymous), and the status it must get. */
export interface HeadTarget {
    url: string;
    authorization?: string;
    want: number;
}

/**
 * Sequential HEADs, one to each target in turn (so drift hits all alike), each target over its own
 * keep-alive connection; HEAD_WARMUP rounds, then HEAD_SAMPLES counted. Stats per target, in order.
 */
export async function headLatencies(targets: HeadTarget[], ca: string): Promise<Stats[]> {
    const agents = targets.map(() => new https.Agent({ keepAlive: true, maxSockets: 1, ca }));
    try {
        const ms: number[][] = targets.map(() => []);
        for (let i = 0; i < MEASURE.HEAD_WARMUP + MEASURE.HEAD_SAMPLES; i++) {
            for (const [t, target] of targets.entries()) {
                const r = await head(target.url, agents[t], target.authorization);
                if (r.status !== target.want) {
                    const who = target.authorization === undefined ? "anonymous" : "authenticated";
                    throw new Error(`HEAD ${target.url} (${who}): ${r.status}, want ${target.want}`);
                }
                if (i >= MEASURE.HEAD_WARMUP) ms[t].push(r.ms);
            }
        }
        return ms.map(stats);
    } finally {
        for (const a of agents) a.destroy();
    }
}

/** CLIENTS concurrent loops of HEADs for `ms` (default THROUGHPUT_MS); requests answered with `want` per second. */
export async function headThroughput(url: string, ca: string, authorization: string | undefined, want: number, ms: number = MEASURE.THROUGHPUT_MS) {
    const agent = new https.Agent({ keepAlive: true, maxSockets: MEASURE.CLIENTS, ca });
    try {
        let requests = 0;
        let errors = 0;
        const t0 = performance.now();
        const client = async () => {
            while (performance.now() < t0 + ms) {
                const status = await head(url, agent, authorization).then(
                    (r) => r.status,
                    () => 0,
                );
                if (status === want) requests++;
                else errors++;
            }
        };
        await Promise.all(Array.from({ length: MEASURE.CLIENTS }, client));
        // Requests in flight at the deadline still count, so the time runs until the last one ended.
        const seconds = (performance.now() - t0) / 1000;
        return { requests, errors, seconds, reqPerSec: requests / seconds };
    } finally {
        agent.destroy();
    }
}

/**
 * headThroughput for several targets, THROUGHPUT_MS each, in THROUGHPUT_SLICES slices taken in turn
 * (so other work on the machine hits all alike); per target, in order.
 */
export async function headThroughputs(targets: HeadTarget[], ca: string) {
    const sum = targets.map(() => ({ requests: 0, errors: 0, seconds: 0 }));
    for (let slice = 0; slice < MEASURE.THROUGHPUT_SLICES; slice++) {
        for (const [i, t] of targets.entries()) {
            const r = await headThroughput(t.url, ca, t.authorization, t.want, MEASURE.THROUGHPUT_MS / MEASURE.THROUGHPUT_SLICES);
            sum[i].requests += r.requests;
            sum[i].errors += r.errors;
            sum[i].seconds += r.seconds;
        }
    }
    return sum.map((s) => ({ ...s, reqPerSec: s.requests / s.seconds }));
}
