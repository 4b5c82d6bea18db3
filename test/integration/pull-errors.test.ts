/**
 * Issue 21 part 5: what kubelet reports when an image is missing, on fail-closed nodes pulling with the
 * node identity, as containerd (1.6, 1.7, 2.x) answers a CRI PullImage after following the agent's
 * hosts.toml. containerd tries each `[host]` in order and then `server`, and reports the last error: a
 * `server` that is a name nodes cannot resolve, or one sent without the node identity, would turn
 * "not found" into a DNS error or a 401. The messages are printed, for the README's troubleshooting.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { ContainerdHandle, ContainerdLine } from "./harness/containerd";
import { criPull } from "./harness/cri";
import { buildOciImage } from "./harness/oci";
import { describeContainerd } from "./describe-integration";
import { LoopbackCluster } from "./support";

const FIXTURES = path.resolve(__dirname, "../fixtures/containerd");

/** The error a CRI pull of `ref` fails with (the pull must fail). */
async function pullError(socket: string, ref: string): Promise<string> {
    try {
        await criPull(socket, ref, undefined, { timeoutMs: 60_000 });
    } catch (e) {
        return (e as Error).message;
    }
    throw new Error(`${ref} was pulled; it should not exist`);
}

/** What says "not found" on each containerd line (2.x words an unauthorised pull differently, see real-components.md). */
const NOT_FOUND = /not found/;
const MISLEADING = /401|unauthorized|no such host|lookup |pull access denied|authorization/i;

for (const line of ["1.6", "1.7", "2.x"] as ContainerdLine[]) {
    describeContainerd(line, "pull errors on fail-closed nodes say what happened", (build) => {
        let cluster: LoopbackCluster;
        let node: ContainerdHandle;

        beforeAll(async () => {
            cluster = await LoopbackCluster.start({
                prefix: "cpe-",
                dockerIoCache: true,
                nodeMode: "apply",
                containerd: false,
                config: { "cluster-registry:mirrorFallback": "none" },
            });
            const image = await buildOciImage(path.join(cluster.work, "oci"), { tag: "v1", layers: [{ files: { "a.txt": "present\n" } }] });
            for (const push of [await cluster.push(image, "team/app:v1"), await cluster.pushUpstream(image, "library/present:v1")]) {
                expect(push.code, push.stderr).toBe(0);
            }
            // kind v0.31's config (one certs.d directory) on every line: what is compared is the hosts.toml.
            const toml = fs.readFileSync(path.join(FIXTURES, "kind-v0.31.toml"), "utf8");
            node = await cluster.startNodeContainerd("n", { binary: build.binary, nodeConfig: { toml, certsPath: "/etc/containerd/certs.d" } });
            // The node pulls what exists, with no pull secret: the failures below are about what is missing.
            await criPull(node.socket, cluster.ref("team/app:v1"), undefined, { timeoutMs: 60_000 });
            await criPull(node.socket, "docker.io/library/present:v1", undefined, { timeoutMs: 60_000 });
        });

        afterAll(() => cluster?.stop());

        test("a missing tag on the hosted registry reads as not found, not as a DNS lookup of the in-cluster name", async () => {
            const message = await pullError(node.socket, cluster.ref("team/app:missing"));
            console.info(`containerd ${build.label}, missing tag on the hosted registry: ${message}`);
            expect(message).toMatch(NOT_FOUND);
            expect(message).not.toMatch(MISLEADING);
        });

        test("a missing image behind a fail-closed cache reads as not found, not as 401 Unauthorized", async () => {
            const message = await pullError(node.socket, "docker.io/library/missing:v1");
            console.info(`containerd ${build.label}, missing image behind the docker.io cache: ${message}`);
            expect(message).toMatch(NOT_FOUND);
            expect(message).not.toMatch(MISLEADING);
        });
    });
}
