/**
 * Issue #22, proven the way it was found: a pod paused (SIGSTOP, as a frozen cgroup or a node under
 * pressure would stop it) at any point while a rollout's new pod takes the node makes no change once
 * the new pod has it; a SIGTERM at any instant of the run loop, including between its test of the
 * stop flag and its sleep, leads to the uninstall within kubelet's grace period.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { FakeCloud } from "../support/fake-cloud";
import { describeNodeAgent } from "./describe-integration";
import { FakeKubeApi, NodeScript, nodeScript, runKilledAt, startPausedAt, waitApplied } from "./harness/node";
import { copyTree, hostFiles, nodeState, seedNode } from "./harness/node-tree";
import { stopAll, waitFor, type ProcHandle } from "./harness/procs";
import { deploy, tempDir } from "./support";

const HOSTED_IP = "10.96.0.10";
const CACHE_IPS: Record<string, string> = { "docker.io": "10.96.0.20", "quay.io": "10.96.0.21" };
const cloudWithIPs = () =>
    new FakeCloud({ clusterIP: (name) => Object.entries(CACHE_IPS).find(([host]) => name.includes(`cache-${host.replace(/\./g, "-")}-`))?.[1] ?? HOSTED_IP });
/**
 * The paused pod re-applies every second once resumed, so it gets its chance to write again. The
 * lease is for an agent that has one (the lease-based lock this replaced): 1 s, shorter than the
 * pause, so such an agent's lock would be broken while its holder is stopped.
 */
const PAUSED_ENV = { REAPPLY_SECONDS: "1", LOCK_LEASE_SECONDS: "1" };
/** How long the holder stays paused while the other pod tries to take the node. */
const PAUSE_MS = 2200;

describeNodeAgent("the node agent fenced and stoppable", () => {
    const work = tempDir("crfence-");
    afterAll(async () => {
        await stopAll();
        fs.rmSync(work, { recursive: true, force: true });
    });

    async function program(caches: string[], api?: FakeKubeApi): Promise<(certs: string) => NodeScript> {
        const cloud = cloudWithIPs();
        await deploy(HOSTED_IP, { "cluster-registry:caches": JSON.stringify(caches) }, cloud);
        return (certs) => nodeScript(cloud, work, certs, api);
    }

    let seeded: string;
    let original: Record<string, string>;
    let installed: (certs: string) => NodeScript;
    let rolledTo: (certs: string) => NodeScript;
    /** What containerd reads once each configuration alone has applied. */
    let applied: Record<string, string>;
    let rolled: Record<string, string>;
    let nodes = 0;
    const nodeFrom = (from: string) => {
        const certs = path.join(work, `node-${nodes++}`);
        copyTree(from, certs);
        return certs;
    };
    const readyFile = (pod: NodeScript) => path.join(pod.env.RUN_DIR, "ready");

    beforeAll(async () => {
        seeded = path.join(work, "seeded");
        seedNode(seeded);
        original = nodeState(seeded);
        installed = await program(["docker.io"]);
        rolledTo = await program(["quay.io"]);
        for (const [make, set] of [
            [installed, (t: Record<string, string>) => (applied = t)],
            [rolledTo, (t: Record<string, string>) => (rolled = t)],
        ] as const) {
            const certs = nodeFrom(seeded);
            const pod = make(certs);
            const r = await runKilledAt(pod, work, "run", 0, { until: () => fs.existsSync(readyFile(pod)), uncounted: true });
            expect(fs.existsSync(readyFile(pod)), r.output).toBe(true);
            set(hostFiles(certs));
        }
        expect(applied["docker.io/hosts.toml"]).toContain(CACHE_IPS["docker.io"]);
        expect(rolled["quay.io/hosts.toml"]).toContain(CACHE_IPS["quay.io"]);
    });

    /**
     * The holder (installed) paused after its `n`th command; the other pod (rolledTo) started, given
     * the pause to take the node; the holder resumed and given a re-apply. Whichever pod reached the
     * node last holds it (a pod paused before it recorded itself counts as the later one): the node
     * must be exactly that pod's, and its uninstall must leave the node as it was.
     */
    async function pauseAt(n: number): Promise<void> {
        const certs = nodeFrom(seeded);
        const holderPod = installed(certs);
        const holder = startPausedAt(holderPod, work, "run", n, PAUSED_ENV);
        let other: ProcHandle | undefined;
        try {
            expect(await holder.paused(), `never paused at ${n}: ${holder.output()}`).toBe(true);
            const otherPod = rolledTo(certs);
            other = otherPod.start(path.join(work, `other-${n}.log`), PAUSED_ENV);
            await new Promise((r) => setTimeout(r, PAUSE_MS));
            holder.resume();
            await waitFor(() => fs.existsSync(readyFile(otherPod)) || fs.existsSync(readyFile(holderPod)), 15_000, "a pod to apply", { proc: other });
            // Both have applied or stood back, and the holder has had a re-apply since it resumed.
            await waitFor(() => /leaves it alone|leaving it alone/.test(holder.output() + other!.log()), 15_000, "one pod to stand back");
            await new Promise((r) => setTimeout(r, 500));
            const winner = fs.readFileSync(path.join(certs, ".cluster-registry.registry.registry", "holder"), "utf8").includes(otherPod.env.POD_UID)
                ? { pod: otherPod, files: rolled }
                : { pod: holderPod, files: applied };
            expect(hostFiles(certs)).toEqual(winner.files);
            expect(await holder.stop()).toBe(0);
            await other.stop();
            expect(hostFiles(certs)).toEqual(winner.files);
            const r = await winner.pod.exec("remove");
            expect(r.code, r.stdout + r.stderr).toBe(0);
            expect(nodeState(certs)).toEqual(original);
        } catch (e) {
            throw new Error(`paused after command ${n}:\n--- holder ---\n${holder.output()}\n--- other ---\n${other?.log() ?? ""}\n${(e as Error).message}`);
        } finally {
            await holder.stop(1000);
            await other?.stop();
        }
        fs.rmSync(certs, { recursive: true, force: true });
    }

    test("a paused holder never writes once another pod has taken the node: paused after each of its commands in turn", async () => {
        const clean = nodeFrom(seeded);
        const pod = installed(clean);
        const full = await runKilledAt(pod, work, "run", 0, { until: () => fs.existsSync(readyFile(pod)) });
        expect(full.commands, full.output).toBeGreaterThan(20);
        let next = 1;
        const worker = async () => {
            while (next <= full.commands) await pauseAt(next++);
        };
        await Promise.all([worker(), worker()]);
        console.log(`paused after each of ${full.commands} commands`);
    }, 1_800_000);

    /** Pauses a running pod's whole process group from outside, as a freezer would, at a moment of the test's choosing. */
    const pauseGroup = (proc: ProcHandle, sig: "SIGSTOP" | "SIGCONT") => process.kill(proc.pid, sig);

    test("a paused holder, in real time: stopped mid-apply, the other pod waits and writes nothing; stopped asleep, the other takes over; resumed, it writes nothing", async () => {
        // Mid-apply: stopped after its 40th command, with the lock held and some files written.
        let certs = nodeFrom(seeded);
        const holderPod = installed(certs);
        const holder = startPausedAt(holderPod, work, "run", 40, { REAPPLY_SECONDS: "1" });
        expect(await holder.paused(), holder.output()).toBe(true);
        const during = nodeState(certs);
        expect(Object.keys(during)).not.toEqual(Object.keys(original));
        const otherPod = rolledTo(certs);
        const other = otherPod.start(path.join(work, "rt-other.log"), { REAPPLY_SECONDS: "1" });
        await new Promise((r) => setTimeout(r, 4000));
        expect(nodeState(certs)).toEqual(during);
        expect(fs.existsSync(readyFile(otherPod))).toBe(false);
        holder.resume();
        await waitApplied(other, 15_000);
        await waitFor(() => holder.output().includes("a newer pod holds this node: leaving it alone"), 10_000, "the resumed holder to stand back");
        expect(hostFiles(certs)).toEqual(rolled);
        expect(await holder.stop()).toBe(0);
        await other.stop();
        expect((await otherPod.exec("remove")).code).toBe(0);
        expect(nodeState(certs)).toEqual(original);

        // Asleep between re-applies: it holds nothing, so the other pod takes the node at once.
        certs = nodeFrom(seeded);
        const sleeperPod = installed(certs);
        const sleeper = sleeperPod.start(path.join(work, "rt-sleeper.log"), { REAPPLY_SECONDS: "2" });
        await waitApplied(sleeper);
        pauseGroup(sleeper, "SIGSTOP");
        const takerPod = rolledTo(certs);
        const taker = takerPod.start(path.join(work, "rt-taker.log"), { REAPPLY_SECONDS: "1" });
        await waitApplied(taker, 5000);
        await new Promise((r) => setTimeout(r, 3000));
        pauseGroup(sleeper, "SIGCONT");
        await waitFor(() => sleeper.log().includes("a newer pod holds this node: leaving it alone"), 10_000, "the resumed pod to stand back", {
            proc: sleeper,
        });
        await new Promise((r) => setTimeout(r, 2500));
        expect(hostFiles(certs)).toEqual(rolled);
        await sleeper.stop();
        await taker.stop();
        expect((await takerPod.exec("remove")).code).toBe(0);
        expect(nodeState(certs)).toEqual(original);
    }, 120_000);

    test("SIGTERM at any instant of the loop, even between the stop-flag test and the sleep, leads to the uninstall within the grace period", async () => {
        const api = await FakeKubeApi.start(work);
        try {
            api.state = "gone";
            const pod = (await program(["docker.io"], api))(nodeFrom(seeded));
            const certs = pod.env.CERTS_DIR;
            // The window between the loop's test of the flag and the sleeper's start, widened to 2 s
            // (RACE_WINDOW_SECONDS), with the SIGTERM landing in its middle; then instants all over a
            // loop that re-applies every second.
            const cases: Array<{ env: Record<string, string>; afterApplyMs: number }> = [
                { env: { RACE_WINDOW_SECONDS: "2" }, afterApplyMs: 1000 },
                ...[0, 130, 260, 390, 520, 650, 780, 910, 1040, 1170].map((ms) => ({ env: { REAPPLY_SECONDS: "1" }, afterApplyMs: ms })),
            ];
            for (const [i, c] of cases.entries()) {
                const proc = pod.start(path.join(work, `term-${i}.log`), c.env);
                await waitApplied(proc);
                await new Promise((r) => setTimeout(r, c.afterApplyMs));
                const t0 = Date.now();
                process.kill(proc.pid, "SIGTERM");
                const ended = await Promise.race([proc.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 10_000))]);
                const took = Date.now() - t0;
                await proc.stop();
                const what = `${JSON.stringify(c)}:\n${proc.log()}`;
                expect(ended, what).toBe(true);
                // The widened window itself (2 s) plus a second or two; kubelet's grace period is 30 s.
                expect(took, what).toBeLessThan(c.env.RACE_WINDOW_SECONDS ? 4500 : 2500);
                expect(proc.log(), what).toContain("node-config: node restored");
                expect(nodeState(certs), what).toEqual(original);
            }
        } finally {
            await api.stop();
        }
    }, 120_000);
});
