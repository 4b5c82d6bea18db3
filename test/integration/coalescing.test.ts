/**
 * Issue 17: a rollout's nodes asking a cold cache for one image at once cost the upstream one download.
 * The generated cache pod runs as the cluster would: Debian's nginx from the coalescer container's
 * command and generated nginx.conf, the real registry from its config, in front of a stand-in docker.io
 * (anonymous, so it sends no token challenge: only blob and manifest GETs are counted, never pings).
 */
import * as fs from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import YAML from "yaml";
import { renderDockerConfigJson } from "../../components/render/docker-config";
import { MOUNTS } from "../../components/registry";
import { EVICTION_COUNTERS_FILE } from "../../components/render/registry-config";
import { criImageStatus, criPull } from "./harness/cri";
import { pullHerd, pullWith, upstreamGets } from "./harness/herd";
import { buildOciImage, type BuiltOciImage } from "./harness/oci";
import { materialize } from "./harness/pod";
import { startProcess, waitFor } from "./harness/procs";
import { promtool, promtoolBuild } from "./harness/promtool";
import { basicAuth } from "./harness/registry";
import { describeIntegration } from "./describe-integration";
import { CACHE_IP, LoopbackCluster } from "./support";

const REPO = "library/herd";
const LAYERS = 4;

/** One GET over TLS: status, a challenge if any, and the body's length. */
function get(url: string, ca: string, authorization?: string): Promise<{ status: number; challenge?: string; bytes: number }> {
    return new Promise((resolve, reject) => {
        const headers: Record<string, string> = authorization ? { Authorization: authorization } : {};
        const req = https.get(url, { ca, headers, agent: false }, (res) => {
            let bytes = 0;
            res.on("data", (b: Buffer) => (bytes += b.length));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, challenge: res.headers["www-authenticate"], bytes }));
            res.on("error", reject);
        });
        req.on("error", reject);
    });
}

/** One plain-HTTP request: status, Content-Type and body. */
function plain(url: string, method = "GET"): Promise<{ status: number; type?: string; body: string }> {
    return new Promise((resolve, reject) => {
        const req = http.request(url, { method, agent: false }, (res) => {
            let body = "";
            res.on("data", (c: Buffer) => (body += c.toString()));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, type: res.headers["content-type"], body }));
            res.on("error", reject);
        });
        req.on("error", reject);
        req.end();
    });
}

/** A counter's value in Prometheus text. */
const counter = (text: string, name: string) => Number(new RegExp(`^${name} (\\d+)$`, "m").exec(text)?.[1] ?? NaN);

describeIntegration("a herd pulling one cold image through the generated cache and its coalescer", () => {
    let cluster: LoopbackCluster;
    let node: { username: string; password: string };
    let nodeAuthfile: string;
    let cacheHost: string;
    let last: BuiltOciImage;

    beforeAll(async () => {
        cluster = await LoopbackCluster.start({ prefix: "crco-", dockerIoCache: true, nodeMode: "apply", containerd: false });
        cacheHost = `${CACHE_IP}:${cluster.port}`;
        // The node identity, as the k3s registries.yaml output carries it for the cache's endpoint.
        const configs = (YAML.parse(cluster.dep.outputs.k3sRegistriesYaml as string) as { configs: Record<string, { auth: typeof node }> }).configs;
        node = configs[cacheHost].auth;
        nodeAuthfile = path.join(cluster.work, "node-auth.json");
        fs.writeFileSync(nodeAuthfile, renderDockerConfigJson([cacheHost], node.username, node.password), { mode: 0o600 });
    });

    afterAll(() => cluster?.stop());

    /** A new image (so nothing of it is cached) pushed to the stand-in docker.io. */
    async function freshImage(tag: string): Promise<BuiltOciImage> {
        const image = await buildOciImage(path.join(cluster.work, `oci-${tag}`), {
            tag,
            layers: Array.from({ length: LAYERS }, () => ({ randomBytes: 3 << 20 })),
        });
        const push = await cluster.pushUpstream(image, `${REPO}:${tag}`);
        expect(push.code, push.stderr).toBe(0);
        return image;
    }

    /** What the upstream served of `image` since byte `before` of its log: GETs per blob (config, layers), and of manifests. */
    function upstreamSince(before: number, image: BuiltOciImage) {
        const gets = upstreamGets(cluster.upstream!.registry.proc.log().slice(before), REPO);
        return { perBlob: [image.configDigest, ...image.layers.map((l) => l.digest)].map((d) => gets.blobs.get(d) ?? 0), manifests: gets.manifests };
    }

    /** A fresh image pulled by N skopeo clients at once. */
    async function coldHerd(clients: number, tag: string) {
        const image = await freshImage(tag);
        const before = cluster.upstream!.registry.proc.log().length;
        const herd = await pullHerd({
            clients,
            image: `${cacheHost}/${REPO}:${tag}`,
            expect: image,
            workDir: path.join(cluster.work, `herd-${tag}`),
            authfile: nodeAuthfile,
            certDir: cluster.client.certDir,
        });
        const { perBlob, manifests } = upstreamSince(before, image);
        console.info(`${clients} clients, ${tag}: ${herd.seconds.toFixed(2)} s; upstream GETs per blob ${perBlob.join(" ")}, manifest GETs ${manifests}`);
        return { image, herd, perBlob, manifests };
    }

    test.each([8, 16])("%i clients at once, cold: one upstream GET per blob, one manifest GET, every client gets every blob intact", async (n) => {
        const { image, herd, perBlob, manifests } = await coldHerd(n, `n${n}`);
        expect(herd.problems).toEqual([]);
        expect(perBlob).toEqual(perBlob.map(() => 1));
        expect(manifests).toBe(1);
        expect(cluster.cacheLog()).toMatch(/blobs\/sha256:[0-9a-f]{64}[^"]*" 200 \d+ cache=HIT/);
        last = image;
    });

    test("8 nodes' containerd at once over CRI, as kubelet pulls docker.io/library/herd through the mirror with the node identity hosts.toml sends: one upstream GET per blob, one manifest GET", async () => {
        const nodes = await Promise.all(Array.from({ length: 8 }, (_, i) => cluster.startNodeContainerd(`c${i}`)));
        try {
            const image = await freshImage("cri");
            const before = cluster.upstream!.registry.proc.log().length;
            const ref = `docker.io/${REPO}:cri`;
            await Promise.all(nodes.map((n) => criPull(n.socket, ref)));
            // containerd checks every blob's digest before it records the image.
            for (const n of nodes) expect((await criImageStatus(n.socket, ref))?.repo_digests).toContain(`docker.io/${REPO}@${image.manifestDigest}`);
            const { perBlob, manifests } = upstreamSince(before, image);
            console.info(`8 containerd nodes: upstream GETs per blob ${perBlob.join(" ")}, manifest GETs ${manifests}`);
            expect(perBlob).toEqual(perBlob.map(() => 1));
            expect(manifests).toBe(1);
        } finally {
            await Promise.all(nodes.map((n) => n.stop()));
        }
    });

    test("auth holds for nginx's own hits: without the node identity, nothing of a blob another client just fetched", async () => {
        const ca = cluster.dep.outputs.caCertPem as string;
        const layer = last.layers[0];
        const url = `https://${cacheHost}/v2/${REPO}/blobs/${layer.digest}`;
        const logFrom = cluster.cacheLog().length;
        const allowed = await get(url, ca, basicAuth(node.username, node.password));
        expect(allowed).toMatchObject({ status: 200, bytes: layer.size });
        // Served by nginx from its copy: the registry never saw this request.
        expect(cluster.cacheLog().slice(logFrom)).toMatch(/cache=HIT/);
        for (const authorization of [undefined, basicAuth(node.username, `${node.password}x`), basicAuth("cluster-registry-pull", node.password)]) {
            const refused = await get(url, ca, authorization);
            expect(refused.status).toBe(401);
            expect(refused.challenge).toMatch(/^Basic realm=/);
            expect(refused.bytes).toBeLessThan(layer.size);
        }
        const anonymous = await pullWith(`${cacheHost}/${REPO}:n16`, path.join(cluster.work, "anonymous"), { certDir: cluster.client.certDir });
        expect(anonymous.code).not.toBe(0);
        expect(anonymous.stderr).toMatch(/unauthorized|401/i);
    });

    test("a cache's eviction counters: its nginx serves the file the real eviction loop writes at /metrics on the pod's loopback, Prometheus text promtool accepts, the values its log gave; every other path 404, writes refused", async () => {
        const metricsAddr = cluster.coalescer?.metricsAddr;
        expect(metricsAddr, "the generated nginx.conf serves the eviction counters").toBeDefined();
        // On the pod's loopback (the harness's 127.1.x.y for it), not the cache's address, and on no other port.
        expect(metricsAddr!.startsWith("127.1.")).toBe(true);
        const url = (p: string) => `http://${metricsAddr}${p}`;
        // The cache holds something to evict, even when this test runs alone.
        await freshImage("evict");
        const pulled = await pullWith(`${cacheHost}/${REPO}:evict`, path.join(cluster.work, "pull-evict"), {
            authfile: nodeAuthfile,
            certDir: cluster.client.certDir,
        });
        expect(pulled.code, pulled.stderr).toBe(0);

        // The evict container as the Deployment runs it, with busybox, on the cache pod's volume.
        const deployment = cluster.cloud.one("kubernetes:apps/v1:Deployment", "cache-docker-io");
        const evict = materialize(cluster.cloud, deployment, path.join(cluster.work, "cache-pod"), {}, "evict");
        const storage = evict.mounts[MOUNTS.storage];
        const [sh, c, script, name] = evict.container.command as string[];
        expect([sh, c, name]).toEqual(["sh", "-c", "cache-evict"]);
        const bin = path.join(cluster.work, "evict-bin");
        fs.mkdirSync(bin, { recursive: true });
        for (const applet of ["sh", "du", "awk", "find", "stat", "sort", "touch", "rm", "rmdir", "mv", "sleep"])
            if (!fs.existsSync(path.join(bin, applet))) fs.symlinkSync("/bin/busybox", path.join(bin, applet));
        /** The loop with its thresholds in KiB (one pass: the next is an hour later). */
        const runLoop = (log: string, high: number, low: number, hard: number) =>
            startProcess("/usr/bin/env", [`PATH=${bin}`, "sh", "-c", script, name, storage, String(high), String(low), String(hard), "3600"], {
                logFile: path.join(cluster.work, log),
            });
        const lint = (text: string) => {
            const build = promtoolBuild();
            if ("missing" in build) return console.warn(`not linted: ${build.missing}`);
            const check = promtool(["check", "metrics"], cluster.work, text);
            expect(check, check.output).toMatchObject({ status: 0, output: "" });
        };

        // Before any loop ran on this volume there is no file: nothing to serve.
        fs.rmSync(path.join(storage, EVICTION_COUNTERS_FILE), { force: true });
        expect((await plain(url("/metrics"))).status).toBe(404);

        // Under its limit: the counters at 0, from the start.
        const idle = runLoop("evict-idle.log", 1 << 30, 1 << 29, 1 << 30);
        try {
            await waitFor(() => fs.existsSync(path.join(storage, EVICTION_COUNTERS_FILE)), 10_000, "the counters file", { proc: idle });
        } finally {
            await idle.stop();
        }
        const zero = await plain(url("/metrics"));
        expect(zero.status).toBe(200);
        expect(zero.type).toBe("text/plain; version=0.0.4");
        for (const n of ["cluster_registry_cache_evictions_total", "cluster_registry_cache_evicted_blobs_total", "cluster_registry_cache_evicted_bytes_total"])
            expect(counter(zero.body, n), n).toBe(0);
        lint(zero.body);

        // Past its hard mark (1 KiB): every committed blob goes, read or not.
        const full = runLoop("evict-full.log", 1, 0, 1);
        let summary: RegExpExecArray | null = null;
        try {
            await waitFor(() => (summary = /deleted the (\d+) oldest blobs, (\d+) KiB, .*\(eviction (\d+)\)/.exec(full.log())), 30_000, "an eviction", {
                proc: full,
            });
        } finally {
            await full.stop();
        }
        const [, blobs, kib, evictions] = (summary as unknown as RegExpExecArray).map(Number);
        const deleted = full.log().match(/^cache-evict: deleted blob sha256:[0-9a-f]{64} \((\d+) KiB/gm) ?? [];
        expect(blobs).toBeGreaterThanOrEqual(1 + LAYERS);
        expect(deleted).toHaveLength(blobs);
        const served = await plain(url("/metrics"));
        expect(served.status).toBe(200);
        expect(served.type).toBe("text/plain; version=0.0.4");
        expect(served.body).toBe(fs.readFileSync(path.join(storage, EVICTION_COUNTERS_FILE), "utf8"));
        expect(counter(served.body, "cluster_registry_cache_evictions_total")).toBe(evictions);
        expect(evictions).toBe(1);
        expect(counter(served.body, "cluster_registry_cache_evicted_blobs_total")).toBe(blobs);
        expect(counter(served.body, "cluster_registry_cache_evicted_bytes_total")).toBe(kib * 1024);
        lint(served.body);
        console.info(`evicted ${blobs} blobs, ${kib} KiB; served:\n${served.body}`);
        expect((await plain(url("/metrics"), "HEAD")).status).toBe(200);

        // Nothing else: not the volume, not a listing, not the registry, not nginx's own root, and no writes.
        const html = path.join(cluster.work, "cache-pod", "nginx", "html");
        fs.mkdirSync(html, { recursive: true });
        fs.writeFileSync(path.join(html, "index.html"), "nginx's default page\n");
        for (const p of [
            "/",
            `/${EVICTION_COUNTERS_FILE}`,
            "/metrics/",
            "/metrics.prom",
            "/docker/registry/v2/",
            "/v2/",
            "/coalescer/",
            "/../cache-evictions.prom",
        ])
            expect((await plain(url(p))).status, p).toBe(404);
        for (const method of ["PUT", "POST", "DELETE"]) expect((await plain(url("/metrics"), method)).status, method).toBe(403);
        expect(fs.readFileSync(path.join(storage, EVICTION_COUNTERS_FILE), "utf8")).toBe(served.body);
        // The cache fetches again what was deleted.
        const again = await pullWith(`${cacheHost}/${REPO}:evict`, path.join(cluster.work, "pull-evict-again"), {
            authfile: nodeAuthfile,
            certDir: cluster.client.certDir,
        });
        expect(again.code, again.stderr).toBe(0);
    });

    test("a cache's eviction counters with metricsNamespaces: its nginx serves the same file on the pod's address, as the registry's debug listener moves there, and still nothing else", async () => {
        await cluster.redeploy({ "cluster-registry:metricsNamespaces": '["monitoring"]' });
        try {
            await cluster.startCache();
            const metricsAddr = cluster.coalescer?.metricsAddr;
            expect(metricsAddr?.split(":")[0]).toBe(CACHE_IP);
            const config = YAML.parse(cluster.cloud.one("kubernetes:core/v1:ConfigMap", "cache-docker-io-config").inputs.data["config.yml"] as string);
            expect(config.http.debug.addr).toBe(":5001");
            const file = path.join(cluster.work, "cache-pod", "evict-counters.prom");
            // The volume as the evict container mounts it; the counters as a loop left them.
            const deployment = cluster.cloud.one("kubernetes:apps/v1:Deployment", "cache-docker-io");
            const storage = materialize(cluster.cloud, deployment, path.join(cluster.work, "cache-pod"), {}, "evict").mounts[MOUNTS.storage];
            const counters =
                "# HELP cluster_registry_cache_evictions_total x\n# TYPE cluster_registry_cache_evictions_total counter\ncluster_registry_cache_evictions_total 7\n";
            fs.writeFileSync(file, counters);
            fs.renameSync(file, path.join(storage, EVICTION_COUNTERS_FILE));
            const served = await plain(`http://${metricsAddr}/metrics`);
            expect(served).toEqual({ status: 200, type: "text/plain; version=0.0.4", body: counters });
            for (const p of ["/", `/${EVICTION_COUNTERS_FILE}`, "/debug/pprof/"]) expect((await plain(`http://${metricsAddr}${p}`)).status, p).toBe(404);
        } finally {
            await cluster.redeploy({ "cluster-registry:metricsNamespaces": "[]" });
        }
    });

    test('with cacheCoalescerImage "" the cache pod has no nginx, and the same herd costs the upstream more than one GET for some blob', async () => {
        await cluster.redeploy({ "cluster-registry:cacheCoalescerImage": "" });
        await cluster.startCache();
        expect(cluster.coalescer).toBeUndefined();
        // Without the coalescer a duplicate needs two requests to overlap, which a loaded machine may
        // not line up in one herd: up to three cold herds, each must be intact, one must duplicate.
        let most = 0;
        for (let run = 0; run < 3 && most <= 1; run++) {
            const { herd, perBlob } = await coldHerd(8, `off-${run}`);
            expect(herd.problems).toEqual([]);
            most = Math.max(most, ...perBlob);
        }
        expect(most).toBeGreaterThan(1);
    });
});

describe("this file's helpers", () => {
    test("upstreamGets counts completed GETs of one repository, per blob and of manifests", () => {
        const d = `sha256:${"a".repeat(64)}`;
        const line = (method: string, uri: string) => `msg="response completed" http.request.method=${method} http.request.uri="${uri}"`;
        const log = [
            line("GET", `/v2/${REPO}/blobs/${d}`),
            line("GET", `/v2/${REPO}/blobs/${d}`),
            line("HEAD", `/v2/${REPO}/manifests/v1`),
            line("GET", `/v2/${REPO}/manifests/${d}`),
            `msg="response completed" http.request.method=GET http.request.uri=/v2/${REPO}/manifests/v1 http.request.useragent=x`,
            line("GET", `/v2/library/other/blobs/${d}`),
            `msg="authorized request" http.request.method=GET http.request.uri="/v2/${REPO}/blobs/${d}"`,
        ].join("\n");
        const gets = upstreamGets(log, REPO);
        expect([...gets.blobs]).toEqual([[d, 2]]);
        expect(gets.manifests).toBe(2);
    });
});
