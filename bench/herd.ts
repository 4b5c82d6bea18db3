/**
 * Issue 17 in `npm run bench`: N nodes pulling one cold image through a cache at once, with the
 * coalescer (nginx in front of the cache) and without it: upstream blob GETs per blob and the herd's
 * total time, taken in turn so other work on the machine hits both alike; and what the extra hop
 * costs one warm pull (containerd cold, cache filled).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import YAML from "yaml";
import { renderDockerConfigJson } from "../components/render/docker-config";
import { pullHerd, upstreamGets } from "../test/integration/harness/herd";
import type { BuiltOciImage } from "../test/integration/harness/oci";
import { CACHE_IP, type LoopbackCluster } from "../test/integration/support";
import { COALESCER_CACHE_SUBDIR, DEFAULT_COALESCER_IMAGE } from "../components/coalescer";
import { MOUNTS } from "../components/registry";
import { coldPulls, MEASURE, type ColdPulls, type ColdPullsInput } from "./measure";

/** Clients in a herd, and cold herds per mode. */
export const HERD = { CLIENTS: 8, RUNS: 3 } as const;

export type HerdMode = "coalesced" | "uncoalesced";
const MODES: readonly HerdMode[] = ["coalesced", "uncoalesced"];

export interface HerdRun {
    seconds: number;
    /** Upstream GETs of each blob (config and layers), in the image's order. */
    blobGetsPerBlob: number[];
    manifestGets: number;
}

/**
 * Per mode: the cold herds, and single warm pulls over CRI (the cache pod restarted before each).
 * Coalesced, `warm` is served from nginx's own copy (within its window) and `hop` from the registry
 * through nginx (its copy dropped before each pull): what the extra hop costs.
 */
export type HerdModes = Record<HerdMode, { herds: HerdRun[]; warm: ColdPulls }> & { hop: ColdPulls };

/** The stack's cache with or without its coalescer, emptied and restarted from the generated Deployment. */
async function cacheIn(cluster: LoopbackCluster, mode: HerdMode): Promise<void> {
    await cluster.redeploy({ "cluster-registry:cacheCoalescerImage": mode === "coalesced" ? DEFAULT_COALESCER_IMAGE : "" });
    await cluster.startCache(true);
    if ((cluster.coalescer !== undefined) !== (mode === "coalesced")) throw new Error(`the cache did not start ${mode}`);
}

/** The node identity's authfile for the cache, from the k3s registries.yaml output. */
function nodeAuthfile(cluster: LoopbackCluster, cacheHost: string): string {
    const configs = (
        YAML.parse(cluster.dep.outputs.k3sRegistriesYaml as string) as { configs: Record<string, { auth: { username: string; password: string } }> }
    ).configs;
    const node = configs[cacheHost].auth;
    const file = path.join(cluster.work, "node-auth.json");
    fs.writeFileSync(file, renderDockerConfigJson([cacheHost], node.username, node.password), { mode: 0o600 });
    return file;
}

/**
 * HERD.RUNS cold herds per mode, modes in turn, each on an emptied cache; then per mode one pull to
 * fill the cache and MEASURE.COLD_PULLS CRI pulls (containerd cold) with no upstream blob GET allowed.
 */
export async function herdModes(
    cluster: LoopbackCluster,
    image: BuiltOciImage,
    o: { publicRepo: string; tag: string; nodeAndImage: Pick<ColdPullsInput, "socket" | "containerdRoot" | "digests">; log(msg: string): void },
): Promise<HerdModes> {
    const cacheHost = `${CACHE_IP}:${cluster.port}`;
    const authfile = nodeAuthfile(cluster, cacheHost);
    const upstream = cluster.upstream!.registry.proc;
    const blobs = [image.configDigest, ...image.layers.map((l) => l.digest)];
    const herds: Record<HerdMode, HerdRun[]> = { coalesced: [], uncoalesced: [] };
    for (let run = 0; run < HERD.RUNS; run++) {
        for (const mode of MODES) {
            await cacheIn(cluster, mode);
            const from = upstream.log().length;
            const herd = await pullHerd({
                clients: HERD.CLIENTS,
                image: `${cacheHost}/${o.publicRepo}:${o.tag}`,
                expect: image,
                workDir: path.join(cluster.work, "herd"),
                authfile,
                certDir: cluster.client.certDir,
            });
            if (herd.problems.length > 0) throw new Error(`herd ${mode}: ${herd.problems.join("; ")}`);
            const gets = upstreamGets(upstream.log().slice(from), o.publicRepo);
            const r = { seconds: herd.seconds, blobGetsPerBlob: blobs.map((d) => gets.blobs.get(d) ?? 0), manifestGets: gets.manifests };
            herds[mode].push(r);
            o.log(
                `${mode} herd ${run + 1}/${HERD.RUNS}: ${r.seconds.toFixed(2)} s, upstream GETs per blob ${r.blobGetsPerBlob.join(" ")}, manifest GETs ${r.manifestGets}`,
            );
        }
    }
    const pulls = { ...o.nodeAndImage, ref: `docker.io/${o.publicRepo}:${o.tag}`, registryLog: upstream.logFile };
    // The first, uncounted pull fills the cache; the counted ones may not fetch a blob upstream.
    const warmPulls = (what: string, beforeEach: () => Promise<unknown>) =>
        coldPulls({ ...pulls, expectBlobGets: 0, beforeEach, log: (m) => o.log(`${what}: ${m}`) });
    const nginxCopy = path.join(cluster.work, "cache-pod", MOUNTS.storage, COALESCER_CACHE_SUBDIR);
    await cacheIn(cluster, "uncoalesced");
    const uncoalesced = await warmPulls("uncoalesced, one warm pull", () => cluster.startCache());
    await cacheIn(cluster, "coalesced");
    const coalesced = await warmPulls("coalesced, one warm pull from nginx's copy", () => cluster.startCache());
    const hop = await warmPulls("coalesced, one warm pull through nginx to the registry", async () => {
        await cluster.stopCache();
        fs.rmSync(nginxCopy, { recursive: true, force: true });
        await cluster.startCache();
    });
    return { coalesced: { herds: herds.coalesced, warm: coalesced }, uncoalesced: { herds: herds.uncoalesced, warm: uncoalesced }, hop };
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** The ratios to compare between runs, and the aims of issue 17. */
export function herdRatios(m: HerdModes) {
    const perBlob = (mode: HerdMode) => m[mode].herds.map((h) => sum(h.blobGetsPerBlob) / h.blobGetsPerBlob.length);
    const herdSeconds = (mode: HerdMode) => median(m[mode].herds.map((h) => h.seconds));
    return {
        clients: HERD.CLIENTS,
        /** Mean over the image's blobs of upstream GETs, per herd. */
        upstreamBlobGetsPerBlob: { coalesced: perBlob("coalesced"), uncoalesced: perBlob("uncoalesced") },
        /** The most GETs any one blob cost, per herd (aim: 1 coalesced). */
        maxBlobGets: {
            coalesced: m.coalesced.herds.map((h) => Math.max(...h.blobGetsPerBlob)),
            uncoalesced: m.uncoalesced.herds.map((h) => Math.max(...h.blobGetsPerBlob)),
        },
        manifestGets: { coalesced: m.coalesced.herds.map((h) => h.manifestGets), uncoalesced: m.uncoalesced.herds.map((h) => h.manifestGets) },
        /** Median herd time, coalesced / uncoalesced (aim: at most 1.2). */
        herdTimeCoalescedOverUncoalesced: herdSeconds("coalesced") / herdSeconds("uncoalesced"),
        herdSecondsMedian: { coalesced: herdSeconds("coalesced"), uncoalesced: herdSeconds("uncoalesced") },
        /** Median warm CRI pull through nginx to the registry / straight to the registry: the extra hop. */
        warmPullHopOverUncoalesced: m.hop.stats.median / m.uncoalesced.warm.stats.median,
        /** Median warm CRI pull served from nginx's own copy / straight from the registry. */
        warmPullNginxCopyOverUncoalesced: m.coalesced.warm.stats.median / m.uncoalesced.warm.stats.median,
        warmPullSecondsMedian: { nginxCopy: m.coalesced.warm.stats.median, throughNginx: m.hop.stats.median, uncoalesced: m.uncoalesced.warm.stats.median },
    };
}

/** Prints the herd table and its ratios. */
export function printHerd(m: HerdModes, blobs: number): void {
    const r = herdRatios(m);
    const fmt = (xs: number[], digits = 1) => xs.map((x) => x.toFixed(digits)).join(", ");
    console.log(`
A herd: ${HERD.CLIENTS} skopeo clients at once pulling one cold ${blobs}-blob image through the docker.io cache (${HERD.RUNS} herds each, modes in turn)`);
    const lines = [
        ["measure", "coalesced (nginx)", "uncoalesced"],
        [
            `upstream blob GETs per blob, ${HERD.CLIENTS} clients at once, cold`,
            fmt(r.upstreamBlobGetsPerBlob.coalesced, 2),
            fmt(r.upstreamBlobGetsPerBlob.uncoalesced, 2),
        ],
        ["most upstream GETs of one blob", fmt(r.maxBlobGets.coalesced, 0), fmt(r.maxBlobGets.uncoalesced, 0)],
        ["upstream manifest GETs", fmt(r.manifestGets.coalesced, 0), fmt(r.manifestGets.uncoalesced, 0)],
        [
            "herd total s",
            fmt(
                m.coalesced.herds.map((h) => h.seconds),
                2,
            ),
            fmt(
                m.uncoalesced.herds.map((h) => h.seconds),
                2,
            ),
        ],
        [
            `one warm CRI pull s, median of ${MEASURE.COLD_PULLS}: from nginx's copy / through nginx to the registry`,
            `${r.warmPullSecondsMedian.nginxCopy.toFixed(2)} / ${r.warmPullSecondsMedian.throughNginx.toFixed(2)}`,
            r.warmPullSecondsMedian.uncoalesced.toFixed(2),
        ],
    ];
    const widths = lines[0].map((_, i) => Math.max(...lines.map((l) => l[i].length)));
    for (const [i, l] of lines.entries()) {
        console.log(l.map((c, j) => (j === 0 ? c.padEnd(widths[j]) : c.padStart(widths[j]))).join("  "));
        if (i === 0) console.log(widths.map((w) => "-".repeat(w)).join("  "));
    }
    console.log(`  herd time coalesced / uncoalesced (median): ${r.herdTimeCoalescedOverUncoalesced.toFixed(2)} (aim: at most 1.20)`);
    console.log(`  one warm pull through nginx to the registry / straight to it (the extra hop): ${r.warmPullHopOverUncoalesced.toFixed(2)}`);
    console.log(`  one warm pull from nginx's copy / straight from the registry: ${r.warmPullNginxCopyOverUncoalesced.toFixed(2)}`);
}
