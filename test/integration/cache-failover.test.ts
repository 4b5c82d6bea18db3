/**
 * Issue 16, step 3: a cache with two replicas, each the real registry in proxy mode on its own storage
 * and its own ClusterIP, in front of a stand-in docker.io; containerd pulls over CRI through the
 * fail-closed hosts.toml the DaemonSet's own script wrote (both replicas listed, no upstream) while a
 * replica is killed with SIGKILL (a node lost, no preStop, no drain).
 */
import * as path from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { buildOciImage } from "./harness/oci";
import { startPullLoop } from "./harness/pull-loop";
import { waitFor } from "./harness/procs";
import { describeIntegration } from "./describe-integration";
import { LoopbackCluster } from "./support";

const IMAGE = "docker.io/library/nginx:stable";

/** Manifest requests a cache replica answered, from its log. */
function manifestRequests(log: string): number {
    return log.split("\n").filter((l) => l.includes('msg="response completed"') && l.includes("/v2/library/nginx/manifests/")).length;
}

describeIntegration("a cache with two replicas, one killed while nodes pull (fail-closed)", () => {
    let cluster: LoopbackCluster;

    beforeAll(async () => {
        cluster = await LoopbackCluster.start({
            prefix: "cfo-",
            dockerIoCache: true,
            nodeMode: "apply",
            // Without the coalescer each replica's pod is its registry alone, so a SIGKILL of that process
            // is the pod's loss (with it, nginx would answer from its own copies for a while).
            config: {
                "cluster-registry:cacheReplicas": "2",
                "cluster-registry:mirrorFallback": "none",
                "cluster-registry:cacheHostPath": "",
                "cluster-registry:cacheCoalescerImage": "",
            },
        });
        const image = await buildOciImage(path.join(cluster.work, "oci"), { tag: "stable", layers: [{ randomBytes: 1 << 20 }] });
        const push = await cluster.pushUpstream(image, "library/nginx:stable");
        expect(push.code, push.stderr).toBe(0);
    }, 60_000);

    afterAll(() => cluster?.stop());

    test("SIGKILL of either replica in turn, each replaced before the other goes: 0 failed pulls, and the survivor served", async () => {
        expect(cluster.cacheReplicas).toHaveLength(2);
        const loop = startPullLoop(cluster.containerd.socket, IMAGE);
        for (const victim of [0, 1]) {
            const survivor = cluster.cacheReplicas[1 - victim];
            const pulled = loop.ok();
            await waitFor(() => loop.ok() >= pulled + 2, 20_000, "two pulls before the kill");
            process.kill(cluster.cacheReplicas[victim].proc.pid, "SIGKILL");
            const served = manifestRequests(survivor.proc.log());
            const afterKill = loop.ok();
            await waitFor(() => loop.ok() >= afterKill + 3, 30_000, `three pulls with replica ${victim} gone`);
            expect(manifestRequests(survivor.proc.log())).toBeGreaterThan(served);
            // Its replacement, on the same storage, as a Deployment's new pod on a kept volume.
            await cluster.startCache(false, victim);
        }
        const result = await loop.stop();
        expect(result.failed).toEqual([]);
        expect(result.ok).toBeGreaterThanOrEqual(10);
    }, 90_000);
});
