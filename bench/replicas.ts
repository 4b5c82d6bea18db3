/**
 * `npm run bench` rows for issue 16: failed pulls while the hosted registry's read replicas roll, and
 * pull throughput of one vs two read replicas over the same bucket. The hosted registry runs as
 * test/integration/replicated.ts runs it: real registries from the generated Deployments over a
 * versitygw bucket, behind a round-robin stand-in for kube-proxy; containerd pulls over CRI.
 * On one 2-core machine both replicas share the same cores: throughput shows what a second replica
 * costs, not what a second node would add.
 */
import * as fs from "node:fs";
import * as https from "node:https";
import * as os from "node:os";
import type { BuiltOciImage } from "../test/integration/harness/oci";
import { waitFor } from "../test/integration/harness/procs";
import { startPullLoop } from "../test/integration/harness/pull-loop";
import { basicAuth } from "../test/integration/harness/registry";
import { ReplicatedHosted } from "../test/integration/replicated";
import { HOSTED_IP } from "../test/integration/support";

export interface ReplicasSpec {
    kind: "replicas";
    label: string;
    pullReplicas: number;
    /** How each replica is replaced: as a ready surge pod first (this program), or stopped first (`Recreate`, before issue 16). */
    strategy: "surge" | "recreate";
}

export interface ReplicasRow {
    kind: "replicas";
    label: string;
    pullReplicas: number;
    strategy: ReplicasSpec["strategy"];
    loadAverageAtStart: number;
    rollout: { pulls: number; failed: number; seconds: number; firstError?: string };
    throughput: { clients: number; seconds: number; mbPerSec: number; errors: number };
}

/** Concurrent blob downloads for the throughput figure, and for how long. */
const CLIENTS = 8;
const THROUGHPUT_MS = 10_000;

/** Downloads `url` again and again with `clients` clients, each on new connections (so the balancer spreads them), for `ms`. */
async function blobThroughput(url: string, ca: Buffer, auth: string, clients: number, ms: number): Promise<{ mbPerSec: number; errors: number }> {
    let bytes = 0;
    let errors = 0;
    const end = Date.now() + ms;
    const once = () =>
        new Promise<void>((resolve) => {
            const req = https.get(url, { headers: { Authorization: auth }, ca, agent: false }, (res) => {
                if (res.statusCode !== 200) errors++;
                res.on("data", (c: Buffer) => (bytes += c.length));
                res.on("end", resolve);
                res.on("error", () => (errors++, resolve()));
            });
            req.on("error", () => (errors++, resolve()));
        });
    const started = Date.now();
    await Promise.all(
        Array.from({ length: clients }, async () => {
            while (Date.now() < end) await once();
        }),
    );
    return { mbPerSec: bytes / 1e6 / ((Date.now() - started) / 1000), errors };
}

/** One scenario: the replicas up with the image pushed, throughput, then every read replica replaced under a CRI pull loop. */
export async function replicasScenario(
    spec: ReplicasSpec,
    image: BuiltOciImage,
    repoTag: string,
    onStop: (stop: () => Promise<void>) => void,
): Promise<ReplicasRow> {
    const log = (msg: string) => console.log(`[${spec.label}] ${msg}`);
    const loadAverageAtStart = os.loadavg()[0];
    const hosted = await ReplicatedHosted.start({ prefix: "bench-rep-", pullReplicas: spec.pullReplicas, pushReplicas: 1 });
    onStop(() => hosted.stop());
    const { cluster } = hosted;
    const push = await cluster.push(image, repoTag);
    if (push.code !== 0) throw new Error(`skopeo push: ${push.stderr}`);
    const auth = basicAuth(cluster.dep.pullAuth.username, cluster.dep.pullAuth.password);
    const largest = [...image.layers].sort((a, b) => b.size - a.size)[0];
    const url = `https://${HOSTED_IP}:${cluster.port}/v2/${repoTag.split(":")[0]}/blobs/${largest.digest}`;
    log(`throughput: ${CLIENTS} clients downloading a ${(largest.size / 1e6).toFixed(1)} MB blob for ${THROUGHPUT_MS / 1000} s`);
    const tp = await blobThroughput(url, fs.readFileSync(cluster.client.caFile), auth, CLIENTS, THROUGHPUT_MS);

    log(`rollout (${spec.strategy}) of ${spec.pullReplicas} read replica(s) under a CRI pull loop`);
    const loop = startPullLoop(cluster.containerd.socket, cluster.ref(repoTag));
    const started = Date.now();
    for (let i = 0; i < spec.pullReplicas; i++) {
        const before = loop.ok();
        await waitFor(() => loop.ok() >= before + 1, 60_000, "a pull before the rollout step");
        await (spec.strategy === "surge" ? hosted.rollPull(i) : hosted.recreatePull(i));
    }
    const after = loop.ok();
    await waitFor(() => loop.ok() >= after + 1, 60_000, "a pull after the rollout");
    const result = await loop.stop();
    return {
        kind: "replicas",
        label: spec.label,
        pullReplicas: spec.pullReplicas,
        strategy: spec.strategy,
        loadAverageAtStart,
        rollout: {
            pulls: result.ok + result.failed.length,
            failed: result.failed.length,
            seconds: (Date.now() - started) / 1000,
            firstError: result.failed[0],
        },
        throughput: { clients: CLIENTS, seconds: THROUGHPUT_MS / 1000, ...tp },
    };
}

export const REPLICAS_SCENARIOS: ReplicasSpec[] = [
    { kind: "replicas", label: "1 read replica, Recreate (before)", pullReplicas: 1, strategy: "recreate" },
    { kind: "replicas", label: "1 read replica, surge", pullReplicas: 1, strategy: "surge" },
    { kind: "replicas", label: "2 read replicas, surge", pullReplicas: 2, strategy: "surge" },
];

export const REPLICAS_COLUMNS: Array<{ header: string; cell(r: ReplicasRow): string }> = [
    { header: "hosted registry on a bucket", cell: (r) => r.label },
    { header: "pulls during rollout", cell: (r) => String(r.rollout.pulls) },
    { header: "failed pulls", cell: (r) => String(r.rollout.failed) },
    { header: "rollout s", cell: (r) => r.rollout.seconds.toFixed(1) },
    { header: `${CLIENTS}-client blob MB/s`, cell: (r) => r.throughput.mbPerSec.toFixed(0) },
    { header: "download errors", cell: (r) => String(r.throughput.errors) },
];
