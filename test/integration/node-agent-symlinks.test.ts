/**
 * Issue #21 (part 3): the agent never writes, chmods or deletes outside certs.d and its own state,
 * whatever it finds there. Planting needs root in certs.d; the agent runs as root on every node and
 * must not widen what such a mistake can reach. Each case on the DaemonSet's own script under busybox,
 * with a directory beside certs.d standing for the rest of the node.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeEach, expect, test } from "vitest";
import { FakeCloud } from "../support/fake-cloud";
import { describeNodeAgent } from "./describe-integration";
import { NodeScript, nodeScript, nodeWorkspace } from "./harness/node";
import { K3S_FILE, nodeState } from "./harness/node-tree";
import { stopAll } from "./harness/procs";
import { deploy, tempDir } from "./support";

const HOSTED_IP = "10.96.0.10";
const DOCKER_CACHE_IP = "10.96.0.20";
const STATE = ".cluster-registry.registry.registry";
const VICTIM = "root's own file\n";
const cloudWithIPs = () => new FakeCloud({ clusterIP: (name) => (name.includes("cache-docker-io-") ? DOCKER_CACHE_IP : HOSTED_IP) });

describeNodeAgent("the node agent never leaves certs.d", () => {
    let work: string;
    let certs: string;
    /** Outside certs.d: what the rest of the node holds, which no run may change. */
    let outside: string;
    let pod: NodeScript;

    beforeEach(async () => {
        const ws = await nodeWorkspace(tempDir("crlink-"), { "docker.io/hosts.toml": K3S_FILE });
        ({ work, certs } = ws);
        outside = path.join(work, "outside");
        fs.mkdirSync(path.join(outside, "empty"), { recursive: true });
        fs.writeFileSync(path.join(outside, "victim"), VICTIM, { mode: 0o644 });
        fs.chmodSync(path.join(outside, "victim"), 0o644);
        fs.writeFileSync(path.join(outside, "hosts.toml"), K3S_FILE, { mode: 0o644 });
        const cloud = cloudWithIPs();
        await deploy(HOSTED_IP, { "cluster-registry:caches": '["docker.io"]' }, cloud);
        pod = nodeScript(cloud, work, certs);
        return ws.dispose;
    });
    afterAll(() => stopAll());

    const run = async (mode: "apply" | "remove") => {
        const r = await pod.exec(mode);
        return { code: r.code, out: r.stdout + r.stderr };
    };

    test("symlink: a planted <host>/hosts.toml.cluster-registry-tmp is replaced, never written through or chmod-ed", async () => {
        const outsideBefore = nodeState(outside);
        fs.symlinkSync(path.join(outside, "victim"), path.join(certs, "docker.io", "hosts.toml.cluster-registry-tmp"));
        const applied = await run("apply");
        expect(applied.code, applied.out).toBe(0);
        expect(nodeState(outside)).toEqual(outsideBefore);
        expect(fs.readFileSync(path.join(certs, "docker.io", "hosts.toml"), "utf8")).toContain(DOCKER_CACHE_IP);
        expect(fs.lstatSync(path.join(certs, "docker.io", "hosts.toml")).isSymbolicLink()).toBe(false);
        // Planted again, before the uninstall.
        fs.symlinkSync(path.join(outside, "victim"), path.join(certs, "docker.io", "hosts.toml.cluster-registry-tmp"));
        const removed = await run("remove");
        expect(removed.code, removed.out).toBe(0);
        expect(nodeState(outside)).toEqual(outsideBefore);
        expect(fs.readFileSync(path.join(certs, "docker.io", "hosts.toml"), "utf8")).toBe(K3S_FILE);
    });

    test.each([
        ["a symlinked host directory", "docker.io", "docker.io"],
        ["a symlinked state directory", STATE, STATE],
        ["a symlinked backup directory", `${STATE}/backup`, `${STATE}/backup`],
    ])("symlink: %s is refused, nothing written, chmod-ed or deleted outside certs.d", async (_what, link, refused) => {
        if (link.startsWith(STATE)) fs.mkdirSync(path.join(certs, path.dirname(link)), { recursive: true, mode: 0o700 });
        // The host directory's content moves outside, and certs.d points there.
        const target = path.join(outside, "linked");
        if (link === "docker.io") fs.renameSync(path.join(certs, "docker.io"), target);
        else fs.mkdirSync(target);
        fs.symlinkSync(target, path.join(certs, link));
        const outsideBefore = nodeState(outside);
        const applied = await run("apply");
        expect(applied.code, applied.out).toBe(1);
        expect(applied.out).toContain(`refusing to work in ${path.join(certs, refused)}: it is a symlink`);
        expect(nodeState(outside)).toEqual(outsideBefore);
        await run("remove");
        expect(nodeState(outside)).toEqual(outsideBefore);
        expect(fs.readlinkSync(path.join(certs, link))).toBe(target);
    });

    test("symlink: `../x <sha256>` in the managed state (and `../empty` in created-dirs) is ignored by apply and remove, never deleted", async () => {
        const outsideBefore = nodeState(outside);
        expect((await run("apply")).code).toBe(0);
        const sha = crypto.createHash("sha256").update(VICTIM).digest("hex");
        // `certs.d/../outside/...` names the files beside certs.d: lines a careless edit or a bug could leave.
        fs.appendFileSync(path.join(certs, STATE, "managed"), `../outside/victim ${sha}\nx/../../outside/victim ${sha}\n`);
        fs.appendFileSync(path.join(certs, STATE, "created-dirs"), "../outside/empty\n");
        fs.appendFileSync(path.join(certs, STATE, "released"), `../outside/victim ${sha}\n`);
        fs.writeFileSync(path.join(certs, STATE, "journal"), "restore ../outside/victim\n");
        const applied = await run("apply");
        expect(applied.code, applied.out).toBe(0);
        expect(applied.out).toContain("ignoring '../outside/victim'");
        expect(nodeState(outside)).toEqual(outsideBefore);
        const removed = await run("remove");
        expect(removed.code, removed.out).toBe(0);
        expect(nodeState(outside)).toEqual(outsideBefore);
        expect(fs.readFileSync(path.join(certs, "docker.io", "hosts.toml"), "utf8")).toBe(K3S_FILE);
        expect(fs.existsSync(path.join(certs, STATE))).toBe(false);
    });
});
