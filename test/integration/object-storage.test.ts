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
import { Balancer, startBalancer } from "./harness/balancer";
import { request, slowDownload, uploadBlob } from "./harness/blobs";
import { buildOciImage, BuiltOciImage } from "./harness/oci";
import { waitFor } from "./harness/procs";
import { startPullLoop } from "./harness/pull-loop";
import { basicAuth, RegistryHandle } from "./harness/registry";
import { skopeoInspect } from "./harness/skopeo";
import { S3Store, startVersitygw } from "./harness/versitygw";
import { describeWithObjectStore } from "./describe-integration";
import { HOSTED_IP, LoopbackCluster, startRegistryFromDeployment, tempDir } from "./support";

/** Pod IPs: read-only replicas (two, then their replacements) and read-write ones; in the certificate through extraNames. */
const PULL_IPS = ["127.0.0.21", "127.0.0.22", "127.0.0.23", "127.0.0.24"];
const PUSH_IPS = ["127.0.0.31", "127.0.0.32"];
/** How long the stand-in waits between taking an endpoint out and SIGTERM: the preStop sleep, shortened. */
const PRE_STOP_MS = 500;

describeWithObjectStore("the hosted registry on object storage, with replicas", () => {
    let store: S3Store;
    let cluster: LoopbackCluster;
    let image: BuiltOciImage;
    const pulls: RegistryHandle[] = [];
    const pushes: RegistryHandle[] = [];
    let pullService: Balancer;
    let pushForward: Balancer;
    let s3Work: string;
    const backend = (r: RegistryHandle) => ({ host: new URL(r.url).hostname, port: Number(new URL(r.url).port) });
    const pullAuth = () => basicAuth(cluster.dep.pullAuth.username, cluster.dep.pullAuth.password);
    const pushAuth = () => basicAuth("admin", (cluster.dep.outputs.passwords as Record<string, string>).admin);

    /** A read-only replica: a new pod of the pull Deployment on its own IP. */
    function startPull(ip: string): Promise<RegistryHandle> {
        const d = cluster.cloud.one("kubernetes:apps/v1:Deployment", "hosted");
        return startRegistryFromDeployment(
            cluster.cloud,
            d,
            path.join(cluster.work, `pull-${ip}`),
            `${ip}:${cluster.port}`,
            cluster.client.caFile,
            {},
            "registry",
        );
    }

    function startPush(ip: string): Promise<RegistryHandle> {
        const d = cluster.cloud.one("kubernetes:apps/v1:Deployment", "hosted-push");
        return startRegistryFromDeployment(
            cluster.cloud,
            d,
            path.join(cluster.work, `push-${ip}`),
            `${ip}:${cluster.pushPort}`,
            cluster.client.caFile,
            {},
            "push",
        );
    }

    beforeAll(async () => {
        s3Work = tempDir("obj-s3-");
        store = await startVersitygw({ workDir: s3Work, ip: "127.0.0.9", bucket: "images" });
        cluster = await LoopbackCluster.start({
            prefix: "obj-",
            hosted: false,
            nodeMode: "apply",
            config: {
                "cluster-registry:objectStorageBucket": store.bucket,
                "cluster-registry:objectStorageRegion": "us-east-1",
                "cluster-registry:objectStorageEndpoint": store.endpoint,
                "cluster-registry:objectStorageRootDirectory": "/cluster-a",
                "cluster-registry:objectStorageAccessKey": store.accessKey,
                "cluster-registry:objectStorageSecretKey": store.secretKey,
                "cluster-registry:extraNames": JSON.stringify([...PULL_IPS, ...PUSH_IPS]),
            },
            secretKeys: ["cluster-registry:objectStorageSecretKey"],
        });
        expect(cluster.cloud.one("kubernetes:apps/v1:Deployment", "hosted").inputs.spec.replicas).toBe(2);
        for (const ip of PULL_IPS.slice(0, 2)) pulls.push(await startPull(ip));
        for (const ip of PUSH_IPS) pushes.push(await startPush(ip));
        // The Service's ClusterIP (registry port), and the workstation's port-forward to the push port.
        pullService = await startBalancer({ host: HOSTED_IP, port: cluster.port }, pulls.map(backend));
        pushForward = await startBalancer({ host: "127.0.0.1", port: cluster.port }, pushes.map(backend));
        image = await buildOciImage(path.join(cluster.work, "oci"), {
            tag: "v1",
            layers: [{ files: { "hello.txt": "hello from a bucket\n" } }, { randomBytes: 1 << 20 }, { randomBytes: 1 << 20 }],
        });
    }, 60_000);

    afterAll(async () => {
        await pullService?.close();
        await pushForward?.close();
        await cluster?.stop();
        await store?.stop();
        if (s3Work) fs.rmSync(s3Work, { recursive: true, force: true });
    });

    test("an upload started on one read-write replica, continued on the other and finished on the first completes; both read replicas serve it", async () => {
        const caFile = cluster.client.caFile;
        const data = crypto.randomBytes(3 << 20);
        const digest = `sha256:${crypto.createHash("sha256").update(data).digest("hex")}`;
        const on = (r: RegistryHandle, location: string) => new URL(new URL(location, r.url).pathname + new URL(location, r.url).search, r.url);
        const started = await request(`${pushes[0].url}/v2/demo/chunked/blobs/uploads/`, { caFile, method: "POST", headers: { Authorization: pushAuth() } });
        expect(started.status).toBe(202);
        const half = data.length >> 1;
        const patched = await request(on(pushes[1], String(started.headers.location)).toString(), {
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
        const finish = on(pushes[0], String(patched.headers.location));
        finish.searchParams.set("digest", digest);
        const put = await request(finish.toString(), {
            caFile,
            method: "PUT",
            headers: { Authorization: pushAuth(), "Content-Type": "application/octet-stream", "Content-Length": String(data.length - half) },
            body: data.subarray(half),
        });
        expect(put.status, put.body.toString()).toBe(201);
        for (const r of pulls) {
            const got = await request(`${r.url}/v2/demo/chunked/blobs/${digest}`, { caFile, headers: { Authorization: pullAuth() } });
            expect(got.status).toBe(200);
            expect(crypto.createHash("sha256").update(got.body).digest("hex")).toBe(digest.slice("sha256:".length));
        }
        // In the bucket, under the root directory, not on any pod's disk.
        expect(fs.existsSync(path.join(store.bucketDir, "cluster-a/docker/registry/v2/blobs/sha256", digest.slice(7, 9), digest.slice(7), "data"))).toBe(true);
    });

    test("skopeo pushes through the round-robin port-forward, its connections spread over both read-write replicas; each read replica serves the image", async () => {
        const push = await cluster.push(image, "demo/app:v1");
        expect(push.code, push.stderr).toBe(0);
        const counts = pushForward.counts();
        for (const r of pushes) expect(counts[`${backend(r).host}:${backend(r).port}`], r.url).toBeGreaterThan(0);
        for (const r of pulls) {
            const authfile = path.join(cluster.work, `auth-${backend(r).host}.json`);
            fs.writeFileSync(authfile, renderDockerConfigJson([new URL(r.url).host], cluster.dep.pullAuth.username, cluster.dep.pullAuth.password), {
                mode: 0o600,
            });
            const inspect = await skopeoInspect({ image: `docker://${new URL(r.url).host}/demo/app:v1`, authfile, certDir: cluster.client.certDir });
            expect(inspect.code, inspect.stderr).toBe(0);
        }
    });

    test("pulls over CRI in a loop while each read replica in turn is replaced (surge, endpoint out, SIGTERM): 0 failed pulls", async () => {
        const loop = startPullLoop(cluster.containerd.socket, cluster.ref("demo/app:v1"));
        for (const i of [0, 1]) {
            const pulled = loop.ok();
            await waitFor(() => loop.ok() >= pulled + 2, 30_000, "two pulls before the rollout step");
            // The surge pod: started and ready (startRegistry waits for it) before the old one stops.
            const next = await startPull(PULL_IPS[i + 2]);
            pullService.add(backend(next));
            const old = pulls[i];
            pullService.remove(backend(old));
            await new Promise((r) => setTimeout(r, PRE_STOP_MS));
            process.kill(old.proc.pid, "SIGTERM");
            await waitFor(async () => old.proc.hasExited(), 20_000, "the old replica draining and exiting");
            pulls[i] = next;
        }
        const after = loop.ok();
        await waitFor(() => loop.ok() >= after + 3, 30_000, "three pulls from the new replicas");
        const result = await loop.stop();
        expect(result.failed).toEqual([]);
        expect(result.ok).toBeGreaterThanOrEqual(7);
        const counts = pullService.counts();
        for (const r of pulls) expect(counts[`${backend(r).host}:${backend(r).port}`], r.url).toBeGreaterThan(0);
    }, 120_000);

    test("SIGTERM to every read replica 4 MiB into a 48 MiB blob download through the Service: the download completes", async () => {
        const data = crypto.randomBytes(48 << 20);
        const digest = await uploadBlob(pushes[0].url, "demo/big", data, { caFile: cluster.client.caFile, auth: pushAuth() });
        let signalled = false;
        const got = await slowDownload(`https://${HOSTED_IP}:${cluster.port}/v2/demo/big/blobs/${digest}`, {
            caFile: cluster.client.caFile,
            auth: pullAuth(),
            bytesPerSecond: 16 << 20,
            onProgress: (bytes) => {
                if (signalled || bytes < 4 << 20) return;
                signalled = true;
                for (const r of pulls) process.kill(r.proc.pid, "SIGTERM");
            },
        });
        expect(signalled).toBe(true);
        expect(got.error).toBeUndefined();
        expect(got.bytes).toBe(data.length);
        expect(got.digest).toBe(digest);
    }, 60_000);
});
