/**
 * `npm run bench`: what the bcrypt cost of the registry's htpasswd costs the nodes that pull from it,
 * and what a pull-through cache costs or saves them.
 *
 * Every scenario stands the cluster up as the integration tests do (test/integration/support.ts: the
 * program under the faithful fakes, the real registry from the generated Deployments, the DaemonSet's
 * own script configuring a private containerd), pushes a ~60 MB, 4-layer image and measures:
 *  - pulls, at the program's default cost for generated passwords and at cost 10: cold CRI pulls as
 *    kubelet makes them (the pull secret's credentials); the latency an authenticated manifest HEAD adds
 *    over the same request anonymous (401, no bcrypt); requests/s of 8 concurrent clients;
 *  - cache: the same image as `docker.io/library/...` through the generated docker.io cache in front of
 *    a stand-in docker.io, cold (the cache emptied before every pull) and warm, against the direct
 *    authenticated pull from the private registry. The aim: a warm pull through a cache costs no more
 *    than a direct pull.
 *
 * RATIOS MATTER, ABSOLUTE TIMES DO NOT. The machine has 2 cores, shared by the registry, containerd
 * and the load generator, over loopback; absolute figures move from run to run. Compare runs by the
 * ratios, and by the machine info written with every result.
 *
 * Each scenario runs in a process of its own, so one scenario's daemons and caches cannot skew the
 * next, and hands back a row; the parent prints one table per kind of row and writes bench/results/.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import YAML from "yaml";
import { GENERATED_PASSWORD_BCRYPT_COST } from "../components/credentials";
import { containerdBinary } from "../test/integration/harness/containerd";
import { registryBinary } from "../test/integration/harness/distribution";
import { buildOciImage, type BuiltOciImage } from "../test/integration/harness/oci";
import { runCommand, type CommandResult } from "../test/integration/harness/procs";
import { basicAuth } from "../test/integration/harness/registry";
import { missingForIntegration } from "../test/integration/harness/tools";
import { HOSTED_IP, LoopbackCluster, tempDir, type LoopbackClusterOptions } from "../test/integration/support";
import { coldPulls, headLatency, headThroughput, MEASURE, mb, type ColdPulls, type ColdPullsInput, type HeadLatency } from "./measure";
import { IDENTITY_COSTS, nodeIdentityTargets, type IdentityRow } from "./node-identity";
import { HERD, herdModes, herdRatios, printHerd, type HerdModes } from "./herd";
import { REPLICAS_COLUMNS, REPLICAS_SCENARIOS, replicasScenario, type ReplicasRow, type ReplicasSpec } from "./replicas";
import { versitygwBuild } from "../test/integration/harness/versitygw";

/** The cost compared with the program's default (bcrypt's usual default, and ours for given passwords). */
const COMPARED_COST = 10;
/** ~60 MB: 4 layers of 15 MiB of incompressible bytes. */
const IMAGE = { repo: "bench/app", tag: "v1", layers: 4, layerBytes: 15 << 20 } as const;
/** A scenario process that takes longer is killed; the herd scenario makes six herds and sixteen CRI pulls. */
const SCENARIO_TIMEOUT_MS = 240_000;
const HERD_TIMEOUT_MS = 600_000;
/** Tries per scenario, and the pause between them (see runWithRetries). */
const SCENARIO_ATTEMPTS = 3;
const RETRY_PAUSE_MS = 10_000;
/** A 1-minute load average above this before the start means other work may share the cores: warn. */
const BUSY_LOAD_AVERAGE = 1.0;
const RESULTS_DIR = path.join(__dirname, "results");
/** argv[2] of a scenario's own process. */
const CHILD_FLAG = "--run-scenario";

interface PullsSpec {
    kind: "pulls";
    label: string;
    /** Passed as `cluster-registry:bcryptCost`; absent: the program's own default is measured. */
    bcryptCost?: number;
}
type ScenarioSpec = PullsSpec | ReplicasSpec | { kind: "cache" | "identity" | "herd"; label: string };

const SCENARIOS: ScenarioSpec[] = [
    { kind: "pulls", label: "program default" },
    { kind: "pulls", label: `cost ${COMPARED_COST}`, bcryptCost: COMPARED_COST },
    { kind: "cache", label: "docker.io cache" },
    { kind: "identity", label: "node identity" },
    { kind: "herd", label: "herd through the cache" },
];

interface PullsRow {
    kind: "pulls";
    label: string;
    /** The cost asked for (null: none, the program's default). */
    requestedCost: number | null;
    /** The cost actually in the generated htpasswd (its hash's rounds). */
    cost: number;
    /** 1-minute load average when the scenario started (well above 0, something else was busy). */
    loadAverageAtStart: number;
    coldPull: ColdPulls;
    head: HeadLatency;
    throughput: { clients: number; seconds: number; authRequests: number; authReqPerSec: number; anonReqPerSec: number; errors: number };
}

interface CacheRow {
    kind: "cache";
    label: string;
    loadAverageAtStart: number;
    /** Direct from the private registry, authenticated, at the program's default cost. */
    direct: ColdPulls;
    /** Through the cache, emptied before every pull; blob GETs are the upstream's. */
    cacheCold: ColdPulls;
    /** Through the cache, filled; blob GETs are the upstream's (0 when it is truly warm). */
    cacheWarm: ColdPulls;
}

/** Issue 17: a herd through the cache, with and without its coalescer (herd.ts). */
interface HerdRow {
    kind: "herd";
    label: string;
    loadAverageAtStart: number;
    modes: HerdModes;
}

type Row = PullsRow | CacheRow | IdentityRow | HerdRow | ReplicasRow;

// ---------------------------------------------------------------------------------------------------
// Scenarios: each stands the cluster up, pushes the image and measures
// ---------------------------------------------------------------------------------------------------

/** A cluster with the image pushed to its hosted registry through the port-forward; stopped when the scenario's process ends. */
async function clusterWithImage(image: BuiltOciImage, options: LoopbackClusterOptions): Promise<LoopbackCluster> {
    const cluster = await LoopbackCluster.start(options);
    onStop = () => cluster.stop();
    must(await cluster.push(image, `${IMAGE.repo}:${IMAGE.tag}`), "skopeo push");
    return cluster;
}

/** The node and the image every cold-pull series of a scenario shares. */
function nodeAndImage(cluster: LoopbackCluster, image: BuiltOciImage): Pick<ColdPullsInput, "socket" | "containerdRoot" | "digests"> {
    return {
        socket: cluster.containerd.socket,
        containerdRoot: cluster.containerd.root,
        digests: [image.manifestDigest, image.configDigest, ...image.layers.map((l) => l.digest)],
    };
}

async function pullsScenario(spec: PullsSpec, image: BuiltOciImage): Promise<PullsRow> {
    const log = (msg: string) => console.log(`[${spec.label}] ${msg}`);
    const loadAverageAtStart = os.loadavg()[0];
    // Nodes without the node identity (cost 4, measured in its own scenario): containerd sends the
    // credentials it is given, a user's, whose cost is the one this scenario sets.
    const config: Record<string, string> = {
        "cluster-registry:nodePulls": "false",
        ...(spec.bcryptCost === undefined ? {} : { "cluster-registry:bcryptCost": String(spec.bcryptCost) }),
    };
    const cluster = await clusterWithImage(image, { prefix: "bench-", config });
    const user = (cluster.dep.outputs.users as string[])[0];
    const userAuth = { username: user, password: (cluster.dep.outputs.passwords as Record<string, string>)[user] };
    const cost = servedBcryptCost(cluster.hosted.configFile, user);
    if (spec.bcryptCost !== undefined && cost !== spec.bcryptCost) throw new Error(`asked for bcrypt cost ${spec.bcryptCost}, the htpasswd has ${cost}`);
    log(`registry started from the generated Deployment, htpasswd at bcrypt cost ${cost}; image pushed with skopeo through the port-forward`);

    const coldPull = await coldPulls({
        ...nodeAndImage(cluster, image),
        ref: cluster.ref(`${IMAGE.repo}:${IMAGE.tag}`),
        auth: userAuth,
        // The config and every layer; the manifest is not a blob.
        expectBlobGets: image.layers.length + 1,
        registryLog: cluster.hosted.proc.logFile,
        log,
    });

    const manifestUrl = `https://${HOSTED_IP}:${cluster.port}/v2/${IMAGE.repo}/manifests/${IMAGE.tag}`;
    const ca = cluster.dep.outputs.caCertPem as string;
    const authorization = basicAuth(userAuth.username, userAuth.password);
    const head = await headLatency(manifestUrl, ca, authorization);
    log(`manifest HEAD median: authenticated ${head.authMs.median.toFixed(1)} ms, anonymous ${head.anonMs.median.toFixed(1)} ms`);
    const auth = await headThroughput(manifestUrl, ca, authorization, 200);
    const anon = await headThroughput(manifestUrl, ca, undefined, 401);
    log(`${MEASURE.CLIENTS} clients: ${auth.reqPerSec.toFixed(0)} authenticated req/s, ${anon.reqPerSec.toFixed(0)} anonymous req/s`);
    const throughput = {
        clients: MEASURE.CLIENTS,
        seconds: auth.seconds,
        authRequests: auth.requests,
        authReqPerSec: auth.reqPerSec,
        anonReqPerSec: anon.reqPerSec,
        errors: auth.errors + anon.errors,
    };
    return { kind: "pulls", label: spec.label, requestedCost: spec.bcryptCost ?? null, cost, loadAverageAtStart, coldPull, head, throughput };
}

async function cacheScenario(spec: { label: string }, image: BuiltOciImage): Promise<CacheRow> {
    const log = (msg: string) => console.log(`[${spec.label}] ${msg}`);
    const loadAverageAtStart = os.loadavg()[0];
    const cluster = await clusterWithImage(image, { prefix: "bench-", dockerIoCache: true });
    const publicRepo = `library/${path.basename(IMAGE.repo)}:${IMAGE.tag}`;
    must(await cluster.pushUpstream(image, publicRepo), "skopeo push to the stand-in docker.io");
    const upstreamLog = cluster.upstream!.registry.proc.logFile;
    log(`stand-in docker.io holds ${publicRepo}; the cache runs from the generated Deployment`);

    const direct = await coldPulls({
        ...nodeAndImage(cluster, image),
        ref: cluster.ref(`${IMAGE.repo}:${IMAGE.tag}`),
        auth: cluster.dep.pullAuth,
        expectBlobGets: image.layers.length + 1,
        registryLog: cluster.hosted.proc.logFile,
        log: (m) => log(`direct: ${m}`),
    });
    const throughCache = { ...nodeAndImage(cluster, image), ref: `docker.io/${publicRepo}`, registryLog: upstreamLog };
    const cacheCold = await coldPulls({ ...throughCache, beforeEach: () => cluster.startCache(true), log: (m) => log(`through the cache, cold: ${m}`) });
    const cacheWarm = await coldPulls({ ...throughCache, expectBlobGets: 0, log: (m) => log(`through the cache, warm: ${m}`) });
    return { kind: "cache", label: spec.label, loadAverageAtStart, direct, cacheCold, cacheWarm };
}

/** Issue 11: every request a node makes to the hosted registry or a cache pays a bcrypt check (see node-identity.ts). */
async function identityScenario(spec: { label: string }, image: BuiltOciImage): Promise<IdentityRow> {
    const log = (msg: string) => console.log(`[${spec.label}] ${msg}`);
    const loadAverageAtStart = os.loadavg()[0];
    // No node is needed: requests are made from here, as a node's containerd would make them.
    const cluster = await clusterWithImage(image, { prefix: "bench-", dockerIoCache: true, containerd: false, nodeMode: "apply" });
    const publicRepo = `library/${path.basename(IMAGE.repo)}`;
    must(await cluster.pushUpstream(image, `${publicRepo}:${IMAGE.tag}`), "skopeo push to the stand-in docker.io");
    log(
        `htpasswd made here with bcryptjs at cost ${IDENTITY_COSTS.join(" and ")}; registries run from the generated hosted and cache configs with only auth replaced`,
    );
    const targets = await nodeIdentityTargets(cluster, { hostedRepo: IMAGE.repo, publicRepo, manifestDigest: image.manifestDigest, log });
    return { kind: "identity", label: spec.label, loadAverageAtStart, costs: IDENTITY_COSTS, targets };
}

async function herdScenario(spec: { label: string }, image: BuiltOciImage): Promise<HerdRow> {
    const log = (msg: string) => console.log(`[${spec.label}] ${msg}`);
    const loadAverageAtStart = os.loadavg()[0];
    const cluster = await clusterWithImage(image, { prefix: "bench-", dockerIoCache: true, nodeMode: "apply" });
    const publicRepo = `library/${path.basename(IMAGE.repo)}`;
    must(await cluster.pushUpstream(image, `${publicRepo}:${IMAGE.tag}`), "skopeo push to the stand-in docker.io");
    const modes = await herdModes(cluster, image, { publicRepo, tag: IMAGE.tag, nodeAndImage: nodeAndImage(cluster, image), log });
    return { kind: "herd", label: spec.label, loadAverageAtStart, modes };
}

/** The bcrypt cost of `user`'s line in the htpasswd file the running registry reads. */
function servedBcryptCost(registryConfigFile: string, user: string): number {
    const config = YAML.parse(fs.readFileSync(registryConfigFile, "utf8")) as { auth?: { htpasswd?: { path?: string } } };
    const file = config.auth?.htpasswd?.path;
    if (file === undefined) throw new Error(`the registry's config has no auth.htpasswd.path (${registryConfigFile})`);
    const line = fs
        .readFileSync(file, "utf8")
        .split("\n")
        .find((l) => l.startsWith(`${user}:`));
    const cost = /^[^:]+:\$2[aby]\$(\d\d)\$/.exec(line ?? "")?.[1];
    if (cost === undefined) throw new Error(`no bcrypt line for ${user} in ${file}`);
    return Number(cost);
}

function must(r: CommandResult, what: string): void {
    if (r.code !== 0) throw new Error(`${what} failed (${String(r.code)}): ${r.stderr}`);
}

// ---------------------------------------------------------------------------------------------------
// Processes: the parent runs each scenario in a child and collects its row
// ---------------------------------------------------------------------------------------------------

/** In a scenario's process: what to undo on the way out (the cluster, once started). */
let onStop: () => Promise<void> = async () => undefined;
/** In the parent: the scenario's process running now. */
let currentChild: ChildProcess | undefined;

/** Runs one scenario in its own process (same node + tsx flags) and returns the row it wrote. */
async function runIsolated(spec: ScenarioSpec, imageFile: string, scratch: string): Promise<Row> {
    const outFile = path.join(scratch, `row-${Date.now()}.json`);
    const child = spawn(process.execPath, [...process.execArgv, __filename, CHILD_FLAG, JSON.stringify(spec), imageFile, outFile], { stdio: "inherit" });
    currentChild = child;
    const timeoutMs = spec.kind === "herd" ? HERD_TIMEOUT_MS : SCENARIO_TIMEOUT_MS;
    const timer = setTimeout(() => {
        console.error(`bench: scenario "${spec.label}" exceeded ${timeoutMs / 1000} s; stopping it`);
        child.kill("SIGTERM");
    }, timeoutMs);
    try {
        const code = await new Promise<number | null>((resolve, reject) => child.once("error", reject).once("exit", resolve));
        if (code !== 0) throw new Error(`scenario "${spec.label}" failed (exit ${String(code)})`);
        return JSON.parse(fs.readFileSync(outFile, "utf8")) as Row;
    } finally {
        clearTimeout(timer);
        currentChild = undefined;
    }
}

/**
 * runIsolated, tried up to SCENARIO_ATTEMPTS times: the registries' debug listeners have fixed ports on
 * the Services' loopback IPs, so an integration test running at the same time makes a scenario fail to start.
 */
async function runWithRetries(spec: ScenarioSpec, imageFile: string, scratch: string): Promise<Row> {
    for (let attempt = 1; ; attempt++) {
        try {
            return await runIsolated(spec, imageFile, scratch);
        } catch (e) {
            if (attempt >= SCENARIO_ATTEMPTS) throw e;
            console.warn(`bench: ${(e as Error).message}; another run may hold a port, trying again in ${RETRY_PAUSE_MS / 1000} s`);
            await new Promise((resolve) => setTimeout(resolve, RETRY_PAUSE_MS));
        }
    }
}

/** In a scenario's process: run it, write its row, stop everything it started (also on a signal). */
async function child(specJson: string, imageFile: string, outFile: string): Promise<void> {
    const spec = JSON.parse(specJson) as ScenarioSpec;
    const image = JSON.parse(fs.readFileSync(imageFile, "utf8")) as BuiltOciImage;
    const onSignal = (sig: NodeJS.Signals) => void onStop().finally(() => process.exit(sig === "SIGINT" ? 130 : 143));
    process.once("SIGINT", onSignal).once("SIGTERM", onSignal);
    try {
        const row =
            spec.kind === "pulls"
                ? await pullsScenario(spec, image)
                : spec.kind === "cache"
                  ? await cacheScenario(spec, image)
                  : spec.kind === "herd"
                    ? await herdScenario(spec, image)
                    : spec.kind === "replicas"
                      ? await replicasScenario(spec, image, `${IMAGE.repo}:${IMAGE.tag}`, (stop) => (onStop = stop))
                      : await identityScenario(spec, image);
        fs.writeFileSync(outFile, JSON.stringify(row));
    } finally {
        await onStop();
    }
}

async function main(): Promise<void> {
    if (process.argv[2] === CHILD_FLAG) return child(process.argv[3], process.argv[4], process.argv[5]);
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
        currentChild?.kill("SIGTERM");
        fs.rmSync(scratch, { recursive: true, force: true });
        process.exit(sig === "SIGINT" ? 130 : 143);
    };
    process.once("SIGINT", onSignal).once("SIGTERM", onSignal);
    try {
        const machine = await machineInfo();
        console.log(`bench: ${machine.cpus} cores, node ${process.version}; ${machine.containerd}; ${machine.registry}`);
        console.log(`bench: building a ${IMAGE.layers}-layer image of ${mb(IMAGE.layers * IMAGE.layerBytes)} of incompressible bytes`);
        const layers = Array.from({ length: IMAGE.layers }, () => ({ randomBytes: IMAGE.layerBytes }));
        const image = await buildOciImage(path.join(scratch, "oci"), { tag: IMAGE.tag, layers });
        const imageFile = path.join(scratch, "image.json");
        fs.writeFileSync(imageFile, JSON.stringify(image));
        const rows: Row[] = [];
        // The replica rows need versitygw (scripts/test-all builds it); without it they are left out, and say so.
        const s3 = versitygwBuild();
        if ("missing" in s3) console.warn(`bench: replica rows skipped: ${s3.missing}`);
        for (const spec of [...SCENARIOS, ...("missing" in s3 ? [] : REPLICAS_SCENARIOS)]) rows.push(await runWithRetries(spec, imageFile, scratch));
        const ratios = printReport(rows, image);
        writeResults({ started, loadAverage, machine, image, rows, ratios });
    } finally {
        fs.rmSync(scratch, { recursive: true, force: true });
    }
}

// ---------------------------------------------------------------------------------------------------
// Report: tables, ratios, bench/results/
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
    console.log(`\n${title}\n${render(cells[0])}\n${widths.map((w) => "-".repeat(w)).join("  ")}`);
    for (const line of cells.slice(1)) console.log(render(line));
}

/** "7" when every value is 7, else "6-8". */
function spread(xs: number[]): string {
    const [lo, hi] = [Math.min(...xs), Math.max(...xs)];
    return lo === hi ? String(lo) : `${lo}-${hi}`;
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
    { header: `${MEASURE.CLIENTS}-client req/s`, cell: (r) => r.throughput.authReqPerSec.toFixed(0) },
];

const over = (a: ColdPulls, b: ColdPulls) => a.stats.median / b.stats.median;

const CACHE_COLUMNS: Column<CacheRow>[] = [
    { header: "scenario", cell: (r) => r.label },
    { header: "direct s", cell: (r) => r.direct.stats.median.toFixed(2) },
    { header: "cache cold s", cell: (r) => r.cacheCold.stats.median.toFixed(2) },
    { header: "cache warm s", cell: (r) => r.cacheWarm.stats.median.toFixed(2) },
    { header: "cold/direct", cell: (r) => over(r.cacheCold, r.direct).toFixed(2) },
    { header: "warm/direct", cell: (r) => over(r.cacheWarm, r.direct).toFixed(2) },
    { header: "upstream blob GETs cold", cell: (r) => spread(r.cacheCold.blobGets) },
    { header: "upstream blob GETs warm", cell: (r) => spread(r.cacheWarm.blobGets) },
];

/** One line of a table whose rows are measures and whose columns are the cache cold and warm. */
interface CacheMeasure {
    measure: string;
    cold: string;
    warm: string;
}

const CACHE_MEASURE_COLUMNS: Column<CacheMeasure>[] = [
    { header: "measure", cell: (r) => r.measure },
    { header: "cache cold (emptied)", cell: (r) => r.cold },
    { header: "cache warm", cell: (r) => r.warm },
];

/** One line per registry variant of the node-identity scenario. */
type IdentityLine = IdentityRow["targets"][number]["variants"][number] & { target: string };

const IDENTITY_COLUMNS: Column<IdentityLine>[] = [
    { header: "target", cell: (r) => r.target },
    { header: "auth", cell: (r) => (r.cost === null ? "anonymous (none)" : `htpasswd cost ${r.cost}`) },
    { header: "HEAD ms (median)", cell: (r) => r.ms.median.toFixed(2) },
    { header: "p90 ms", cell: (r) => r.ms.p90.toFixed(2) },
    { header: "added ms", cell: (r) => (r.cost === null ? "-" : r.addedMs.toFixed(2)) },
    { header: `${MEASURE.CLIENTS}-client req/s`, cell: (r) => r.reqPerSec.toFixed(0) },
    { header: "req/s / anonymous", cell: (r) => r.reqPerSecOverAnonymous.toFixed(2) },
];

/** Prints the tables and the ratios to compare between runs; returns the ratios. */
function printReport(rows: Row[], image: BuiltOciImage) {
    const pulls = rows.filter((x): x is PullsRow => x.kind === "pulls");
    const caches = rows.filter((x): x is CacheRow => x.kind === "cache");
    const { COLD_PULLS, HEAD_SAMPLES, CLIENTS, THROUGHPUT_MS } = MEASURE;
    const title = `Cold CRI pulls of a ${mb(image.totalBytes)} image (median of ${COLD_PULLS}), manifest HEAD (median of ${HEAD_SAMPLES}), ${CLIENTS} clients for ${THROUGHPUT_MS / 1000} s`;
    printTable(title, PULLS_COLUMNS, pulls);

    const byDefault = pulls.find((r) => r.requestedCost === null);
    const compared = pulls.find((r) => r.requestedCost === COMPARED_COST);
    if (!byDefault || !compared) throw new Error("ratios need the default-cost and the compared-cost rows");
    const ratios = {
        /** Cold pull median at the default cost / at COMPARED_COST. */
        pullTimeDefaultOverCompared: over(byDefault.coldPull, compared.coldPull),
        /** 8-client req/s at the default cost / at COMPARED_COST. */
        reqPerSecDefaultOverCompared: byDefault.throughput.authReqPerSec / compared.throughput.authReqPerSec,
        /** Added latency per authenticated request, by cost. */
        addedMsByCost: Object.fromEntries(pulls.map((r) => [String(r.cost), r.head.addedMs])),
    };
    const costs = `cost ${byDefault.cost} / cost ${COMPARED_COST}`;
    console.log(`\nRatios (these are what to compare between runs):`);
    console.log(`  cold pull time, ${costs}: ${ratios.pullTimeDefaultOverCompared.toFixed(2)}`);
    console.log(`  ${CLIENTS}-client req/s, ${costs}: ${ratios.reqPerSecDefaultOverCompared.toFixed(1)}`);
    for (const r of pulls) console.log(`  added latency per authenticated request at cost ${r.cost}: ${r.head.addedMs.toFixed(1)} ms`);
    for (const r of pulls) {
        const cold = r.coldPull.allCold ? "verified cold" : "NOT all verified cold";
        console.log(`  (cost ${r.cost}: anonymous ${CLIENTS}-client ceiling ${r.throughput.anonReqPerSec.toFixed(0)} req/s; cold pulls ${cold})`);
    }

    printTable(
        `Pulls through a cache (median of ${COLD_PULLS}; containerd cold every time; upstream GETs counted at the stand-in docker.io)`,
        CACHE_COLUMNS,
        caches,
    );
    const blobs = image.layers.length + 1;
    for (const c of caches) {
        printTable(`${c.label}, per cold pull (containerd cold) of the ${blobs}-blob image, against the direct authenticated pull`, CACHE_MEASURE_COLUMNS, [
            { measure: "pull time / direct pull", cold: over(c.cacheCold, c.direct).toFixed(2), warm: over(c.cacheWarm, c.direct).toFixed(2) },
            { measure: "upstream blob GETs per cold pull", cold: spread(c.cacheCold.blobGets), warm: spread(c.cacheWarm.blobGets) },
            {
                measure: "upstream blob GETs per blob",
                cold: spread(c.cacheCold.blobGets.map((n) => n / blobs)),
                warm: spread(c.cacheWarm.blobGets.map((n) => n / blobs)),
            },
        ]);
        console.log(`  ${c.label}: a warm pull through the cache takes ${over(c.cacheWarm, c.direct).toFixed(2)}x a direct pull (aim: at most 1)`);
    }
    const cacheRatios = Object.fromEntries(
        caches.map((c) => [
            c.label,
            {
                coldOverDirect: over(c.cacheCold, c.direct),
                warmOverDirect: over(c.cacheWarm, c.direct),
                imageBlobs: blobs,
                upstreamBlobGetsPerColdPull: { cacheCold: c.cacheCold.blobGets, cacheWarm: c.cacheWarm.blobGets },
            },
        ]),
    );

    const replicas = rows.filter((x): x is ReplicasRow => x.kind === "replicas");
    if (replicas.length > 0) {
        printTable(
            "Rolling restarts of the hosted registry's read replicas under a CRI pull loop; blob throughput through the Service",
            REPLICAS_COLUMNS,
            replicas,
        );
    }

    const identity = rows.filter((x): x is IdentityRow => x.kind === "identity");
    const lines = identity.flatMap((r) => r.targets.flatMap((t) => t.variants.map((v) => ({ ...v, target: t.target }))));
    printTable(
        `What node pulls cost: one manifest HEAD by digest, anonymous vs a node identity (htpasswd made with bcryptjs), median of ${HEAD_SAMPLES}; ${CLIENTS} clients for ${THROUGHPUT_MS / 1000} s`,
        IDENTITY_COLUMNS,
        lines,
    );
    const nodeIdentity = Object.fromEntries(
        identity.flatMap((r) =>
            r.targets.map((t) => [
                t.target,
                Object.fromEntries(
                    t.variants
                        .filter((v) => v.cost !== null)
                        .map((v) => [`cost ${v.cost}`, { addedMs: v.addedMs, reqPerSec: v.reqPerSec, reqPerSecOverAnonymous: v.reqPerSecOverAnonymous }]),
                ),
            ]),
        ),
    );
    for (const [target, byCost] of Object.entries(nodeIdentity))
        for (const [cost, v] of Object.entries(byCost))
            console.log(
                `  ${target}, ${cost}: +${v.addedMs.toFixed(2)} ms per request, ${v.reqPerSecOverAnonymous.toFixed(2)}x the anonymous ${CLIENTS}-client req/s`,
            );
    const herds = rows.filter((x): x is HerdRow => x.kind === "herd");
    for (const h of herds) printHerd(h.modes, blobs);
    return { ...ratios, cache: cacheRatios, nodeIdentity, herd: herds.map((h) => herdRatios(h.modes))[0] };
}

/** Writes bench/results/pulls-<start time>.json and bench/results/latest.json. */
function writeResults(r: {
    started: Date;
    loadAverage: number;
    machine: Awaited<ReturnType<typeof machineInfo>>;
    image: BuiltOciImage;
    rows: Row[];
    ratios: object;
}): void {
    const finished = new Date();
    const result = {
        startedAt: r.started.toISOString(),
        finishedAt: finished.toISOString(),
        note: "2 cores shared by registry, containerd and load generator over loopback: compare ratios, not absolute times",
        machine: { ...r.machine, loadAverage1mAtStart: r.loadAverage },
        settings: { CLUSTER_IP: HOSTED_IP, COMPARED_COST, IDENTITY_COSTS, IMAGE, HERD, ...MEASURE },
        image: {
            totalBytes: r.image.totalBytes,
            manifestDigest: r.image.manifestDigest,
            layers: r.image.layers.map((l) => ({ digest: l.digest, size: l.size })),
        },
        programDefaultCost: GENERATED_PASSWORD_BCRYPT_COST,
        rows: r.rows,
        ratios: r.ratios,
    };
    fs.mkdirSync(RESULTS_DIR, { recursive: true });
    const file = path.join(RESULTS_DIR, `pulls-${r.started.toISOString().replace(/[-:]|\.\d+/g, "")}.json`);
    for (const f of [file, path.join(RESULTS_DIR, "latest.json")]) fs.writeFileSync(f, JSON.stringify(result, null, 2) + "\n");
    const seconds = ((finished.getTime() - r.started.getTime()) / 1000).toFixed(0);
    console.log(`\nbench: wrote ${path.relative(process.cwd(), file)} and bench/results/latest.json (${seconds} s)`);
}

async function machineInfo() {
    const firstLine = async (cmd: string) => {
        const r = await runCommand(cmd, ["--version"], { timeoutMs: 10_000 }).catch((e: Error) => ({ stdout: `unknown (${e.message})`, stderr: "" }));
        return (r.stdout || r.stderr).trim().split("\n")[0];
    };
    return {
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model ?? "unknown",
        memoryBytes: os.totalmem(),
        os: `${os.type()} ${os.release()} ${os.arch()}`,
        node: process.version,
        containerd: await firstLine(containerdBinary("1.6")),
        registry: await firstLine(registryBinary()),
        skopeo: await firstLine("skopeo"),
    };
}

main().catch((e: unknown) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
    process.exitCode = 1;
});
