/**
 * `npm run bench`: what the bcrypt cost of the registry's htpasswd costs the nodes that pull from it.
 *
 * For the program's default cost for generated passwords and for cost 10, the program is deployed
 * under the faithful fakes, the real registry runs from the generated Deployment, the image is pushed
 * with skopeo through the port-forward, the DaemonSet's own script configures a private containerd,
 * and then:
 *  - cold CRI pulls of a ~60 MB, 4-layer image, as kubelet makes them (pull secret's credentials);
 *  - latency of an authenticated manifest HEAD versus the same request anonymous (401, no bcrypt);
 *  - requests/s of 8 concurrent clients making authenticated manifest HEADs.
 * Then, through a generated pull-through cache in front of a stand-in docker.io on 127.0.0.1, pulls of
 * the same image as `docker.io/library/...` (containerd follows the mirror hosts.toml): cold (the cache
 * empty) and warm (the cache filled), against the direct authenticated pull from the private registry.
 * The aim: a warm pull through a cache costs no more than a direct pull.
 *
 * RATIOS MATTER, ABSOLUTE TIMES DO NOT. The machine has 2 cores, shared by the registry, containerd
 * and the load generator, over loopback; absolute figures move from run to run. Compare runs by the
 * ratios, and by the machine info written with every result.
 *
 * Each scenario runs in a process of its own, so one scenario's daemons and caches cannot skew the
 * next, and hands back a row; the parent prints a table over the rows and writes bench/results/. To add a
 * section (e.g. caches): write a scenario function returning a row, register it in RUNNERS, add its
 * specs to SCENARIOS and print its rows with their own columns.
 */
import "reflect-metadata"; // the fake tls provider's @peculiar/x509 needs it loaded first

import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as https from "node:https";
import * as os from "node:os";
import * as path from "node:path";
import YAML from "yaml";
import { GENERATED_PASSWORD_BCRYPT_COST } from "../components/credentials";
import { startContainerd } from "../test/integration/harness/containerd";
import { criImageStatus, criPull, criRemove } from "../test/integration/harness/cri";
import { nodeScript, waitApplied } from "../test/integration/harness/node";
import { buildOciImage, type BuiltOciImage } from "../test/integration/harness/oci";
import { freePort, runCommand, stopAll, waitFor } from "../test/integration/harness/procs";
import { basicAuth } from "../test/integration/harness/registry";
import { skopeoCopy } from "../test/integration/harness/skopeo";
import { missingForIntegration } from "../test/integration/harness/tools";
import { FakeCloud, setProgramLoader, type RecordedResource } from "../test/support/fake-cloud";
import { deploy, portForward, startRegistryFromDeployment, startStandInUpstream, tempDir, writeClientFiles, type Deployed } from "../test/integration/support";

// Outside vitest, tsx loads the project as CommonJS: forget the program's own modules and require it
// afresh, so each deploy runs the program again (as vitest's resetModules does for the tests).
setProgramLoader(async (entry) => {
    const components = path.join(path.dirname(entry), "components") + path.sep;
    for (const id of Object.keys(require.cache)) if (id === entry || id.startsWith(components)) delete require.cache[id];
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(entry) as Record<string, unknown>;
});

// ---------------------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------------------

/** A loopback address stands for the Service's ClusterIP. */
const CLUSTER_IP = "127.0.0.2";
/** The cost compared with the program's default (bcrypt's usual default, and ours for given passwords). */
const COMPARED_COST = 10;
/** ~60 MB: 4 layers of 15 MiB of incompressible bytes. */
const IMAGE = { repo: "bench/app", tag: "v1", layers: 4, layerBytes: 15 << 20 } as const;
/** Cold pulls per cost (the median is reported), after PULL_WARMUP cold pulls that are not counted. */
const PULL_WARMUP = 1;
const COLD_PULLS = 7;
/** Sequential manifest HEADs per kind (authenticated, anonymous), after a warm-up. */
const HEAD_WARMUP = 20;
const HEAD_SAMPLES = 200;
/** Concurrent clients and duration of the throughput run. */
const CLIENTS = 8;
const THROUGHPUT_MS = 5_000;
const REQUEST_TIMEOUT_MS = 10_000;
/** How long containerd may take to garbage-collect a removed image's content. */
const GC_WAIT_MS = 15_000;
/** A scenario process that takes longer is killed. */
const SCENARIO_TIMEOUT_MS = 240_000;
/** A 1-minute load average above this before the start means other work may share the cores: warn. */
const BUSY_LOAD_AVERAGE = 1.0;
const RESULTS_DIR = path.join(__dirname, "results");
const MANIFEST_ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";
/** argv[2] of a scenario's own process. */
const CHILD_FLAG = "--run-scenario";

// ---------------------------------------------------------------------------------------------------
// Scenarios and rows
// ---------------------------------------------------------------------------------------------------

interface PullsSpec {
    kind: "pulls";
    label: string;
    /** Passed as `cluster-registry:bcryptCost`; absent: the program's own default is measured. */
    bcryptCost?: number;
}
interface CacheSpec {
    kind: "cache";
    label: string;
}
type ScenarioSpec = PullsSpec | CacheSpec;

const SCENARIOS: ScenarioSpec[] = [
    { kind: "pulls", label: "program default" },
    { kind: "pulls", label: `cost ${COMPARED_COST}`, bcryptCost: COMPARED_COST },
    { kind: "cache", label: "docker.io cache" },
];

interface Stats {
    median: number;
    min: number;
    max: number;
    p90: number;
}

interface PullsRow {
    kind: "pulls";
    label: string;
    /** The cost asked for (null: none, the program's default). */
    requestedCost: number | null;
    /** The cost actually in the generated htpasswd (its hash's rounds). */
    cost: number;
    /** 1-minute load average when the scenario started (well above 0, something else was busy). */
    loadAverageAtStart: number;
    coldPull: {
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
    };
    head: {
        samples: number;
        authMs: Stats;
        anonMs: Stats;
        /** Median authenticated minus median anonymous. */
        addedMs: number;
    };
    throughput: {
        clients: number;
        seconds: number;
        authRequests: number;
        authReqPerSec: number;
        /** The same load anonymous (401s): the ceiling without bcrypt. */
        anonReqPerSec: number;
        errors: number;
    };
}
interface CacheRow {
    kind: "cache";
    label: string;
    loadAverageAtStart: number;
    /** Direct from the private registry, authenticated, at the program's default cost. */
    direct: PullsRow["coldPull"];
    /** Through the cache, emptied before every pull; blob GETs are the upstream's. */
    cacheCold: PullsRow["coldPull"];
    /** Through the cache, filled; blob GETs are the upstream's (0 when it is truly warm). */
    cacheWarm: PullsRow["coldPull"];
}
type Row = PullsRow | CacheRow;

/** Things to undo when a scenario ends, also on failure or a signal. */
type Cleanup = Array<() => Promise<void> | void>;

const RUNNERS: { [K in ScenarioSpec["kind"]]: (spec: Extract<ScenarioSpec, { kind: K }>, image: BuiltOciImage, cleanup: Cleanup) => Promise<Row> } = {
    pulls: pullsScenario,
    cache: cacheScenario,
};

// ---------------------------------------------------------------------------------------------------
// The pulls scenario
// ---------------------------------------------------------------------------------------------------

async function pullsScenario(spec: PullsSpec, image: BuiltOciImage, cleanup: Cleanup): Promise<PullsRow> {
    const log = (msg: string) => console.log(`[${spec.label}] ${msg}`);
    const loadAverageAtStart = os.loadavg()[0];
    const work = tempDir("bench-");
    cleanup.push(() => fs.rmSync(work, { recursive: true, force: true }));

    const port = await freePort();
    const config: Record<string, string> = { "cluster-registry:port": String(port) };
    if (spec.bcryptCost !== undefined) config["cluster-registry:bcryptCost"] = String(spec.bcryptCost);
    const dep = await deploy(CLUSTER_IP, config);

    const ca = dep.outputs.caCertPem as string;
    const { caFile, certDir, authfile } = writeClientFiles(dep.outputs, work);

    cleanup.push(() => stopAll());
    const registry = await startRegistryFromDeployment(dep.cloud, hostedDeployment(dep), path.join(work, "pod"), `${CLUSTER_IP}:${port}`, caFile);
    const cost = servedBcryptCost(registry.configFile);
    if (spec.bcryptCost !== undefined && cost !== spec.bcryptCost) throw new Error(`asked for bcrypt cost ${spec.bcryptCost}, the htpasswd has ${cost}`);
    log(`registry started from the generated Deployment; its htpasswd has bcrypt cost ${cost}`);
    const forward = await portForward({ host: "127.0.0.1", port }, { host: CLUSTER_IP, port });
    cleanup.push(() => forward.close());

    const push = await skopeoCopy({ src: image.ref, dest: `docker://localhost:${port}/${IMAGE.repo}:${IMAGE.tag}`, authfile, certDir });
    if (push.code !== 0) throw new Error(`skopeo push failed (${String(push.code)}): ${push.stderr}`);
    log("pushed with skopeo through the port-forward");

    const nodeCerts = path.join(work, "node", "certs.d");
    fs.mkdirSync(nodeCerts, { recursive: true });
    const nodeProc = nodeScript(dep.cloud, work, nodeCerts).start(path.join(work, "node-config.log"));
    await waitApplied(nodeProc);
    const containerd = await startContainerd({ workDir: path.join(work, "ctd"), certsDir: nodeCerts });

    const ref = `${dep.outputs.host as string}/${IMAGE.repo}:${IMAGE.tag}`;
    const coldPull = await coldPulls({
        socket: containerd.socket,
        ref,
        auth: dep.pullAuth,
        // The blobs and the unpacked layers; not the metadata databases beside them, which never shrink.
        contentDir: path.join(containerd.root, "io.containerd.content.v1.content", "blobs"),
        snapshotDir: path.join(containerd.root, "io.containerd.snapshotter.v1.overlayfs", "snapshots"),
        digests: [image.manifestDigest, image.configDigest, ...image.layers.map((l) => l.digest)],
        // The config and every layer; the manifest is not a blob.
        expectBlobGets: image.layers.length + 1,
        registryLog: registry.proc.logFile,
        log,
    });

    const manifestUrl = `https://${CLUSTER_IP}:${port}/v2/${IMAGE.repo}/manifests/${IMAGE.tag}`;
    const authorization = basicAuth(dep.pullAuth.username, dep.pullAuth.password);
    const head = await headLatency(manifestUrl, ca, authorization);
    log(`manifest HEAD median: authenticated ${head.authMs.median.toFixed(1)} ms, anonymous ${head.anonMs.median.toFixed(1)} ms`);

    const auth = await headThroughput(manifestUrl, ca, authorization, 200);
    const anon = await headThroughput(manifestUrl, ca, undefined, 401);
    log(`${CLIENTS} clients: ${auth.reqPerSec.toFixed(0)} authenticated req/s, ${anon.reqPerSec.toFixed(0)} anonymous req/s`);

    return {
        kind: "pulls",
        label: spec.label,
        requestedCost: spec.bcryptCost ?? null,
        cost,
        loadAverageAtStart,
        coldPull,
        head,
        throughput: {
            clients: CLIENTS,
            seconds: auth.seconds,
            authRequests: auth.requests,
            authReqPerSec: auth.reqPerSec,
            anonReqPerSec: anon.reqPerSec,
            errors: auth.errors + anon.errors,
        },
    };
}

// ---------------------------------------------------------------------------------------------------
// The cache scenario
// ---------------------------------------------------------------------------------------------------

/** A loopback address stands for the docker.io cache Service's ClusterIP. */
const CACHE_IP = "127.0.0.4";

async function cacheScenario(spec: CacheSpec, image: BuiltOciImage, cleanup: Cleanup): Promise<CacheRow> {
    const log = (msg: string) => console.log(`[${spec.label}] ${msg}`);
    const loadAverageAtStart = os.loadavg()[0];
    const work = tempDir("bench-");
    cleanup.push(() => fs.rmSync(work, { recursive: true, force: true }));
    cleanup.push(() => stopAll());

    const upstream = await startStandInUpstream(path.join(work, "upstream"));
    const upstreamUrl = new URL(upstream.registry.url).origin;
    const publicRepo = `library/${IMAGE.repo.split("/").pop() as string}`;
    const toUpstream = await skopeoCopy({
        src: image.ref,
        dest: `docker://${new URL(upstreamUrl).host}/${publicRepo}:${IMAGE.tag}`,
        certDir: upstream.certDir,
    });
    if (toUpstream.code !== 0) throw new Error(`skopeo push to the stand-in upstream failed: ${toUpstream.stderr}`);
    log(`stand-in docker.io at ${upstreamUrl} holds ${publicRepo}:${IMAGE.tag}`);

    const port = await freePort();
    const cloud = new FakeCloud({ clusterIP: (name) => (name.includes("cache-docker-io") ? CACHE_IP : CLUSTER_IP) });
    const dep = await deploy(
        CLUSTER_IP,
        { "cluster-registry:port": String(port), "cluster-registry:caches": JSON.stringify([`docker.io=${upstreamUrl}`]) },
        cloud,
    );
    const { caFile, certDir, authfile } = writeClientFiles(dep.outputs, work);

    const hosted = await startRegistryFromDeployment(cloud, hostedDeployment(dep), path.join(work, "pod"), `${CLUSTER_IP}:${port}`, caFile);
    const forward = await portForward({ host: "127.0.0.1", port }, { host: CLUSTER_IP, port });
    cleanup.push(() => forward.close());
    const push = await skopeoCopy({ src: image.ref, dest: `docker://localhost:${port}/${IMAGE.repo}:${IMAGE.tag}`, authfile, certDir });
    if (push.code !== 0) throw new Error(`skopeo push failed (${String(push.code)}): ${push.stderr}`);

    // The registry image trusts docker.io's public CA; here the stand-in's, through SSL_CERT_FILE.
    const startCache = () =>
        startRegistryFromDeployment(
            cloud,
            cloud.one("kubernetes:apps/v1:Deployment", "cache-docker-io"),
            path.join(work, "cache-pod"),
            `${CACHE_IP}:${port}`,
            caFile,
            {
                SSL_CERT_FILE: upstream.trustBundle,
            },
        );
    let cache = await startCache();
    const cacheStorage = (YAML.parse(fs.readFileSync(cache.configFile, "utf8")) as { storage: { filesystem: { rootdirectory: string } } }).storage.filesystem
        .rootdirectory;
    log(`cache started from the generated Deployment, storage in ${cacheStorage}`);

    const nodeCerts = path.join(work, "node", "certs.d");
    fs.mkdirSync(nodeCerts, { recursive: true });
    const applied = await nodeScript(cloud, work, nodeCerts).exec("apply");
    if (applied.code !== 0) throw new Error(`node script failed: ${applied.stderr}`);
    const containerd = await startContainerd({ workDir: path.join(work, "ctd"), certsDir: nodeCerts });

    const common = {
        socket: containerd.socket,
        contentDir: path.join(containerd.root, "io.containerd.content.v1.content", "blobs"),
        snapshotDir: path.join(containerd.root, "io.containerd.snapshotter.v1.overlayfs", "snapshots"),
        digests: [image.manifestDigest, image.configDigest, ...image.layers.map((l) => l.digest)],
    };
    const direct = await coldPulls({
        ...common,
        ref: `${dep.outputs.host as string}/${IMAGE.repo}:${IMAGE.tag}`,
        auth: dep.pullAuth,
        expectBlobGets: image.layers.length + 1,
        registryLog: hosted.proc.logFile,
        log: (m) => log(`direct: ${m}`),
    });
    const publicRef = `docker.io/${publicRepo}:${IMAGE.tag}`;
    const cacheCold = await coldPulls({
        ...common,
        ref: publicRef,
        beforeEach: async () => {
            await cache.stop();
            fs.rmSync(cacheStorage, { recursive: true, force: true });
            cache = await startCache();
        },
        registryLog: upstream.registry.proc.logFile,
        log: (m) => log(`through the cache, cold: ${m}`),
    });
    const cacheWarm = await coldPulls({
        ...common,
        ref: publicRef,
        expectBlobGets: 0,
        registryLog: upstream.registry.proc.logFile,
        log: (m) => log(`through the cache, warm: ${m}`),
    });
    return { kind: "cache", label: spec.label, loadAverageAtStart, direct, cacheCold, cacheWarm };
}

/** The hosted registry's Deployment (the stack may also run pull-through caches, which are not measured here). */
function hostedDeployment(dep: Deployed): RecordedResource {
    const hosted = dep.cloud
        .byType("kubernetes:apps/v1:Deployment")
        .filter((d) => (d.inputs.metadata?.labels as Record<string, string> | undefined)?.["app.kubernetes.io/component"] === "hosted");
    if (hosted.length !== 1) throw new Error(`expected one Deployment labelled app.kubernetes.io/component=hosted, found ${hosted.length}`);
    return hosted[0];
}

/** The bcrypt cost of the hashes in the htpasswd file the running registry reads (all users share it). */
function servedBcryptCost(registryConfigFile: string): number {
    const config = YAML.parse(fs.readFileSync(registryConfigFile, "utf8")) as { auth?: { htpasswd?: { path?: string } } };
    const file = config.auth?.htpasswd?.path;
    if (file === undefined) throw new Error(`the registry's config has no auth.htpasswd.path (${registryConfigFile})`);
    const costs = [...fs.readFileSync(file, "utf8").matchAll(/:\$2[aby]\$(\d\d)\$/gm)].map((m) => Number(m[1]));
    if (costs.length === 0 || costs.some((c) => c !== costs[0])) throw new Error(`cannot read one bcrypt cost from ${file} (${costs.join(", ")})`);
    return costs[0];
}

interface ColdPullsInput {
    socket: string;
    ref: string;
    /** The pull secret's credentials; none for a public image through a cache. */
    auth?: { username: string; password: string };
    /** Run before every pull (e.g. empty the cache). */
    beforeEach?: () => Promise<void>;
    /** Blob GETs every pull must cause in `registryLog`; unchecked when absent. */
    expectBlobGets?: number;
    contentDir: string;
    snapshotDir: string;
    /** Every blob of the image: none may be in the content store before a pull. */
    digests: string[];
    registryLog: string;
    log(msg: string): void;
}

/** What one cold pull did. */
interface OnePull {
    seconds: number;
    requests: number;
    authenticated: number;
    challenges: number;
    blobGets: number;
    storeBytesAfterPull: number;
    storeBytesAfterRemove: number;
}

/**
 * PULL_WARMUP + COLD_PULLS cold pulls. Before each, none of the image's blobs may be in containerd's
 * content store; after each, the image is removed over CRI and containerd's garbage collection awaited.
 */
async function coldPulls(o: ColdPullsInput): Promise<PullsRow["coldPull"]> {
    const blobFiles = o.digests.map((d) => path.join(o.contentDir, ...d.split(":")));
    const held = () => blobFiles.filter((f) => fs.existsSync(f)).length;
    const storeBytes = () => dirBytes(o.contentDir) + dirBytes(o.snapshotDir);
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
        await waitFor(() => held() === 0, GC_WAIT_MS, "containerd to delete the removed image's content");
        // Read after the removal, so the registry has long written the pull's last lines.
        return { seconds, ...requestsSince(o.registryLog, logFrom), storeBytesAfterPull, storeBytesAfterRemove: storeBytes() };
    };
    const summary = (p: OnePull) =>
        `${p.seconds.toFixed(2)} s, ${p.requests} requests (${p.authenticated} authenticated, ${p.challenges} 401), ${p.blobGets} blob GETs; ` +
        `content + snapshots ${mb(p.storeBytesAfterPull)} -> ${mb(p.storeBytesAfterRemove)}`;

    const warmupSeconds: number[] = [];
    for (let i = 0; i < PULL_WARMUP; i++) {
        const p = await onePull();
        warmupSeconds.push(p.seconds);
        o.log(`warm-up pull (not counted): ${summary(p)}`);
    }
    const pulls: OnePull[] = [];
    for (let i = 0; i < COLD_PULLS; i++) {
        pulls.push(await onePull());
        o.log(`pull ${i + 1}/${COLD_PULLS} (containerd cold): ${summary(pulls[i])}`);
    }
    const seconds = pulls.map((p) => p.seconds);
    return {
        seconds,
        warmupSeconds,
        stats: stats(seconds),
        requests: pulls.map((p) => p.requests),
        authenticated: pulls.map((p) => p.authenticated),
        challenges: pulls.map((p) => p.challenges),
        blobGets: pulls.map((p) => p.blobGets),
        storeBytesBefore: before,
        storeBytesAfterPull: pulls.map((p) => p.storeBytesAfterPull),
        storeBytesAfterRemove: pulls.map((p) => p.storeBytesAfterRemove),
        allCold: pulls.every((p) => (o.expectBlobGets === undefined || p.blobGets === o.expectBlobGets) && p.storeBytesAfterRemove <= before),
    };
}

/** Requests the registry logged from byte `from` of its log on. */
function requestsSince(logFile: string, from: number): { requests: number; authenticated: number; challenges: number; blobGets: number } {
    const fd = fs.openSync(logFile, "r");
    let text: string;
    try {
        const size = fs.fstatSync(fd).size;
        const buf = Buffer.alloc(size - from);
        fs.readSync(fd, buf, 0, buf.length, from);
        text = buf.toString("utf8");
    } finally {
        fs.closeSync(fd);
    }
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

// ---------------------------------------------------------------------------------------------------
// HTTP load
// ---------------------------------------------------------------------------------------------------

/** One manifest HEAD; resolves with its status and duration. */
function head(url: string, agent: https.Agent, authorization?: string): Promise<{ status: number; ms: number }> {
    return new Promise((resolve, reject) => {
        const headers: Record<string, string> = { Accept: MANIFEST_ACCEPT };
        if (authorization !== undefined) headers.Authorization = authorization;
        const t0 = performance.now();
        const req = https.request(url, { method: "HEAD", agent, headers, timeout: REQUEST_TIMEOUT_MS }, (res) => {
            res.resume();
            res.on("end", () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - t0 }));
            res.on("error", reject);
        });
        req.on("timeout", () => req.destroy(new Error(`timeout after ${REQUEST_TIMEOUT_MS} ms: HEAD ${url}`)));
        req.on("error", reject);
        req.end();
    });
}

/** Sequential HEADs over keep-alive connections, authenticated and anonymous interleaved so drift hits both alike. */
async function headLatency(url: string, ca: string, authorization: string): Promise<PullsRow["head"]> {
    const authAgent = new https.Agent({ keepAlive: true, maxSockets: 1, ca });
    const anonAgent = new https.Agent({ keepAlive: true, maxSockets: 1, ca });
    try {
        const authMs: number[] = [];
        const anonMs: number[] = [];
        for (let i = 0; i < HEAD_WARMUP + HEAD_SAMPLES; i++) {
            const a = await head(url, authAgent, authorization);
            const n = await head(url, anonAgent);
            if (a.status !== 200 || n.status !== 401) throw new Error(`manifest HEAD: authenticated ${a.status} (want 200), anonymous ${n.status} (want 401)`);
            if (i < HEAD_WARMUP) continue;
            authMs.push(a.ms);
            anonMs.push(n.ms);
        }
        const auth = stats(authMs);
        const anon = stats(anonMs);
        return { samples: HEAD_SAMPLES, authMs: auth, anonMs: anon, addedMs: auth.median - anon.median };
    } finally {
        authAgent.destroy();
        anonAgent.destroy();
    }
}

/** CLIENTS concurrent loops of HEADs for THROUGHPUT_MS; requests answered with `want` per second. */
async function headThroughput(
    url: string,
    ca: string,
    authorization: string | undefined,
    want: number,
): Promise<{ requests: number; errors: number; seconds: number; reqPerSec: number }> {
    const agent = new https.Agent({ keepAlive: true, maxSockets: CLIENTS, ca });
    try {
        let requests = 0;
        let errors = 0;
        const t0 = performance.now();
        const deadline = t0 + THROUGHPUT_MS;
        const client = async () => {
            while (performance.now() < deadline) {
                try {
                    if ((await head(url, agent, authorization)).status === want) requests++;
                    else errors++;
                } catch {
                    errors++;
                }
            }
        };
        await Promise.all(Array.from({ length: CLIENTS }, client));
        // Requests in flight at the deadline still count, so the time runs until the last one ended.
        const seconds = (performance.now() - t0) / 1000;
        return { requests, errors, seconds, reqPerSec: requests / seconds };
    } finally {
        agent.destroy();
    }
}

// ---------------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------------

function stats(xs: number[]): Stats {
    const s = [...xs].sort((a, b) => a - b);
    const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
    const median = s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    return { median, min: s[0], max: s[s.length - 1], p90: at(0.9) };
}

/** Total size of the files under dir (0 if it does not exist). */
function dirBytes(dir: string): number {
    if (!fs.existsSync(dir)) return 0;
    let total = 0;
    for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
        if (e.isFile()) total += fs.statSync(path.join(e.parentPath, e.name)).size;
    }
    return total;
}

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

async function firstLine(cmd: string, args: string[]): Promise<string> {
    try {
        const r = await runCommand(cmd, args, { timeoutMs: 10_000 });
        return (r.stdout || r.stderr).trim().split("\n")[0];
    } catch (e) {
        return `unknown (${e instanceof Error ? e.message : String(e)})`;
    }
}

async function machineInfo(): Promise<Record<string, unknown>> {
    return {
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model ?? "unknown",
        memoryBytes: os.totalmem(),
        os: `${os.type()} ${os.release()} ${os.arch()}`,
        node: process.version,
        containerd: await firstLine("containerd", ["--version"]),
        registry: await firstLine("docker-registry", ["--version"]),
        skopeo: await firstLine("skopeo", ["--version"]),
    };
}

// ---------------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------------

interface Column<R> {
    header: string;
    cell(row: R): string;
}

/** Prints rows as a fixed-width table; the first column is left-aligned, the others right-aligned. */
function printTable<R>(title: string, columns: Column<R>[], rows: R[]): void {
    const cells = [columns.map((c) => c.header), ...rows.map((r) => columns.map((c) => c.cell(r)))];
    const widths = columns.map((_, i) => Math.max(...cells.map((line) => line[i].length)));
    const render = (line: string[]) => line.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
    console.log(`\n${title}`);
    console.log(render(cells[0]));
    console.log(widths.map((w) => "-".repeat(w)).join("  "));
    for (const line of cells.slice(1)) console.log(render(line));
}

const PULLS_COLUMNS: Column<PullsRow>[] = [
    { header: "cost", cell: (r) => `${r.cost}${r.requestedCost === null ? " (default)" : ""}` },
    { header: "cold pull s (median)", cell: (r) => r.coldPull.stats.median.toFixed(2) },
    { header: "min-max s", cell: (r) => `${r.coldPull.stats.min.toFixed(2)}-${r.coldPull.stats.max.toFixed(2)}` },
    { header: "auth req/pull", cell: (r) => spread(r.coldPull.authenticated) },
    { header: "blob GETs/pull", cell: (r) => spread(r.coldPull.blobGets) },
    { header: "auth HEAD ms", cell: (r) => r.head.authMs.median.toFixed(1) },
    { header: "anon HEAD ms", cell: (r) => r.head.anonMs.median.toFixed(1) },
    { header: "added ms", cell: (r) => r.head.addedMs.toFixed(1) },
    { header: `${CLIENTS}-client req/s`, cell: (r) => r.throughput.authReqPerSec.toFixed(0) },
];

const CACHE_COLUMNS: Column<CacheRow>[] = [
    { header: "scenario", cell: (r) => r.label },
    { header: "direct s", cell: (r) => r.direct.stats.median.toFixed(2) },
    { header: "cache cold s", cell: (r) => r.cacheCold.stats.median.toFixed(2) },
    { header: "cache warm s", cell: (r) => r.cacheWarm.stats.median.toFixed(2) },
    { header: "cold/direct", cell: (r) => (r.cacheCold.stats.median / r.direct.stats.median).toFixed(2) },
    { header: "warm/direct", cell: (r) => (r.cacheWarm.stats.median / r.direct.stats.median).toFixed(2) },
    { header: "upstream blob GETs cold", cell: (r) => spread(r.cacheCold.blobGets) },
    { header: "upstream blob GETs warm", cell: (r) => spread(r.cacheWarm.blobGets) },
];

/** "7" when every value is 7, else "6-8". */
function spread(xs: number[]): string {
    const lo = Math.min(...xs);
    const hi = Math.max(...xs);
    return lo === hi ? String(lo) : `${lo}-${hi}`;
}

interface Ratios {
    /** Cold pull median at the default cost / at COMPARED_COST. */
    pullTimeDefaultOverCompared: number;
    /** 8-client req/s at the default cost / at COMPARED_COST. */
    reqPerSecDefaultOverCompared: number;
    /** Added latency per authenticated request, by cost. */
    addedMsByCost: Record<string, number>;
}

function ratios(rows: PullsRow[]): Ratios {
    const byDefault = rows.find((r) => r.requestedCost === null);
    const compared = rows.find((r) => r.requestedCost === COMPARED_COST);
    if (!byDefault || !compared) throw new Error("ratios need the default-cost and the compared-cost rows");
    return {
        pullTimeDefaultOverCompared: byDefault.coldPull.stats.median / compared.coldPull.stats.median,
        reqPerSecDefaultOverCompared: byDefault.throughput.authReqPerSec / compared.throughput.authReqPerSec,
        addedMsByCost: Object.fromEntries(rows.map((r) => [String(r.cost), r.head.addedMs])),
    };
}

function printRatios(r: Ratios, rows: PullsRow[]): void {
    const def = rows.find((x) => x.requestedCost === null);
    const defCost = def?.cost ?? GENERATED_PASSWORD_BCRYPT_COST;
    console.log(`\nRatios (these are what to compare between runs):`);
    console.log(`  cold pull time, cost ${defCost} / cost ${COMPARED_COST}: ${r.pullTimeDefaultOverCompared.toFixed(2)}`);
    console.log(`  ${CLIENTS}-client req/s, cost ${defCost} / cost ${COMPARED_COST}: ${r.reqPerSecDefaultOverCompared.toFixed(1)}`);
    for (const [cost, ms] of Object.entries(r.addedMsByCost)) console.log(`  added latency per authenticated request at cost ${cost}: ${ms.toFixed(1)} ms`);
    for (const row of rows) {
        console.log(
            `  (cost ${row.cost}: anonymous ${CLIENTS}-client ceiling ${row.throughput.anonReqPerSec.toFixed(0)} req/s; ` +
                `cold pulls ${row.coldPull.allCold ? "verified cold" : "NOT all verified cold"})`,
        );
    }
}

function isoBasic(d: Date): string {
    return d
        .toISOString()
        .replace(/[-:]/g, "")
        .replace(/\.\d+Z$/, "Z");
}

// ---------------------------------------------------------------------------------------------------
// Processes: the parent runs each scenario in a child and collects its row
// ---------------------------------------------------------------------------------------------------

let currentChild: ChildProcess | undefined;

/** Runs one scenario in its own process (same node + tsx flags) and returns the row it wrote. */
async function runIsolated(spec: ScenarioSpec, imageFile: string, scratch: string): Promise<Row> {
    const outFile = path.join(scratch, `row-${Date.now()}.json`);
    const child = spawn(process.execPath, [...process.execArgv, __filename, CHILD_FLAG, JSON.stringify(spec), imageFile, outFile], { stdio: "inherit" });
    currentChild = child;
    const timer = setTimeout(() => {
        console.error(`bench: scenario "${spec.label}" exceeded ${SCENARIO_TIMEOUT_MS / 1000} s; stopping it`);
        if (child.pid !== undefined) process.kill(child.pid, "SIGTERM");
    }, SCENARIO_TIMEOUT_MS);
    try {
        const code = await new Promise<number | null>((resolve, reject) => {
            child.once("error", reject);
            child.once("exit", (c) => resolve(c));
        });
        if (code !== 0) throw new Error(`scenario "${spec.label}" failed (exit ${String(code)})`);
        return JSON.parse(fs.readFileSync(outFile, "utf8")) as Row;
    } finally {
        clearTimeout(timer);
        currentChild = undefined;
    }
}

/** In a scenario's process: run it, write its row, undo everything it set up. */
async function child(specJson: string, imageFile: string, outFile: string): Promise<void> {
    const spec = JSON.parse(specJson) as ScenarioSpec;
    const image = JSON.parse(fs.readFileSync(imageFile, "utf8")) as BuiltOciImage;
    const cleanup: Cleanup = [];
    const undo = async () => {
        for (const step of cleanup.splice(0).reverse()) {
            try {
                await step();
            } catch (e) {
                console.error(`bench: cleanup step failed: ${e instanceof Error ? e.message : String(e)}`);
            }
        }
        await stopAll();
    };
    const onSignal = (sig: NodeJS.Signals) => {
        void undo().finally(() => process.exit(sig === "SIGINT" ? 130 : 143));
    };
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    try {
        const row = spec.kind === "pulls" ? await RUNNERS.pulls(spec, image, cleanup) : await RUNNERS.cache(spec, image, cleanup);
        fs.writeFileSync(outFile, JSON.stringify(row));
    } finally {
        await undo();
    }
}

async function main(): Promise<void> {
    if (process.argv[2] === CHILD_FLAG) {
        const [specJson, imageFile, outFile] = process.argv.slice(3);
        await child(specJson, imageFile, outFile);
        return;
    }

    const missing = missingForIntegration();
    if (missing !== null) {
        console.error(`bench not run: ${missing.replace(/^integration tests skipped: /, "")}`);
        process.exitCode = 1;
        return;
    }

    const started = new Date();
    const loadAverage = os.loadavg()[0];
    if (loadAverage > BUSY_LOAD_AVERAGE) {
        console.warn(
            `bench: load average ${loadAverage.toFixed(2)} before starting: other work may be sharing the ${os.cpus().length} cores and skew the figures`,
        );
    }
    const scratch = tempDir("bench-image-");
    const onSignal = (sig: NodeJS.Signals) => {
        if (currentChild?.pid !== undefined) process.kill(currentChild.pid, "SIGTERM");
        fs.rmSync(scratch, { recursive: true, force: true });
        process.exit(sig === "SIGINT" ? 130 : 143);
    };
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    try {
        const machine = await machineInfo();
        console.log(`bench: ${machine.cpus as number} cores, node ${process.version}; ${machine.containerd as string}; ${machine.registry as string}`);
        console.log(`bench: building a ${IMAGE.layers}-layer image of ${mb(IMAGE.layers * IMAGE.layerBytes)} of incompressible bytes`);
        const image = await buildOciImage(path.join(scratch, "oci"), {
            tag: IMAGE.tag,
            layers: Array.from({ length: IMAGE.layers }, () => ({ randomBytes: IMAGE.layerBytes })),
        });
        const imageFile = path.join(scratch, "image.json");
        fs.writeFileSync(imageFile, JSON.stringify(image));

        const rows: Row[] = [];
        for (const spec of SCENARIOS) rows.push(await runIsolated(spec, imageFile, scratch));

        const pullRows = rows.filter((x): x is PullsRow => x.kind === "pulls");
        const r = ratios(pullRows);
        printTable(
            `Cold CRI pulls of a ${mb(image.totalBytes)} image (median of ${COLD_PULLS}), manifest HEAD (median of ${HEAD_SAMPLES}), ${CLIENTS} clients for ${THROUGHPUT_MS / 1000} s`,
            PULLS_COLUMNS,
            pullRows,
        );
        printRatios(r, pullRows);
        const cacheRows = rows.filter((x): x is CacheRow => x.kind === "cache");
        printTable(
            `Pulls through a cache (median of ${COLD_PULLS}; containerd cold every time; upstream GETs counted at the stand-in docker.io)`,
            CACHE_COLUMNS,
            cacheRows,
        );
        for (const c of cacheRows) {
            const warm = c.cacheWarm.stats.median / c.direct.stats.median;
            console.log(`  ${c.label}: a warm pull through the cache takes ${warm.toFixed(2)}x a direct pull (aim: at most 1)`);
        }

        const finished = new Date();
        const result = {
            startedAt: started.toISOString(),
            finishedAt: finished.toISOString(),
            note: "2 cores shared by registry, containerd and load generator over loopback: compare ratios, not absolute times",
            machine: { ...machine, loadAverage1mAtStart: loadAverage },
            settings: { CLUSTER_IP, COMPARED_COST, IMAGE, PULL_WARMUP, COLD_PULLS, HEAD_WARMUP, HEAD_SAMPLES, CLIENTS, THROUGHPUT_MS },
            image: {
                totalBytes: image.totalBytes,
                manifestDigest: image.manifestDigest,
                layers: image.layers.map((l) => ({ digest: l.digest, size: l.size })),
            },
            programDefaultCost: GENERATED_PASSWORD_BCRYPT_COST,
            rows,
            ratios: {
                ...r,
                cache: Object.fromEntries(
                    cacheRows.map((c) => [
                        c.label,
                        { coldOverDirect: c.cacheCold.stats.median / c.direct.stats.median, warmOverDirect: c.cacheWarm.stats.median / c.direct.stats.median },
                    ]),
                ),
            },
        };
        fs.mkdirSync(RESULTS_DIR, { recursive: true });
        const file = path.join(RESULTS_DIR, `pulls-${isoBasic(started)}.json`);
        fs.writeFileSync(file, JSON.stringify(result, null, 2) + "\n");
        fs.writeFileSync(path.join(RESULTS_DIR, "latest.json"), JSON.stringify(result, null, 2) + "\n");
        console.log(
            `\nbench: wrote ${path.relative(process.cwd(), file)} and bench/results/latest.json (${((finished.getTime() - started.getTime()) / 1000).toFixed(0)} s)`,
        );
    } finally {
        fs.rmSync(scratch, { recursive: true, force: true });
    }
}

main().catch((e: unknown) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
    process.exitCode = 1;
});
