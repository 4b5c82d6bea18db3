/**
 * Issue #22: names chosen by users never address the agent's own control files. The lock is a
 * kernel lock on certs.d itself (no file), and the only name of ours in certs.d is a state directory,
 * `.cluster-registry.<namespace>.<service>`, with exactly one dot in the owner.
 */
import * as fs from "node:fs";
import { afterAll, beforeEach, expect, test } from "vitest";
import { FakeCloud } from "../support/fake-cloud";
import { describeNodeAgent } from "./describe-integration";
import { nodeScript, nodeWorkspace, runKilledAt, snapshotTree } from "./harness/node";
import { K3S_FILE } from "./harness/node-tree";
import { stopAll } from "./harness/procs";
import { deploy, tempDir } from "./support";

const HOSTED_IP = "10.96.0.10";
const DOCKER_CACHE_IP = "10.96.0.20";
const cloudWithIPs = () => new FakeCloud({ clusterIP: (name) => (name.includes("cache-docker-io-") ? DOCKER_CACHE_IP : HOSTED_IP) });

describeNodeAgent("the node agent's own names", () => {
    let work: string;
    let certs: string;
    let original: Record<string, string>;

    beforeEach(async () => {
        const ws = await nodeWorkspace(tempDir("crnames-"), { "docker.io/hosts.toml": K3S_FILE });
        ({ work, certs, original } = ws);
        return ws.dispose;
    });
    afterAll(() => stopAll());

    // The names the lock this replaced gave its markers: `.cluster-registry.lock.breaking`, `.lock.new.<pid>`.
    test.each([
        ["lock", "breaking"],
        ["lock", "new"],
    ])(
        "names cannot collide: namespace %s with Service %s keeps its state while another installation's pods die holding the lock and take over",
        async (namespace, service) => {
            const cloud = cloudWithIPs();
            await deploy(
                HOSTED_IP,
                { "cluster-registry:namespace": namespace, "cluster-registry:serviceName": service, "cluster-registry:caches": '["docker.io"]' },
                cloud,
            );
            const theirs = nodeScript(cloud, work, certs);
            expect(theirs.env.OWNER).toBe(`${namespace}.${service}`);
            expect((await theirs.exec("apply")).code).toBe(0);
            const state = `.cluster-registry.${namespace}.${service}`;
            expect(snapshotTree(certs)[`${state}/backup/docker.io/hosts.toml`]).toBe(K3S_FILE);

            // Another installation on the node (registry.registry, no caches): a pod SIGKILLed while it
            // holds the lock, then the next one, told that no lease is worth waiting for.
            const otherCloud = cloudWithIPs();
            await deploy(HOSTED_IP, { "cluster-registry:caches": "[]" }, otherCloud);
            const other = nodeScript(otherCloud, work, certs);
            for (const killAt of [6, 12, 20]) {
                const killed = await runKilledAt(other, work, "apply", killAt);
                expect(killed.signal, killed.output).toBe("SIGKILL");
                const next = await other.exec("apply", { LOCK_LEASE_SECONDS: "0" });
                expect(next.code, next.stdout + next.stderr).toBe(0);
                expect(snapshotTree(certs)[`${state}/backup/docker.io/hosts.toml`]).toBe(K3S_FILE);
            }
            expect(
                fs
                    .readdirSync(certs)
                    .filter((f) => f.startsWith(".cluster-registry"))
                    .sort(),
            ).toEqual([".cluster-registry.registry.registry", state].sort());

            expect((await other.exec("remove")).code).toBe(0);
            const r = await theirs.exec("remove");
            expect(r.code, r.stdout).toBe(0);
            expect(snapshotTree(certs)).toEqual(original);
        },
    );

    test("names cannot collide: an owner that is not exactly <namespace>.<service> is refused, so no two pairs share a state directory", async () => {
        const cloud = cloudWithIPs();
        await deploy(HOSTED_IP, {}, cloud);
        const pod = nodeScript(cloud, work, certs);
        // `lock` would be the lock's old name; `a.b.c` is both (a.b, c) and (a, b.c).
        for (const owner of ["lock", "a.b.c", "registry", "-probe.x"]) {
            const r = await pod.exec("apply", { OWNER: owner });
            expect(r.code, owner).toBe(2);
            expect(r.stderr).toContain("<namespace>.<service>");
        }
        expect(snapshotTree(certs)).toEqual(original);
    });
});
