/**
 * Garbage collection on the hosted registry, run for real: the push container's own supervisor script
 * (busybox sh) stops the generated read-write registry, answers the push port with the generated
 * read-only one, runs distribution's `registry garbage-collect` on the volume the pull container
 * serves from, and brings the writer back; skopeo and Node's HTTPS client push and pull meanwhile.
 */
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as https from "node:https";
import * as path from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { GC_REFUSAL_WARNING, WRITER_LOCK_FILE } from "../../components/registry";
import { renderDockerConfigJson } from "../../components/render/docker-config";
import { buildOciImage, BuiltOciImage } from "./harness/oci";
import { pullsDuring, pullVerified } from "./harness/pull-loop";
import { startPushSupervisor } from "./harness/push-supervisor";
import { freePort, runCommand, startProcess, waitFor } from "./harness/procs";
import { basicAuth, type RegistryHandle } from "./harness/registry";
import { skopeoCopy, skopeoPull } from "./harness/skopeo";
import { describeIntegration } from "./describe-integration";
import { expectPushesRacingCollections } from "./gc-race";
import { HOSTED_IP, LoopbackCluster } from "./support";

/** What the push container's clock says: the schedule test sets gcSchedule to it. */
const CLOCK = "03:00";

interface Reply {
    status: number;
    headers: Record<string, string | string[] | undefined>;
    body: Buffer;
}

describeIntegration("garbage collection in the hosted registry's push container, with the real registry, skopeo and busybox", () => {
    let cluster: LoopbackCluster;
    let versions: BuiltOciImage[];
    /** Two versions of another tag, for the collection without --delete-untagged. */
    let kept: BuiltOciImage[];
    let ca: Buffer;
    const storage = () => path.join(cluster.work, "pod", "var", "lib", "registry");
    const blobFile = (digest: string) => path.join(storage(), "docker", "registry", "v2", "blobs", "sha256", digest.slice(7, 9), digest.slice(7), "data");
    const pullBase = () => `https://${HOSTED_IP}:${cluster.port}`;
    const pushBase = () => `https://${HOSTED_IP}:${cluster.pushPort}`;
    const pullAuth = () => basicAuth(cluster.dep.pullAuth.username, cluster.dep.pullAuth.password);
    let pushUser: { username: string; password: string };
    let pullAuthfile: string;
    let pushAuthfile: string;

    beforeAll(async () => {
        cluster = await LoopbackCluster.start({
            prefix: "crgc-",
            nodeMode: "apply",
            containerd: false,
            pushClock: CLOCK,
            config: { "cluster-registry:gcSchedule": "manual" },
        });
        ca = fs.readFileSync(cluster.client.caFile);
        const auths = JSON.parse(cluster.dep.outputs.pushDockerConfigJson as string).auths as Record<string, { username: string; password: string }>;
        pushUser = Object.values(auths)[0];
        // As pods pull (the pull port at the ClusterIP) and a build pod pushes (the push port, through the Service).
        pullAuthfile = path.join(cluster.work, "pull-at-clusterip.json");
        const { username, password } = cluster.dep.pullAuth;
        fs.writeFileSync(pullAuthfile, renderDockerConfigJson([`${HOSTED_IP}:${cluster.port}`], username, password), { mode: 0o600 });
        pushAuthfile = path.join(cluster.work, "push-at-clusterip.json");
        fs.writeFileSync(pushAuthfile, renderDockerConfigJson([`${HOSTED_IP}:${cluster.pushPort}`], pushUser.username, pushUser.password), { mode: 0o600 });
        // Three versions of one tag, each with layers of its own (a file and 1 MiB of random bytes).
        const build = (v: string) =>
            buildOciImage(path.join(cluster.work, `oci-${v}`), { tag: v, layers: [{ files: { "version.txt": `${v}\n` } }, { randomBytes: 1 << 20 }] });
        versions = [];
        for (const v of ["v1", "v2", "v3"]) versions.push(await build(v));
        kept = [await build("k1"), await build("k2")];
    }, 180_000);

    afterAll(async () => {
        await cluster?.stop();
    });

    function request(url: string, opts: { method?: string; auth: string; accept?: string }): Promise<Reply> {
        return new Promise((resolve, reject) => {
            const headers: Record<string, string> = { Authorization: opts.auth, ...(opts.accept ? { Accept: opts.accept } : {}) };
            const req = https.request(url, { method: opts.method ?? "GET", headers, agent: false, ca, timeout: 10_000 }, (res) => {
                const chunks: Buffer[] = [];
                res.on("data", (c: Buffer) => chunks.push(c));
                res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
                res.on("error", reject);
            });
            req.on("timeout", () => req.destroy(new Error(`timeout: ${url}`)));
            req.on("error", reject);
            req.end();
        });
    }

    /** Pushes through the push port, as a build pod in the cluster does. */
    const push = (image: BuiltOciImage, repoTag: string) =>
        skopeoCopy({ src: image.ref, dest: `docker://${HOSTED_IP}:${cluster.pushPort}/${repoTag}`, authfile: pushAuthfile, certDir: cluster.client.certDir });

    /** Pulls every blob through the pull port with skopeo (which checks every digest); resolves with the manifest digest pulled. */
    function pull(ref: string): Promise<{ code: number | null; stderr: string; digest?: string }> {
        return skopeoPull({
            authfile: pullAuthfile,
            certDir: cluster.client.certDir,
            image: `docker://${HOSTED_IP}:${cluster.port}/${ref}`,
            work: cluster.work,
        });
    }

    /** Blobs an aborted push leaves behind: in the volume, referenced by no manifest. */
    function writeOrphanBlobs(n: number): string[] {
        return Array.from({ length: n }, (_, i) => {
            const data = Buffer.from(`orphan ${i} ${randomBytes(8).toString("hex")}\n`);
            const digest = `sha256:${createHash("sha256").update(data).digest("hex")}`;
            fs.mkdirSync(path.dirname(blobFile(digest)), { recursive: true });
            fs.writeFileSync(blobFile(digest), data);
            return digest;
        });
    }

    const collections = () => cluster.hostedPush.proc.log().split("garbage collection: done").length - 1;

    /** Asks the push container to collect now, as `kubectl exec ... -c push -- kill -USR1 1` does; resolves when it is done. */
    async function collect(): Promise<void> {
        const before = collections();
        process.kill(cluster.hostedPush.proc.pid, "SIGUSR1");
        await waitFor(() => collections() > before, 60_000, "garbage collection done", { proc: cluster.hostedPush.proc });
    }

    test("with gcDeleteUntagged off, a collection deletes orphaned blobs but keeps a re-pushed tag's old manifest: pulled by digest, it still resolves", async () => {
        for (const v of kept) expect((await push(v, "gc/keep:current")).code).toBe(0);
        const orphans = writeOrphanBlobs(5);
        await collect();
        for (const o of orphans) expect(fs.existsSync(blobFile(o)), o).toBe(false);
        const old = await pull(`gc/keep@${kept[0].manifestDigest}`);
        expect(old.code, old.stderr).toBe(0);
        expect(old.digest).toBe(kept[0].manifestDigest);
        expect(cluster.hostedPush.proc.log()).not.toContain("--delete-untagged");
    });

    test("three versions of a tag, collected with gcDeleteUntagged: the old versions' layer bytes leave the volume; the tag pulls by tag and by digest", async () => {
        await cluster.redeploy({ "cluster-registry:gcDeleteUntagged": "true" });
        await cluster.startHosted();
        for (const v of versions) expect((await push(v, "gc/app:current")).code).toBe(0);
        // Pulled once by digest before the collection: a blob-descriptor cache, if there were one, now holds its layers.
        expect((await pull(`gc/app@${versions[0].manifestDigest}`)).code).toBe(0);
        const oldLayers = versions.slice(0, 2).flatMap((v) => v.layers.map((l) => l.digest));
        for (const d of oldLayers) expect(fs.existsSync(blobFile(d)), d).toBe(true);

        await collect();
        for (const d of oldLayers) expect(fs.existsSync(blobFile(d)), d).toBe(false);
        for (const l of versions[2].layers) expect(fs.existsSync(blobFile(l.digest)), l.digest).toBe(true);
        const byTag = await pull("gc/app:current");
        expect(byTag.code, byTag.stderr).toBe(0);
        expect(byTag.digest).toBe(versions[2].manifestDigest);
        const byDigest = await pull(`gc/app@${versions[2].manifestDigest}`);
        expect(byDigest.code, byDigest.stderr).toBe(0);
        // The pull port answers from the volume, not from what it cached before the sweep.
        const swept = await request(`${pullBase()}/v2/gc/app/blobs/${versions[0].layers[1].digest}`, { method: "HEAD", auth: pullAuth() });
        expect(swept.status).toBe(404);
    });

    test("pulls in a loop through the pull port during a collection: none fails", async () => {
        // Many orphans make the sweep, and so the window, long enough to pull through.
        writeOrphanBlobs(3000);
        const pulls = await pullsDuring(() => pullOverHttps("gc/app", "current"), collect);
        expect(pulls.failed).toEqual([]);
        expect(pulls.within).toBeGreaterThan(3);
    });

    /** One pull as a node makes it, on the pull port. */
    function pullOverHttps(repo: string, tag: string): Promise<void> {
        return pullVerified((p, accept) => request(`${pullBase()}${p}`, { auth: pullAuth(), ...(accept ? { accept } : {}) }), repo, tag);
    }

    test("a push during the window is refused with 405 and a Warning saying why; afterwards the push port takes pushes again", async () => {
        writeOrphanBlobs(3000);
        const before = collections();
        const auth = basicAuth(pushUser.username, pushUser.password);
        const start = () => request(`${pushBase()}/v2/gc/refused/blobs/uploads/`, { method: "POST", auth }).catch(() => undefined);
        process.kill(cluster.hostedPush.proc.pid, "SIGUSR1");
        const refused = await waitFor(
            async () => {
                const r = await start();
                return r?.status === 405 ? r : undefined;
            },
            60_000,
            "a 405 from the push port",
        );
        expect(refused.headers.warning).toBe(GC_REFUSAL_WARNING);
        await waitFor(() => collections() > before, 60_000, "garbage collection done");
        expect((await start())?.status).toBe(202);
    });

    test("a blob upload in flight when a collection starts finishes (201, not a cut connection) before the writer stops", async () => {
        const auth = basicAuth(pushUser.username, pushUser.password);
        const started = await request(`${pushBase()}/v2/gc/slow/blobs/uploads/`, { method: "POST", auth });
        expect(started.status).toBe(202);
        const data = randomBytes(2 << 20);
        const digest = `sha256:${createHash("sha256").update(data).digest("hex")}`;
        const location = new URL(String(started.headers.location), pushBase());
        location.searchParams.set("digest", digest);
        const before = collections();
        // 2 MiB over about 3 s; the collection is asked for once the request is well under way (a
        // connection the writer has not accepted yet when its listener closes is reset, as on any stop).
        const put = slowPut(location.toString(), data, auth, 3000, () => process.kill(cluster.hostedPush.proc.pid, "SIGUSR1"));
        expect((await put).status).toBe(201);
        await waitFor(() => collections() > before, 60_000, "garbage collection done");
        expect(cluster.hostedPush.proc.log()).toMatch(/garbage collection: stopping the writer/);
    });

    /** A PUT whose body is sent in 16 chunks over `overMs`; `midway` runs once a quarter of it is out. */
    function slowPut(url: string, data: Buffer, auth: string, overMs: number, midway: () => void): Promise<Reply> {
        return new Promise((resolve, reject) => {
            const headers = { Authorization: auth, "Content-Type": "application/octet-stream", "Content-Length": String(data.length) };
            const req = https.request(url, { method: "PUT", headers, agent: false, ca }, (res) => {
                const chunks: Buffer[] = [];
                res.on("data", (c: Buffer) => chunks.push(c));
                res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
            });
            req.on("error", reject);
            const size = Math.ceil(data.length / 16);
            let i = 0;
            const next = () => {
                req.write(data.subarray(i * size, (i + 1) * size));
                if (i++ === 4) midway();
                if (i * size < data.length) setTimeout(next, overMs / 16);
                else req.end();
            };
            next();
        });
    }

    test("a push racing a collection either completes with every blob intact or is refused and leaves no tag", async () => {
        const outcomes = await expectPushesRacingCollections({
            work: cluster.work,
            push,
            pull,
            collect: () => process.kill(cluster.hostedPush.proc.pid, "SIGUSR1"),
            collections,
            timeoutMs: 60_000,
        });
        console.info(`pushes racing a collection: ${outcomes.join(", ")}`);
    });

    /**
     * A rollout's surge pod on the same node: its push container over the same volume (a directory
     * linked to this pod's), on 127.0.0.1 (in the certificate) and a port of its own.
     */
    async function startSurgePush(name: string, o: { without?: string[]; lockWaitSeconds?: number } = {}): Promise<RegistryHandle> {
        const root = path.join(cluster.work, name);
        fs.mkdirSync(path.join(root, "var", "lib"), { recursive: true });
        if (!fs.existsSync(path.join(root, "var", "lib", "registry"))) fs.symlinkSync(storage(), path.join(root, "var", "lib", "registry"));
        const deployment = cluster.cloud.one("kubernetes:apps/v1:Deployment", "hosted");
        return startPushSupervisor({ cloud: cluster.cloud, deployment, root, listen: `127.0.0.1:${await freePort()}`, caFile: cluster.client.caFile, ...o });
    }

    const pushStatus = (base: string) =>
        request(`${base}/v2/gc/surge/blobs/uploads/`, { method: "POST", auth: basicAuth(pushUser.username, pushUser.password) }).then(
            (r) => r,
            () => undefined,
        );

    test("two writers on the volume (a rollout's surge pod): a collection asked for meanwhile is postponed without stopping this writer, never run beside the other writer, and runs once it is gone", async () => {
        const surge = await startSurgePush("surge-pod");
        try {
            await waitFor(() => surge.proc.log().includes("serving pushes"), 20_000, "the surge pod's writer", { proc: surge.proc });
            // The surge writer takes pushes while the collection is asked for: what it keeps must survive.
            const image = await buildOciImage(path.join(cluster.work, "oci-surge"), { tag: "surge", layers: [{ randomBytes: 1 << 20 }] });
            const authfile = path.join(cluster.work, "push-surge.json");
            const host = new URL(surge.url).host;
            fs.writeFileSync(authfile, renderDockerConfigJson([host], pushUser.username, pushUser.password), { mode: 0o600 });
            const seen = cluster.hostedPush.proc.log().length;
            process.kill(cluster.hostedPush.proc.pid, "SIGUSR1");
            await waitFor(
                () => cluster.hostedPush.proc.log().slice(seen).includes("garbage collection postponed: another writer runs"),
                20_000,
                "the postponement",
            );
            const pushed = await skopeoCopy({ src: image.ref, dest: `docker://${host}/gc/surge:1`, authfile, certDir: cluster.client.certDir });
            expect(pushed.code, pushed.stderr).toBe(0);
            // Tried again every four looks while the surge writer lives: never collected beside it.
            await new Promise((r) => setTimeout(r, 6000));
            const meanwhile = cluster.hostedPush.proc.log().slice(seen);
            expect(meanwhile).not.toContain("running registry garbage-collect");
            // Found before this writer was touched, at every try: its pushes never cut.
            expect(meanwhile.split("this writer was not stopped").length - 1).toBeGreaterThanOrEqual(2);
            expect(meanwhile).not.toContain("stopping the writer");
            expect((await pushStatus(pushBase()))?.status).toBe(202);
            await surge.stop();
            await waitFor(() => cluster.hostedPush.proc.log().slice(seen).includes("garbage collection: done"), 30_000, "the postponed collection");
            const pulled = await pull("gc/surge:1");
            expect(pulled.code, pulled.stderr).toBe(0);
            expect(pulled.digest).toBe(image.manifestDigest);
        } finally {
            await surge.stop();
        }
    });

    test("a writer starting while another pod collects waits, its push port answering 405 with the Warning, and takes pushes once the collection is over", async () => {
        writeOrphanBlobs(20000);
        const seen = cluster.hostedPush.proc.log().length;
        process.kill(cluster.hostedPush.proc.pid, "SIGUSR1");
        await waitFor(() => cluster.hostedPush.proc.log().slice(seen).includes("running registry garbage-collect"), 20_000, "the collection");
        const surge = await startSurgePush("surge-pod-2");
        try {
            const during = await pushStatus(surge.url);
            const collecting = !cluster.hostedPush.proc.log().slice(seen).includes("garbage collection: done");
            expect(collecting, "the collection outlasted the surge pod's start (more orphans needed)").toBe(true);
            expect(surge.proc.log()).toContain("waiting: another pod collects garbage");
            expect(during?.status).toBe(405);
            expect(during?.headers.warning).toBe(GC_REFUSAL_WARNING);
            await waitFor(() => surge.proc.log().includes("serving pushes"), 60_000, "the surge writer after the collection", { proc: surge.proc });
            expect(cluster.hostedPush.proc.log().slice(seen)).toContain("garbage collection: done");
            expect((await pushStatus(surge.url))?.status).toBe(202);
        } finally {
            await surge.stop();
        }
    });

    test("a push image without flock exits at start (status 1) saying so, instead of waiting for a lock it cannot take", async () => {
        await expect(startSurgePush("no-flock-pod", { without: ["flock"] })).rejects.toThrow(/exited \(code 1\)[\s\S]*push-supervisor: no flock in this image/);
    });

    test("a writer that never gets the writer lock says it waits, and exits 1 after the bound for kubelet to restart it", async () => {
        await cluster.hostedPush.stop();
        // Held exclusively by one process (no child keeps it once it is stopped), as a collection holds it.
        const held = `exec 9>>"$1" && flock -x 9 && printf 'he%sd\n' ld && exec sleep 120`;
        const holder = startProcess("sh", ["-c", held, "sh", path.join(storage(), WRITER_LOCK_FILE)], { logFile: path.join(cluster.work, "lock-holder.log") });
        try {
            await waitFor(() => holder.log().includes("held"), 10_000, "the lock held", { proc: holder });
            const stuck = await startSurgePush("stuck-pod", { lockWaitSeconds: 5 });
            try {
                expect(await stuck.proc.exited).toBe(1);
                expect(stuck.proc.log()).toContain("waiting: another pod collects garbage");
                expect(stuck.proc.log()).toMatch(/gave up after \d+ s waiting for the writer lock \S+push-writers\.lock/);
            } finally {
                await stuck.stop();
            }
        } finally {
            await holder.stop();
            await cluster.startHosted();
        }
    });

    test("with pushDeletes, a user deletes a tag on the push port; the pull port still refuses deletes; the next collection frees its layers", async () => {
        await cluster.redeploy({ "cluster-registry:pushDeletes": "true" });
        await cluster.startHosted();
        const skopeoDelete = (port: number, authfile: string) =>
            runCommand("skopeo", [
                "--insecure-policy",
                "delete",
                "--authfile",
                authfile,
                "--cert-dir",
                cluster.client.certDir,
                `docker://${HOSTED_IP}:${port}/gc/keep:current`,
            ]);
        const refused = await skopeoDelete(cluster.port, pullAuthfile);
        expect(refused.code).not.toBe(0);
        expect((await pull("gc/keep:current")).code).toBe(0);
        const deleted = await skopeoDelete(cluster.pushPort, pushAuthfile);
        expect(deleted.code, deleted.stderr).toBe(0);
        expect((await pull("gc/keep:current")).stderr).toMatch(/manifest unknown|not found/i);
        const layers = kept[1].layers.map((l) => l.digest);
        for (const d of layers) expect(fs.existsSync(blobFile(d)), d).toBe(true);
        await collect();
        for (const d of layers) expect(fs.existsSync(blobFile(d)), d).toBe(false);
    });

    test("the push container logs a warning once the volume passes registryFillWarnPercent, while the pull port keeps serving", async () => {
        await cluster.hostedPush.stop();
        // Only what the new container logs (the log file is the pod's, kept across restarts).
        const seen = cluster.hostedPush.proc.log().length;
        // The push container alone sees a 4 MiB tmpfs as its volume, 3.5 MiB of it used, in a mount namespace of its own.
        const fill = '/bin/mount -t tmpfs -o size=4m tmpfs "$1" && /bin/dd if=/dev/zero of="$1/fill" bs=1k count=3584 2>/dev/null && shift && exec "$@"';
        const wrap = (argv: string[]) => ["/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", fill, "sh", storage(), ...argv];
        const deployment = cluster.cloud.one("kubernetes:apps/v1:Deployment", "hosted");
        const listen = `${HOSTED_IP}:${cluster.pushPort}`;
        cluster.hostedPush = await startPushSupervisor({
            cloud: cluster.cloud,
            deployment,
            root: path.join(cluster.work, "pod"),
            listen,
            caFile: cluster.client.caFile,
            wrap,
        });
        const warning = await waitFor(
            () => /push-supervisor: warning: \S+ is (\d+)% full \(warning at 80%\)/.exec(cluster.hostedPush.proc.log().slice(seen)),
            20_000,
            "the fill warning",
        );
        expect(Number(warning[1])).toBeGreaterThanOrEqual(80);
        expect((await pull("gc/app:current")).code).toBe(0);
        await cluster.startHosted();
    });

    test("at the scheduled minute the push container collects once, with no signal", async () => {
        await cluster.redeploy({ "cluster-registry:gcSchedule": CLOCK });
        await cluster.startHosted();
        const before = collections();
        await waitFor(() => collections() > before, 30_000, "a scheduled collection");
        // Ticks of 1 s: the same minute comes round again and again, and collects no more that day.
        await new Promise((r) => setTimeout(r, 4000));
        expect(collections()).toBe(before + 1);
    });
});
