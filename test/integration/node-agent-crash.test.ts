/**
 * Crash consistency, proven the way it was found (issue #10): the DaemonSet's own script, under
 * busybox, SIGKILLed with everything it runs after each of its external commands in turn (a PATH of
 * counting applets, see killingApplets), for three sequences: an apply over a node holding other
 * tools' files, a rollout's hand-over (the new pod's apply while the old one holds the node), and an
 * uninstall. After each kill the next pod runs, then the uninstall: the node must be what it was
 * before, byte for byte and mode for mode, with nothing of ours left.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { FakeCloud } from "../support/fake-cloud";
import { describeNodeAgent } from "./describe-integration";
import { NodeScript, nodeScript, runKilledAt, type KilledRun } from "./harness/node";
import { copyTree, hostFiles, nodeState, seedNode } from "./harness/node-tree";
import { stopAll } from "./harness/procs";
import { deploy, tempDir } from "./support";

const HOSTED_IP = "10.96.0.10";
const CACHE_IPS: Record<string, string> = { "docker.io": "10.96.0.20", "quay.io": "10.96.0.21" };

const cloudWithIPs = () =>
    new FakeCloud({ clusterIP: (name) => Object.entries(CACHE_IPS).find(([host]) => name.includes(`cache-${host.replace(/\./g, "-")}-`))?.[1] ?? HOSTED_IP });

describeNodeAgent("the node agent killed after any command", () => {
    const work = tempDir("crkill-");
    afterAll(async () => {
        await stopAll();
        fs.rmSync(work, { recursive: true, force: true });
    });

    /** The program as deployed with these caches: a fresh pod of its DaemonSet each call, on `certs`. */
    async function program(caches: string[]): Promise<(certs: string) => NodeScript> {
        const cloud = cloudWithIPs();
        await deploy(HOSTED_IP, { "cluster-registry:caches": JSON.stringify(caches) }, cloud);
        return (certs) => nodeScript(cloud, work, certs);
    }

    /** Runs a pod's `run` until it is ready (it then sleeps, holding nothing), then kills it. */
    async function runUntilReady(pod: NodeScript, env: Record<string, string> = {}): Promise<KilledRun> {
        const ready = path.join(pod.env.RUN_DIR, "ready");
        fs.rmSync(ready, { force: true });
        const r = await runKilledAt(pod, work, "run", 0, { env, until: () => fs.existsSync(ready), uncounted: true });
        expect(fs.existsSync(ready), r.output).toBe(true);
        return r;
    }

    let original: Record<string, string>;
    let seeded: string;
    let installed: (certs: string) => NodeScript;
    let rolledTo: (certs: string) => NodeScript;
    beforeAll(async () => {
        seeded = path.join(work, "seeded");
        seedNode(seeded);
        original = nodeState(seeded);
        installed = await program(["docker.io"]);
        rolledTo = await program(["quay.io"]);
    });

    /** A fresh node dir holding `from`'s tree. */
    let nodes = 0;
    function nodeFrom(from: string): string {
        const certs = path.join(work, `node-${nodes++}`);
        copyTree(from, certs);
        return certs;
    }

    /**
     * Kills `killed` after its 1st, 2nd, ... command until a run finishes by itself, each time on a
     * fresh copy of `start`, then has `recover` finish the job and checks `expectEnd`.
     */
    async function everyKillPoint(
        what: string,
        start: string,
        killed: { pod: (certs: string) => NodeScript; mode: "run" | "apply" | "remove" },
        recover: (certs: string, n: number) => Promise<void>,
    ): Promise<number> {
        // A clean run first: how many commands there are to kill after.
        const clean = nodeFrom(start);
        const pod = killed.pod(clean);
        const ready = path.join(pod.env.RUN_DIR, "ready");
        const full = await runKilledAt(pod, work, killed.mode, 0, { until: killed.mode === "run" ? () => fs.existsSync(ready) : undefined });
        expect(full.commands, full.output).toBeGreaterThan(20);
        const point = async (n: number) => {
            const certs = nodeFrom(start);
            const r = await runKilledAt(killed.pod(certs), work, killed.mode, n, {});
            expect(r.signal, `${what}, kill at ${n}: ${r.output}`).toBe("SIGKILL");
            try {
                await recover(certs, n);
            } catch (e) {
                throw new Error(`${what}, killed after command ${n} (${r.commandLog.trim().split("\n").at(-1)}):\n${r.output}\n${(e as Error).message}`);
            }
            fs.rmSync(certs, { recursive: true, force: true });
        };
        // Two at a time, each on its own node directory: the machine has two cores.
        let next = 1;
        const worker = async () => {
            while (next <= full.commands) await point(next++);
        };
        await Promise.all([worker(), worker()]);
        return full.commands;
    }

    async function uninstall(certs: string): Promise<void> {
        const r = await installed(certs).exec("remove");
        expect(r.code, r.stdout + r.stderr).toBe(0);
        expect(nodeState(certs)).toEqual(original);
    }

    test("an apply over a node holding other tools' files", async () => {
        // What a clean apply leaves for containerd, to compare each recovery with.
        const ref = nodeFrom(seeded);
        await runUntilReady(installed(ref));
        const applied = hostFiles(ref);
        expect(applied["docker.io/hosts.toml"]).toContain(CACHE_IPS["docker.io"]);

        const points = await everyKillPoint("apply", seeded, { pod: installed, mode: "run" }, async (certs) => {
            // The pod's container restarts (same pod, same UID) and applies; then `pulumi destroy`.
            await runUntilReady(installed(certs));
            expect(hostFiles(certs)).toEqual(applied);
            await uninstall(certs);
        });
        console.log(`apply: killed after each of ${points} commands`);
    }, 900_000);

    test("a rollout's hand-over: the new pod's apply while the old one holds the node", async () => {
        // The old pod has applied and holds the node (it sleeps between re-applies: its state is on the node).
        const held = nodeFrom(seeded);
        await runUntilReady(installed(held));
        const ref = nodeFrom(held);
        await runUntilReady(rolledTo(ref));
        const rolled = hostFiles(ref);
        expect(rolled["docker.io/hosts.toml"]).toBe(original["docker.io/hosts.toml"]);
        expect(rolled["quay.io/hosts.toml"]).toContain(CACHE_IPS["quay.io"]);

        const points = await everyKillPoint("hand-over", held, { pod: rolledTo, mode: "run" }, async (certs) => {
            // The new pod restarts and finishes the hand-over; the old one, stopped, leaves it alone.
            await runUntilReady(rolledTo(certs));
            expect(hostFiles(certs)).toEqual(rolled);
            await uninstall(certs);
        });
        console.log(`hand-over: killed after each of ${points} commands`);
    }, 900_000);

    test("an uninstall", async () => {
        const applied = nodeFrom(seeded);
        await runUntilReady(installed(applied));
        const points = await everyKillPoint("remove", applied, { pod: installed, mode: "remove" }, async (certs, n) => {
            // Either the uninstall is run again, or the DaemonSet comes back first and then goes.
            if (n % 2 === 1) await runUntilReady(installed(certs));
            await uninstall(certs);
        });
        console.log(`remove: killed after each of ${points} commands`);
    }, 900_000);
});
