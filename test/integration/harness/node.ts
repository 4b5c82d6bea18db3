/**
 * Runs the node-config DaemonSet's own command, with its own ConfigMap (the agent script), Secret
 * (the files it writes) and env, under busybox (the shell of the registry image it runs in), against
 * a directory that stands for the node's certs.d.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { FakeCloud } from "../../support/fake-cloud";
import { materialize } from "./pod";
import { ProcHandle, runCommand, startProcess, waitFor, type CommandResult } from "./procs";

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

/** A directory of busybox applets, so cp, mv, cmp and grep behave as in the image. */
function busyboxPath(workDir: string): string {
    const dir = path.join(workDir, "busybox-bin");
    if (!fs.existsSync(dir)) {
        fs.mkdirSync(dir, { recursive: true });
        const bb = ["/usr/bin/busybox", "/bin/busybox"].find((p) => fs.existsSync(p));
        if (!bb) throw new Error("busybox is not installed (apt-get install busybox)");
        for (const applet of ["sh", "cat", "cp", "mv", "rm", "rmdir", "mkdir", "grep", "cmp", "touch", "sleep", "kill", "echo", "test", "[", "readlink"]) {
            fs.symlinkSync(bb, path.join(dir, applet));
        }
    }
    return dir;
}

/**
 * The DaemonSet's script as it would run on a node whose certs.d is `nodeCertsDir`. Each call is a
 * new pod with its own mounts, as in a rollout, where the old pod keeps what it was started with.
 */
export function nodeScript(cloud: FakeCloud, workDir: string, nodeCertsDir: string): NodeScript {
    const ds = cloud.one("kubernetes:apps/v1:DaemonSet");
    const hostPath = ds.inputs.spec.template.spec.volumes.find((v: { hostPath?: { path: string } }) => v.hostPath).hostPath.path;
    const local = materialize(cloud, ds, fs.mkdtempSync(path.join(workDir, "pod-")), { [hostPath]: nodeCertsDir });
    const [shell, script, mode] = local.container.command as string[];
    if (shell !== "/bin/sh") throw new Error(`the DaemonSet runs ${shell}, not /bin/sh`);
    const bin = busyboxPath(workDir);
    // busybox applets first; the rest of PATH only so the harness finds setpriv.
    const env = { ...local.env, PATH: `${bin}:/usr/sbin:/usr/bin:/sbin:/bin` };
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
