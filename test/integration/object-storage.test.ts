/**
 * Issue 16, steps 2 and 4: the hosted registry on object storage, run as the generated Deployments
 * say: two read-only replicas and two read-write ones, each the real registry from its own pod spec,
 * over one bucket of a real S3-compatible server (versitygw, posix backend), behind round-robin
 * stand-ins for kube-proxy. containerd 1.6 pulls over CRI through the hosts.toml the node agent wrote.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { renderDockerConfigJson } from "../../components/render/docker-config";
import { request, slowDownload, uploadBlob } from "./harness/blobs";
import { buildOciImage, BuiltOciImage } from "./harness/oci";
import { waitFor } from "./harness/procs";
import { startPullLoop } from "./harness/pull-loop";
import { basicAuth, RegistryHandle } from "./harness/registry";
import { skopeoInspect } from "./harness/skopeo";
import { describeWithObjectStore } from "./describe-integration";
import { ReplicatedHosted } from "./replicated";
import { HOSTED_IP, LoopbackCluster } from "./support";

describeWithObjectStore("the hosted registry on object storage, with replicas", () => {
    let hosted: ReplicatedHosted;
    let cluster: LoopbackCluster;
    let image: BuiltOciImage;
    const pullAuth = () => basicAuth(cluster.dep.pullAuth.username, cluster.dep.pullAuth.password);
    const pushAuth = () => basicAuth("admin", (cluster.dep.outputs.passwords as Record<string, string>).admin);

    beforeAll(async () => {
        hosted = await ReplicatedHosted.start({ prefix: "obj-", pullReplicas: 2, pushReplicas: 2 });
        cluster = hosted.cluster;
        // The program's default on a bucket is two read replicas.
        expect(cluster.cloud.one("kubernetes:apps/v1:Deployment", "hosted").inputs.spec.replicas).toBe(2);
        image = await buildOciImage(path.join(cluster.work, "oci"), {
            tag: "v1",
            layers: [{ files: { "hello.txt": "hello from a bucket\n" } }, { randomBytes: 1 << 20 }, { randomBytes: 1 << 20 }],
        });
    }, 60_000);

    afterAll(() => hosted?.stop());

    test("an upload started on one read-write replica, continued on the other and finished on the first completes; both read replicas serve it", async () => {
        const [caFile, [a, b]] = [cluster.client.caFile, hosted.pushes];
        const data = crypto.randomBytes(3 << 20);
        const digest = `sha256:${crypto.createHash("sha256").update(data).digest("hex")}`;
        // The upload's URL (its signed _state included) on another replica's address.
        const on = (r: RegistryHandle, location: string) => {
            const u = new URL(location, r.url);
            return new URL(u.pathname + u.search, r.url);
        };
        const started = await request(`${a.url}/v2/demo/chunked/blobs/uploads/`, { caFile, method: "POST", headers: { Authorization: pushAuth() } });
        expect(started.status).toBe(202);
        const half = data.length >> 1;
        const patched = await request(on(b, String(started.headers.location)).toString(), {
            caFile,
            method: "PATCH",
            headers: {
                Authorization: pushAuth(),
                "Content-Type": "application/octet-stream",
                "Content-Range": `0-${half - 1}`,
                "Content-Length": String(half),
            },
            body: data.subarray(0, half),
        });
        expect(patched.status, patched.body.toString()).toBe(202);
        const finish = on(a, String(patched.headers.location));
        finish.searchParams.set("digest", digest);
        const put = await request(finish.toString(), {
            caFile,
            method: "PUT",
            headers: { Authorization: pushAuth(), "Content-Type": "application/octet-stream", "Content-Length": String(data.length - half) },
            body: data.subarray(half),
        });
        expect(put.status, put.body.toString()).toBe(201);
        for (const r of hosted.pulls) {
            const got = await request(`${r.url}/v2/demo/chunked/blobs/${digest}`, { caFile, headers: { Authorization: pullAuth() } });
            expect(got.status).toBe(200);
            expect(crypto.createHash("sha256").update(got.body).digest("hex")).toBe(digest.slice("sha256:".length));
        }
        // In the bucket, under the root directory, not on any pod's disk.
        const blob = path.join(hosted.store.bucketDir, "cluster-a/docker/registry/v2/blobs/sha256", digest.slice(7, 9), digest.slice(7), "data");
        expect(fs.existsSync(blob)).toBe(true);
    });

    test("skopeo pushes through the round-robin port-forward, its connections spread over both read-write replicas; each read replica serves the image", async () => {
        const push = await cluster.push(image, "demo/app:v1");
        expect(push.code, push.stderr).toBe(0);
        for (const r of hosted.pushes) expect(hosted.pushedTo(r), r.url).toBeGreaterThan(0);
        for (const r of hosted.pulls) {
            const host = new URL(r.url).host;
            const authfile = path.join(cluster.work, `auth-${host}.json`);
            fs.writeFileSync(authfile, renderDockerConfigJson([host], cluster.dep.pullAuth.username, cluster.dep.pullAuth.password), { mode: 0o600 });
            const inspect = await skopeoInspect({ image: `docker://${host}/demo/app:v1`, authfile, certDir: cluster.client.certDir });
            expect(inspect.code, inspect.stderr).toBe(0);
        }
    });

    test("pulls over CRI in a loop while each read replica in turn is replaced (surge, endpoint out, SIGTERM): 0 failed pulls", async () => {
        const loop = startPullLoop(cluster.containerd.socket, cluster.ref("demo/app:v1"));
        for (const i of [0, 1]) {
            const pulled = loop.ok();
            await waitFor(() => loop.ok() >= pulled + 2, 30_000, "two pulls before the rollout step");
            await hosted.rollPull(i);
        }
        const after = loop.ok();
        await waitFor(() => loop.ok() >= after + 3, 30_000, "three pulls from the new replicas");
        const result = await loop.stop();
        expect(result.failed).toEqual([]);
        expect(result.ok).toBeGreaterThanOrEqual(7);
        for (const r of hosted.pulls) expect(hosted.served(r), r.url).toBeGreaterThan(0);
    }, 120_000);

    test("SIGTERM to every read replica 4 MiB into a 48 MiB blob download through the Service: the download completes", async () => {
        const data = crypto.randomBytes(48 << 20);
        const digest = await uploadBlob(hosted.pushes[0].url, "demo/big", data, { caFile: cluster.client.caFile, auth: pushAuth() });
        let signalled = false;
        const got = await slowDownload(`https://${HOSTED_IP}:${cluster.port}/v2/demo/big/blobs/${digest}`, {
            caFile: cluster.client.caFile,
            auth: pullAuth(),
            bytesPerSecond: 16 << 20,
            onProgress: (bytes) => {
                if (signalled || bytes < 4 << 20) return;
                signalled = true;
                for (const r of hosted.pulls) process.kill(r.proc.pid, "SIGTERM");
            },
        });
        expect(signalled).toBe(true);
        expect(got.error).toBeUndefined();
        expect(got.bytes).toBe(data.length);
        expect(got.digest).toBe(digest);
    }, 60_000);
});
