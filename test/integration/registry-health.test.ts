/**
 * What the registry pods generate for health and metrics, run for real: the readiness command of the
 * generated Deployment, run by busybox's sh, df, awk and wget (the registry image's own tools), against
 * the real distribution (the release the image ships) started from that Deployment; fullness on a small tmpfs in a private mount
 * namespace; and the Prometheus counters on the debug listener moving with a pull.
 */
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import * as net from "node:net";
import { REGISTRY_DEBUG_PORT, REGISTRY_PUSH_DEBUG_PORT } from "../../components/registry";
import { renderDockerConfigJson } from "../../components/render/docker-config";
import { buildOciImage, BuiltOciImage } from "./harness/oci";
import { runCommand, CommandResult } from "./harness/procs";
import { describeIntegration } from "./describe-integration";
import { HOSTED_IP, LoopbackCluster, podLoopback } from "./support";

function get(url: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
        http.get(url, { agent: false, timeout: 5000 }, (res) => {
            let body = "";
            res.on("data", (c: Buffer) => (body += c.toString()));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        }).on("error", reject);
    });
}

/** The sum of every sample of a Prometheus counter, from the text format. */
function counter(text: string, name: string): number {
    return text
        .split("\n")
        .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
        .reduce((sum, l) => sum + Number(l.split(" ").pop()), 0);
}

/** `pid` and every process below it (the push container's supervisor runs its registry as a child). */
function processTree(pid: number): number[] {
    const parentOf = new Map<number, number>();
    for (const p of fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
        try {
            // "pid (comm) state ppid ...": the fields after the last ')'.
            const stat = fs.readFileSync(`/proc/${p}/stat`, "utf8");
            parentOf.set(Number(p), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
        } catch {
            // gone meanwhile
        }
    }
    const tree = [pid];
    for (let grew = true; grew;) {
        const more = [...parentOf].filter(([p, parent]) => tree.includes(parent) && !tree.includes(p)).map(([p]) => p);
        tree.push(...more);
        grew = more.length > 0;
    }
    return tree;
}

/** The TCP addresses process `pid` (and its children) listens on, as `ss` shows them. */
async function listening(pid: number): Promise<string[]> {
    const r = await runCommand("ss", ["-Hltnp"]);
    if (r.code !== 0) throw new Error(`ss: ${r.stderr}`);
    const pids = processTree(pid);
    return r.stdout
        .split("\n")
        .filter((l) => pids.some((p) => l.includes(`pid=${p},`)))
        .map((l) => l.trim().split(/\s+/)[3]);
}

/** "connected", or the error code of a TCP connection to host:port. */
function connects(host: string, port: number): Promise<string> {
    return new Promise((resolve) => {
        const s = net.connect({ host, port, timeout: 3000 });
        s.once("connect", () => (s.destroy(), resolve("connected")));
        s.once("timeout", () => (s.destroy(), resolve("timeout")));
        s.once("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    });
}

describeIntegration("registry health and metrics, with the real registry and busybox", () => {
    let cluster: LoopbackCluster;
    let image: BuiltOciImage;
    let bin: string;
    const debugUrl = () => `http://${podLoopback(HOSTED_IP)}:${REGISTRY_DEBUG_PORT}`;

    beforeAll(async () => {
        cluster = await LoopbackCluster.start({ prefix: "crhm-", nodeMode: "apply" });
        image = await buildOciImage(path.join(cluster.work, "oci"), { tag: "v1", layers: [{ files: { "a.txt": "metrics\n" } }] });
        expect((await cluster.push(image, "demo/metrics:v1")).code).toBe(0);
        // The registry image's tools are busybox applets: a PATH holding only those.
        bin = path.join(cluster.work, "probe-bin");
        fs.mkdirSync(bin);
        for (const applet of ["sh", "df", "awk", "wget"]) fs.symlinkSync("/bin/busybox", path.join(bin, applet));
    }, 120_000);

    afterAll(async () => {
        await cluster?.stop();
    });

    /** The generated readiness check, run by busybox with only busybox's applets on PATH. */
    function readiness(storage: string): Promise<CommandResult> {
        return runCommand(path.join(bin, "sh"), ["-c", ...readinessArgs(storage)], { env: { PATH: bin } });
    }

    test("the debug listener serves Prometheus metrics whose request counters move with a pull", async () => {
        const before = await get(`${debugUrl()}/metrics`);
        expect(before.status).toBe(200);
        // Pulled as a pod pulls, from the read-only container whose debug listener the metrics Service reaches.
        const pullAuthfile = path.join(cluster.work, "pull-at-clusterip.json");
        const { username, password } = cluster.dep.pullAuth;
        fs.writeFileSync(pullAuthfile, renderDockerConfigJson([`${HOSTED_IP}:${cluster.port}`], username, password), { mode: 0o600 });
        const pull = await runCommand("skopeo", [
            "copy",
            "--src-authfile",
            pullAuthfile,
            "--src-cert-dir",
            cluster.client.certDir,
            `docker://${HOSTED_IP}:${cluster.port}/demo/metrics:v1`,
            `oci:${path.join(cluster.work, "pulled")}:v1`,
        ]);
        expect(pull.code, pull.stderr).toBe(0);
        const after = await get(`${debugUrl()}/metrics`);
        expect(counter(after.body, "registry_http_requests_total")).toBeGreaterThan(counter(before.body, "registry_http_requests_total"));
    });

    test("debug listener: neither container's (pprof, expvar, metrics) listens on the pod's address, only on its loopback, where the readiness probe reaches it", async () => {
        for (const [registry, port] of [
            [cluster.hosted, REGISTRY_DEBUG_PORT],
            [cluster.hostedPush, REGISTRY_PUSH_DEBUG_PORT],
        ] as const) {
            // What the process itself listens on (other people's tests may listen on the same addresses).
            const debug = (await listening(registry.proc.pid)).filter((a) => a.endsWith(`:${port}`));
            expect(debug, `port ${port}`).toEqual([`${podLoopback(HOSTED_IP)}:${port}`]);
            expect(await connects(podLoopback(HOSTED_IP), port), `pod loopback, port ${port}`).toBe("connected");
        }
        const r = await readiness(path.join(cluster.work, "pod", "var", "lib", "registry"));
        expect(r.code, r.stderr).toBe(0);
    });

    test("the readiness check passes while storage is healthy and below the limit", async () => {
        const r = await readiness(path.join(cluster.work, "pod", "var", "lib", "registry"));
        expect(r.code, r.stderr).toBe(0);
    });

    /** The readiness check against a 1 MiB tmpfs holding `fillKiB` KiB, mounted in a private mount namespace that ends with the check. */
    async function readinessOnSmallTmpfs(fillKiB: number): Promise<CommandResult> {
        const mnt = path.join(cluster.work, "small");
        fs.mkdirSync(mnt, { recursive: true });
        const [script, name, , limit, url] = readinessArgs(mnt);
        const setUp = 'mount -t tmpfs -o size=1m tmpfs "$1" && dd if=/dev/zero of="$1/fill" bs=1k count="$2" 2>/dev/null && shift 2 && exec "$@"';
        const probe = ["/usr/bin/env", `PATH=${bin}`, path.join(bin, "sh"), "-c", script, name, mnt, limit, url];
        const r = await runCommand("unshare", ["--mount", "--propagation", "private", "sh", "-c", setUp, "sh", mnt, String(fillKiB), ...probe]);
        // Nothing leaked out of the namespace.
        expect(fs.readdirSync(mnt)).toEqual([]);
        return r;
    }

    test("the readiness check fails once the volume is at the limit, and passes on the same volume with room left", async () => {
        const full = await readinessOnSmallTmpfs(950);
        expect(full.code).not.toBe(0);
        expect(full.stderr).toMatch(/is 9\d% full \(limit 90%\)/);
        const roomy = await readinessOnSmallTmpfs(100);
        expect(roomy.code, roomy.stderr).toBe(0);
    });

    test("the readiness check fails when the registry's health endpoint does not answer", async () => {
        await cluster.hosted.stop();
        const r = await readiness(path.join(cluster.work, "pod", "var", "lib", "registry"));
        expect(r.code).not.toBe(0);
        expect(r.stderr).toContain("does not answer 200");
    });

    /** The generated readiness command's script and arguments, the fill limit the cache default (90), the health URL on this machine. */
    function readinessArgs(storage: string): string[] {
        const deployment = cluster.cloud.one("kubernetes:apps/v1:Deployment", "hosted");
        const [, , script, name, , , health] = deployment.inputs.spec.template.spec.containers[0].readinessProbe.exec.command as string[];
        return [script, name, storage, "90", health.replace("127.0.0.1", podLoopback(HOSTED_IP))];
    }
});
