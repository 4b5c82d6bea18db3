/**
 * Garbage collection of the hosted registry on object storage, run for real: read-only replicas and
 * the read-write pod each from its own Deployment's pod spec (the push pod through its supervisor
 * script, busybox sh), over one bucket of versitygw; distribution's own `registry garbage-collect`
 * sweeps the bucket while the read replicas serve pulls.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { renderDockerConfigJson } from "../../components/render/docker-config";
import { request, uploadBlob } from "./harness/blobs";
import { buildOciImage, BuiltOciImage } from "./harness/oci";
import { pullsDuring, pullVerified } from "./harness/pull-loop";
import { waitFor } from "./harness/procs";
import { expectPushesRacingCollections } from "./gc-race";
import { skopeoPull } from "./harness/skopeo";
import { basicAuth, RegistryHandle } from "./harness/registry";
import { describeWithObjectStore } from "./describe-integration";
import { PULL_IPS, PUSH_IPS, ReplicatedHosted } from "./replicated";
import { HOSTED_IP, LoopbackCluster, startRegistryFromDeployment } from "./support";

/** A replaced pod's grace period, shortened (the program renders 80 s). */
const HOLDOFF_SECONDS = 6;

describeWithObjectStore("garbage collection on object storage, with the real registry, versitygw and busybox", () => {
    let hosted: ReplicatedHosted;
    let cluster: LoopbackCluster;
    let writer: RegistryHandle;
    let versions: BuiltOciImage[];
    let kept: BuiltOciImage[];
    let pullAuthfile: string;
    const pullAuth = () => basicAuth(cluster.dep.pullAuth.username, cluster.dep.pullAuth.password);
    const pushAuth = () => basicAuth("admin", (cluster.dep.outputs.passwords as Record<string, string>).admin);
    /** The blob's object (a file of versitygw's posix backend) under the registry's root directory in the bucket. */
    const blobObject = (digest: string) =>
        path.join(hosted.store.bucketDir, "cluster-a/docker/registry/v2/blobs/sha256", digest.slice(7, 9), digest.slice(7), "data");

    beforeAll(async () => {
        hosted = await ReplicatedHosted.start({ prefix: "objgc-", pullReplicas: 2, pushReplicas: 0, config: { "cluster-registry:gcSchedule": "manual" } });
        cluster = hosted.cluster;
        writer = await startWriter(PUSH_IPS[0], "1");
        pullAuthfile = path.join(cluster.work, "pull-at-clusterip.json");
        fs.writeFileSync(pullAuthfile, renderDockerConfigJson([`${HOSTED_IP}:${cluster.port}`], cluster.dep.pullAuth.username, cluster.dep.pullAuth.password), {
            mode: 0o600,
        });
        const build = (v: string) =>
            buildOciImage(path.join(cluster.work, `oci-${v}`), { tag: v, layers: [{ files: { "version.txt": `${v}\n` } }, { randomBytes: 1 << 20 }] });
        versions = [];
        for (const v of ["v1", "v2", "v3"]) versions.push(await build(v));
        kept = [await build("k1"), await build("k2")];
    }, 120_000);

    afterAll(() => hosted?.stop());

    /** The read-write Deployment's pod on `ip`, its hold-off shortened, as the Service's only push endpoint. */
    async function startWriter(ip: string, holdoffSeconds: string): Promise<RegistryHandle> {
        const w = await hosted.startPush(ip, { gc_holdoff_seconds: holdoffSeconds });
        for (const old of hosted.pushes.splice(0)) hosted.pushForward.remove({ host: new URL(old.url).hostname, port: Number(new URL(old.url).port) });
        hosted.pushes.push(w);
        hosted.pushForward.add({ host: ip, port: cluster.pushPort });
        return w;
    }

    const collections = () => writer.proc.log().split("garbage collection: done").length - 1;

    /** `kubectl exec deploy/<push deployment> -- kill -USR1 1`; resolves when it is done. */
    async function collect(): Promise<void> {
        const before = collections();
        process.kill(writer.proc.pid, "SIGUSR1");
        await waitFor(() => collections() > before, 90_000, "garbage collection done", { proc: writer.proc });
    }

    /** Pulls every blob through the pull Service with skopeo (which checks every digest); resolves with the manifest digest pulled. */
    function pull(ref: string): Promise<{ code: number | null; stderr: string; digest?: string }> {
        return skopeoPull({
            authfile: pullAuthfile,
            certDir: cluster.client.certDir,
            image: `docker://${HOSTED_IP}:${cluster.port}/${ref}`,
            work: cluster.work,
        });
    }

    const blobStatus = async (base: string, repo: string, digest: string, method = "HEAD") =>
        (await request(`${base}/v2/${repo}/blobs/${digest}`, { caFile: cluster.client.caFile, method, headers: { Authorization: pullAuth() } })).status;

    test("with gcDeleteUntagged off: an aborted push's blobs leave the bucket; a re-pushed tag's old manifest, pulled by digest, still resolves", async () => {
        for (const v of kept) expect((await cluster.push(v, "gc/keep:current")).code).toBe(0);
        // Blobs uploaded without a manifest, as an aborted push leaves them.
        const orphans: string[] = [];
        for (let i = 0; i < 3; i++)
            orphans.push(await uploadBlob(writer.url, "gc/aborted", randomBytes(4096), { caFile: cluster.client.caFile, auth: pushAuth() }));
        for (const o of orphans) expect(fs.existsSync(blobObject(o)), o).toBe(true);
        await collect();
        for (const o of orphans) expect(fs.existsSync(blobObject(o)), o).toBe(false);
        for (const l of kept[0].layers) expect(fs.existsSync(blobObject(l.digest)), l.digest).toBe(true);
        const old = await pull(`gc/keep@${kept[0].manifestDigest}`);
        expect(old.code, old.stderr).toBe(0);
        expect(old.digest).toBe(kept[0].manifestDigest);
        expect(writer.proc.log()).not.toContain("--delete-untagged");
    });

    test("three versions of a tag, collected with gcDeleteUntagged while pulls loop through the read replicas: 0 failed; the old layers' objects are gone; the tag pulls by tag and digest; no replica answers for a swept blob", async () => {
        // Only the push pod's supervisor settings change; the read replicas run on.
        await cluster.redeploy({ "cluster-registry:gcDeleteUntagged": "true" });
        await writer.stop();
        writer = await startWriter(PUSH_IPS[1], "1");
        for (const v of versions) expect((await cluster.push(v, "gc/app:current")).code).toBe(0);
        const oldLayers = versions.slice(0, 2).flatMap((v) => v.layers.map((l) => l.digest));
        const swept = versions[0].layers[1].digest;
        // Every read replica has served the old version's layers: a descriptor cache, if one were on, now holds them.
        for (const r of hosted.pulls) for (const d of oldLayers) expect(await blobStatus(r.url, "gc/app", d, "GET"), `${r.url} ${d}`).toBe(200);
        // What the program renders without gcSchedule (cache.blobdescriptor: inmemory), for contrast.
        const cached = await startRegistryFromDeployment(
            cluster.cloud,
            cluster.cloud.one("kubernetes:apps/v1:Deployment", "hosted"),
            path.join(cluster.work, "pull-cached"),
            `${PULL_IPS[5]}:${cluster.port}`,
            cluster.client.caFile,
            { REGISTRY_STORAGE_CACHE_BLOBDESCRIPTOR: "inmemory" },
            "registry",
        );
        expect(await blobStatus(cached.url, "gc/app", swept, "GET")).toBe(200);
        for (const d of oldLayers) expect(fs.existsSync(blobObject(d)), d).toBe(true);

        const pulls = await pullsDuring(() => pullOverHttps("gc/app", "current"), collect);
        expect(pulls.failed).toEqual([]);
        expect(pulls.within).toBeGreaterThan(0);
        console.info(`pulls through the read replicas: ${pulls.total}, ${pulls.within} during the ${pulls.windowMs} ms collection`);

        for (const d of oldLayers) expect(fs.existsSync(blobObject(d)), d).toBe(false);
        for (const l of versions[2].layers) expect(fs.existsSync(blobObject(l.digest)), l.digest).toBe(true);
        const byTag = await pull("gc/app:current");
        expect(byTag.code, byTag.stderr).toBe(0);
        expect(byTag.digest).toBe(versions[2].manifestDigest);
        const byDigest = await pull(`gc/app@${versions[2].manifestDigest}`);
        expect(byDigest.code, byDigest.stderr).toBe(0);
        // The replicas read the bucket, not what they served before the sweep; one with the cache on would not.
        for (const r of hosted.pulls)
            for (const method of ["HEAD", "GET"]) expect(await blobStatus(r.url, "gc/app", swept, method), `${method} ${r.url}`).toBe(404);
        const stale = await blobStatus(cached.url, "gc/app", swept, "HEAD");
        console.info(`a replica with cache.blobdescriptor: inmemory answers HEAD of the swept blob with ${stale}`);
        expect(stale).toBe(200);
        await cached.stop();
    }, 240_000);

    /** One pull as a node makes it, through the Service (the read replicas). */
    function pullOverHttps(repo: string, tag: string): Promise<void> {
        const base = `https://${HOSTED_IP}:${cluster.port}`;
        const get = (p: string, accept?: string) =>
            request(`${base}${p}`, { caFile: cluster.client.caFile, headers: { Authorization: pullAuth(), ...(accept ? { Accept: accept } : {}) } });
        return pullVerified(get, repo, tag);
    }

    test("a push racing a collection on the bucket either completes with every blob intact or is refused and leaves no tag", async () => {
        const outcomes = await expectPushesRacingCollections({
            work: cluster.work,
            push: (image, repoTag) => cluster.push(image, repoTag),
            pull,
            collect: () => process.kill(writer.proc.pid, "SIGUSR1"),
            collections,
            timeoutMs: 90_000,
            proc: writer.proc,
        });
        console.info(`pushes racing a collection on the bucket: ${outcomes.join(", ")}`);
    }, 120_000);

    test("a replacement push pod (a deleted or evicted pod's, which Kubernetes starts at once) collects only after the replaced pod's grace period", async () => {
        await writer.stop();
        writer = await startWriter(PUSH_IPS[0], String(HOLDOFF_SECONDS));
        // The container is up by now: what follows underestimates how long it has run.
        const upAt = Date.now();
        const before = collections();
        // The pod's log file is kept across its containers: only this one's lines.
        const seen = writer.proc.log().length;
        const logged = (line: string) => writer.proc.log().slice(seen).includes(line);
        process.kill(writer.proc.pid, "SIGUSR1");
        await waitFor(() => logged("garbage collection postponed: this container started"), 10_000, "the postponement");
        const runAt = await waitFor(() => (logged("running registry garbage-collect") ? Date.now() : undefined), 60_000, "the postponed collection", {
            proc: writer.proc,
        });
        // date +%s counts whole seconds: up to one early.
        expect(runAt - upAt).toBeGreaterThanOrEqual((HOLDOFF_SECONDS - 1) * 1000);
        await waitFor(() => collections() > before, 60_000, "the collection done", { proc: writer.proc });
        expect((await pull("gc/app:current")).code).toBe(0);
    });
});
