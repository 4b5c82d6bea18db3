/**
 * Runs the node-config DaemonSet's own command, with its own ConfigMap (the agent script), Secret
 * (the files it writes) and env, under busybox (the shell of the registry image it runs in), against
 * a directory that stands for the node's certs.d.
 */
import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import type { FakeCloud } from "../../support/fake-cloud";
import { materialize } from "./pod";
import { ProcHandle, runCommand, startProcess, stopAll, waitFor, type CommandResult } from "./procs";

export interface NodeScript {
    /** The DaemonSet's command with the script path rebased, minus its mode argument. */
    argv: string[];
    /** The mode the DaemonSet runs (`run`). */
    mode: string;
    env: Record<string, string>;
    /** Where this pod's Secret of node files is mounted (FILES_DIR, rebased). */
    filesDir: string;
    /** Runs the script in a given mode and waits for it; `env` adds to or overrides the pod's. */
    exec(mode: "apply" | "remove", env?: Record<string, string>): Promise<CommandResult>;
    /** Starts the DaemonSet's own command (`run`) as a long-lived process; `env` adds to or overrides the pod's. */
    start(logFile: string, env?: Record<string, string>): ProcHandle;
}

/** Every command the agent runs, as busybox applets (the image has no other). */
export const NODE_AGENT_APPLETS = [
    "sh",
    "cat",
    "cp",
    "mv",
    "rm",
    "rmdir",
    "mkdir",
    "grep",
    "cmp",
    "touch",
    "sleep",
    "kill",
    "echo",
    "test",
    "[",
    "readlink",
    "awk",
    "sha256sum",
    "stat",
    "date",
    "tail",
    "timeout",
    "wget",
    "ssl_client",
    "chmod",
    "flock",
    // containerd-check.sh's
    "sed",
    "printf",
];

/**
 * The program that stands for an applet here. The image's busybox (Alpine's) has `flock`; Debian's
 * is built without it, so util-linux's stands in: the agent uses only `flock -n FD` and `flock -u FD`,
 * which both take, and both make the same flock(2) call.
 */
function appletProgram(bb: string, applet: string): string[] {
    if (applet !== "flock") return [bb, applet];
    const flock = ["/usr/bin/flock", "/bin/flock"].find((p) => fs.existsSync(p));
    if (!flock) throw new Error("flock is not installed (apt-get install util-linux)");
    return [flock];
}

/** A directory of busybox applets, so cp, mv, cmp and grep behave as in the image. */
function busyboxPath(workDir: string): string {
    const dir = path.join(workDir, "busybox-bin");
    if (!fs.existsSync(dir)) {
        fs.mkdirSync(dir, { recursive: true });
        const bb = ["/usr/bin/busybox", "/bin/busybox"].find((p) => fs.existsSync(p));
        if (!bb) throw new Error("busybox is not installed (apt-get install busybox)");
        for (const applet of NODE_AGENT_APPLETS) {
            const program = appletProgram(bb, applet);
            fs.symlinkSync(program.length === 1 ? program[0] : bb, path.join(dir, applet));
        }
    }
    return dir;
}

/** A containerd config that makes containerd read `certsDir` (kind v0.31's shape). */
export function goodContainerdConfig(certsDir: string): string {
    return `version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "${certsDir}"\n`;
}

/** Where the node's containerd config is: its directory's local stand-in, or a config text for one made here. */
export interface NodeContainerd {
    /** A local directory standing for the node's containerd config directory (the hostPath). */
    configDir?: string;
    /** The config file's text; default: one that reads the DaemonSet's certs.d. */
    config?: string;
}

/**
 * The DaemonSet's script as it would run on a node whose certs.d is `nodeCertsDir`. Each call is a
 * new pod with its own mounts, as in a rollout, where the old pod keeps what it was started with.
 */
export function nodeScript(cloud: FakeCloud, workDir: string, nodeCertsDir: string, api?: FakeKubeApi, containerd: NodeContainerd = {}): NodeScript {
    const ds = cloud.one("kubernetes:apps/v1:DaemonSet");
    const volumes: Array<{ name: string; hostPath?: { path: string } }> = ds.inputs.spec.template.spec.volumes;
    const hostPath = volumes.find((v) => v.name === "certs-d")!.hostPath!.path;
    const hostPaths: Record<string, string> = { [hostPath]: nodeCertsDir };
    const configVolume = volumes.find((v) => v.name === "containerd-config");
    if (configVolume) {
        const configFile = ds.inputs.spec.template.spec.containers[0].env.find((e: { name: string }) => e.name === "NODE_CONTAINERD_CONFIG").value;
        let dir = containerd.configDir;
        if (!dir) {
            dir = fs.mkdtempSync(path.join(workDir, "containerd-"));
            fs.writeFileSync(path.join(dir, path.basename(configFile)), containerd.config ?? goodContainerdConfig(hostPath));
        }
        hostPaths[configVolume.hostPath!.path] = dir;
    }
    const local = materialize(cloud, ds, fs.mkdtempSync(path.join(workDir, "pod-")), hostPaths);
    const [shell, script, mode] = local.container.command as string[];
    if (shell !== "/bin/sh") throw new Error(`the DaemonSet runs ${shell}, not /bin/sh`);
    const bin = busyboxPath(workDir);
    // busybox applets first; the rest of PATH only so the harness finds setpriv.
    const kube: Record<string, string> = api ? { KUBERNETES_SERVICE_HOST: "127.0.0.1", KUBERNETES_SERVICE_PORT: String(api.port) } : {};
    const env = { ...local.env, ...kube, PATH: `${bin}:/usr/sbin:/usr/bin:/sbin:/bin` };
    const argv = [path.join(bin, "sh"), local.rebase(script)];
    return {
        argv,
        mode,
        env,
        filesDir: local.env.FILES_DIR,
        exec: (m, extra = {}) => runCommand(argv[0], [argv[1], m], { env: { ...env, ...extra }, timeoutMs: 30_000 }),
        start: (logFile, extra = {}) => startProcess(argv[0], [argv[1], mode], { env: { ...env, ...extra }, logFile }),
    };
}

/** Waits until a running node script has applied (it logs `applied`). */
export async function waitApplied(proc: ProcHandle, timeoutMs = 10_000): Promise<void> {
    await waitFor(() => proc.log().includes("node-config: applied"), timeoutMs, "node script to apply", { proc });
}

/** Every file under dir with its content, relative paths sorted: a snapshot to compare. */
export function snapshotTree(dir: string): Record<string, string> {
    const out: Record<string, string> = {};
    const walk = (d: string) => {
        for (const e of fs.readdirSync(d, { withFileTypes: true })) {
            const p = path.join(d, e.name);
            const rel = path.relative(dir, p);
            if (e.isDirectory()) {
                out[rel + "/"] = "";
                walk(p);
            } else out[rel] = fs.readFileSync(p, "utf8");
        }
    };
    walk(dir);
    return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** What the fake API answers for the agent's DaemonSet. */
export type DaemonSetState = "present" | "deleting" | "gone" | "down";

/**
 * The one Kubernetes API call the agent makes, `GET .../daemonsets/NAME`, over TLS (busybox wget
 * does not check the certificate, as in the image) on 127.0.0.1. `state` is what the cluster would
 * say; `requests` records each call with its Authorization header.
 */
export class FakeKubeApi {
    state: DaemonSetState = "present";
    readonly requests: Array<{ url: string; authorization?: string }> = [];
    private constructor(
        private readonly server: https.Server,
        readonly port: number,
    ) {}

    static async start(workDir: string): Promise<FakeKubeApi> {
        const key = path.join(workDir, "api.key");
        const crt = path.join(workDir, "api.crt");
        execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt, "-days", "1", "-subj", "/CN=127.0.0.1"], {
            stdio: "ignore",
        });
        const self: { api?: FakeKubeApi } = {};
        // busybox's own TLS (ssl_client) only completes a TLS 1.2 handshake whose signature algorithms include RSA+SHA1.
        const tls = { ciphers: "DEFAULT@SECLEVEL=0", maxVersion: "TLSv1.2" as const, sigalgs: "RSA+SHA256:RSA+SHA1:RSA-PSS+SHA256" };
        const server = https.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(crt), ...tls }, (req, res) => {
            self.api!.requests.push({ url: req.url ?? "", authorization: req.headers.authorization });
            const m = /^\/apis\/apps\/v1\/namespaces\/([^/]+)\/daemonsets\/([^/?]+)$/.exec(req.url ?? "");
            if (!m || self.api!.state === "gone") {
                res.writeHead(404, { "content-type": "application/json" }).end('{"kind":"Status","code":404}');
                return;
            }
            if (self.api!.state === "down") {
                res.writeHead(503).end();
                return;
            }
            const metadata: Record<string, string> = { name: m[2], namespace: m[1] };
            if (self.api!.state === "deleting") metadata.deletionTimestamp = new Date().toISOString();
            res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ kind: "DaemonSet", apiVersion: "apps/v1", metadata }));
        });
        await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
        self.api = new FakeKubeApi(server, (server.address() as AddressInfo).port);
        return self.api;
    }

    async stop(): Promise<void> {
        await new Promise<void>((resolve) => this.server.close(() => resolve()));
    }
}

/**
 * A PATH of the agent's applets, each a wrapper that runs the busybox applet, then counts it (a line
 * in `$KILL_DIR/commands`, in the order commands finish) and, at the `$KILL_AT`th, SIGKILLs its whole process
 * group: the agent and whatever it runs, as a container's kill would (`$KILL_SIGNAL`, e.g. STOP, instead). busybox sh runs every command
 * that is not a shell builtin through PATH, so each external command is a point to kill at.
 */
export function killingApplets(workDir: string): string {
    const dir = path.join(workDir, "killing-bin");
    if (fs.existsSync(dir)) return dir;
    const bb = ["/usr/bin/busybox", "/bin/busybox"].find((p) => fs.existsSync(p));
    if (!bb) throw new Error("busybox is not installed (apt-get install busybox)");
    fs.mkdirSync(dir, { recursive: true });
    for (const applet of NODE_AGENT_APPLETS) {
        const wrapper = [
            `#!${bb} sh`,
            `${appletProgram(bb, applet).join(" ")} "$@"`,
            `rc=$?`,
            // Builtins only from here (a spawn per command would slow every run): one line appended
            // (O_APPEND, atomic) and the lines counted. Two commands of a pipeline finishing together
            // may both count past KILL_AT; the first to make the marker kills.
            `echo "${applet} $*" >> "$KILL_DIR/commands"`,
            `n=0`,
            `while read -r _; do n=$((n + 1)); done < "$KILL_DIR/commands"`,
            `if [ "\${KILL_AT:-0}" -gt 0 ] && [ "$n" -ge "$KILL_AT" ] && ${bb} mkdir "$KILL_DIR/killed" 2>/dev/null; then kill -"\${KILL_SIGNAL:-KILL}" 0; fi`,
            `exit $rc`,
            ``,
        ].join("\n");
        fs.writeFileSync(path.join(dir, applet), wrapper, { mode: 0o755 });
    }
    return dir;
}

export interface KilledRun {
    /** Exit code, or null when it was killed. */
    code: number | null;
    signal: NodeJS.Signals | null;
    /** How many external commands finished before the end. */
    commands: number;
    /** The commands, one a line: `applet args`. */
    commandLog: string;
    output: string;
}

/**
 * Runs the agent in `mode` under {@link killingApplets}, in a process group of its own, killed at its
 * `killAt`th external command (0: never). `until` ends a run that does not end by itself (run mode,
 * once it sleeps): the test's own SIGKILL of the group, after which `commands` is how many it ran.
 */
export async function runKilledAt(
    pod: NodeScript,
    workDir: string,
    mode: "run" | "apply" | "remove",
    killAt: number,
    opts: { env?: Record<string, string>; until?: () => boolean; timeoutMs?: number; uncounted?: boolean } = {},
): Promise<KilledRun> {
    // uncounted: the plain applets, for a run that is only to be stopped (faster).
    const bin = opts.uncounted ? busyboxPath(workDir) : killingApplets(workDir);
    const killDir = fs.mkdtempSync(path.join(workDir, "kill-"));
    const outFile = path.join(killDir, "output");
    const fd = fs.openSync(outFile, "w");
    const bb = ["/usr/bin/busybox", "/bin/busybox"].find((p) => fs.existsSync(p))!;
    const child = spawn(bb, ["sh", pod.argv[1], mode], {
        env: { ...pod.env, ...opts.env, PATH: opts.uncounted ? pod.env.PATH : bin, KILL_DIR: killDir, KILL_AT: String(killAt) },
        stdio: ["ignore", fd, fd],
        detached: true,
    });
    fs.closeSync(fd);
    const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once("exit", (code, sig) => resolve([code, sig])));
    const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
    let done: [number | null, NodeJS.Signals | null] | undefined;
    void exited.then((r) => (done = r));
    const killGroup = () => {
        try {
            process.kill(-child.pid!, "SIGKILL");
        } catch {
            // already gone
        }
    };
    while (!done) {
        if (opts.until?.() || Date.now() > deadline) {
            killGroup();
            await exited;
            break;
        }
        await new Promise((r) => setTimeout(r, 10));
    }
    const [code, signal] = await exited;
    // Whatever it started in the background (run mode's sleep) goes with it.
    killGroup();
    const read = (f: string) => (fs.existsSync(f) ? fs.readFileSync(f, "utf8") : "");
    const result = {
        code,
        signal,
        commands: read(path.join(killDir, "commands")).split("\n").filter(Boolean).length,
        commandLog: read(path.join(killDir, "commands")),
        output: read(outFile),
    };
    fs.rmSync(killDir, { recursive: true, force: true });
    return result;
}

/** A run of the agent that stops (SIGSTOP, its whole process group) after its `pauseAt`th external command. */
export interface PausedRun {
    pid: number;
    /** Resolves once the group is stopped; false if the run ended (or `timeoutMs` passed) before that point. */
    paused(timeoutMs?: number): Promise<boolean>;
    /** SIGCONT to the whole group. */
    resume(): void;
    /** SIGTERM to the agent, up to `graceMs` for it to exit, then SIGKILL to the group; resolves with the exit code. */
    stop(graceMs?: number): Promise<number | null>;
    hasExited(): boolean;
    output(): string;
}

/**
 * Starts the agent in `mode` under {@link killingApplets} in a process group of its own, which
 * SIGSTOPs itself after its `pauseAt`th external command (0: never), as a frozen cgroup or a node
 * under pressure would stop a pod at any point.
 */
export function startPausedAt(
    pod: NodeScript,
    workDir: string,
    mode: "run" | "apply" | "remove",
    pauseAt: number,
    env: Record<string, string> = {},
): PausedRun {
    const bin = killingApplets(workDir);
    const killDir = fs.mkdtempSync(path.join(workDir, "pause-"));
    const outFile = path.join(killDir, "output");
    const fd = fs.openSync(outFile, "w");
    const bb = ["/usr/bin/busybox", "/bin/busybox"].find((p) => fs.existsSync(p))!;
    const child = spawn(bb, ["sh", pod.argv[1], mode], {
        env: { ...pod.env, ...env, PATH: bin, KILL_DIR: killDir, KILL_AT: String(pauseAt), KILL_SIGNAL: "STOP" },
        stdio: ["ignore", fd, fd],
        detached: true,
    });
    fs.closeSync(fd);
    const pid = child.pid!;
    let code: number | null | undefined;
    const exited = new Promise<number | null>((resolve) => child.once("exit", (c) => resolve((code = c))));
    const signalGroup = (sig: NodeJS.Signals) => {
        try {
            process.kill(-pid, sig);
        } catch {
            // already gone
        }
    };
    const stopped = () => {
        try {
            return fs
                .readFileSync(`/proc/${pid}/stat`, "utf8")
                .replace(/^.*\) /s, "")
                .startsWith("T");
        } catch {
            return false;
        }
    };
    return {
        pid,
        paused: async (timeoutMs = 20_000) => {
            const deadline = Date.now() + timeoutMs;
            while (Date.now() < deadline && code === undefined) {
                if (fs.existsSync(path.join(killDir, "killed")) && stopped()) return true;
                await new Promise((r) => setTimeout(r, 5));
            }
            return false;
        },
        resume: () => signalGroup("SIGCONT"),
        stop: async (graceMs = 10_000) => {
            if (code === undefined) {
                signalGroup("SIGCONT");
                try {
                    process.kill(pid, "SIGTERM");
                } catch {
                    // already gone
                }
                const timer = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), graceMs).unref());
                if ((await Promise.race([exited, timer])) === "timeout") signalGroup("SIGKILL");
            }
            const c = await exited;
            // Whatever it started in the background (run mode's sleep) goes with it.
            signalGroup("SIGKILL");
            return c;
        },
        hasExited: () => code !== undefined,
        output: () => (fs.existsSync(outFile) ? fs.readFileSync(outFile, "utf8") : ""),
    };
}

/** A temp dir with a `certs.d` standing for a node's, seeded with other tools' files, and the API the agent asks. */
export interface NodeWorkspace {
    work: string;
    certs: string;
    /** certs.d as it was before any agent ran. */
    original: Record<string, string>;
    api: FakeKubeApi;
    /** Stops every process started, the API, and removes the temp dir. */
    dispose(): Promise<void>;
}

/** The set-up every node-agent test starts from: `files` (relative to certs.d) are what the node already had. */
export async function nodeWorkspace(work: string, files: Record<string, string> = {}): Promise<NodeWorkspace> {
    const certs = path.join(work, "certs.d");
    fs.mkdirSync(certs, { recursive: true });
    for (const [rel, content] of Object.entries(files)) {
        fs.mkdirSync(path.dirname(path.join(certs, rel)), { recursive: true });
        fs.writeFileSync(path.join(certs, rel), content);
    }
    const original = snapshotTree(certs);
    const api = await FakeKubeApi.start(work);
    const dispose = async () => {
        await stopAll();
        await api.stop();
        fs.rmSync(work, { recursive: true, force: true });
    };
    return { work, certs, original, api, dispose };
}

/** Whether another process holds the node's lock (flock on certs.d) right now. */
export function nodeLockHeld(certs: string): boolean {
    const flock = ["/usr/bin/flock", "/bin/flock"].find((p) => fs.existsSync(p))!;
    try {
        execFileSync(flock, ["-n", certs, "true"], { stdio: "ignore" });
        return false;
    } catch {
        return true;
    }
}

/**
 * Holds the node's lock as another live pod would (flock on certs.d, by a sleeping process that
 * keeps the descriptor) until `release`, which kills it by its PID: a dead holder's lock is free.
 */
export async function holdNodeLock(certs: string, workDir: string): Promise<{ release(): Promise<void> }> {
    const flock = ["/usr/bin/flock", "/bin/flock"].find((p) => fs.existsSync(p))!;
    const proc = startProcess("/bin/sh", ["-c", 'exec 9< "$1" && "$2" 9 && exec sleep 1000', "sh", certs, flock], {
        logFile: path.join(workDir, "lock-holder.log"),
    });
    await waitFor(() => nodeLockHeld(certs), 5000, "another pod to hold the node's lock", { proc });
    return { release: () => proc.stop() };
}
