// Process management for integration tests and the benchmark, which start real programs
// (the registry, containerd, ...) on 127.0.0.1. Every process started here is tracked and
// killed by PID: by `stop()`, by `stopAll()` and, as a last resort, on `process.on("exit")` and
// through the kernel's parent-death signal (setpriv).

import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";

/** A started process. */
export interface ProcHandle {
    pid: number;
    logFile: string;
    /** SIGTERM, wait up to 5 s, then SIGKILL; resolves once it has exited. */
    stop(): Promise<void>;
    /** The whole log written so far. */
    log(): string;
    /** Resolves with the exit code (null if killed by a signal). */
    exited: Promise<number | null>;
    /** True once the process has exited. */
    hasExited(): boolean;
}

const STOP_GRACE_MS = 5000;
const running = new Map<number, ProcHandle>();
let exitHookInstalled = false;

function installExitHook(): void {
    if (exitHookInstalled) return;
    exitHookInstalled = true;
    process.on("exit", () => {
        for (const pid of running.keys()) signal(pid, "SIGKILL");
    });
}

/** Finds an executable on PATH (or returns null). */
export function which(cmd: string, searchPath: string = process.env.PATH ?? ""): string | null {
    for (const dir of searchPath.split(path.delimiter)) {
        if (!dir) continue;
        const candidate = path.join(dir, cmd);
        try {
            if (fs.statSync(candidate).isFile()) {
                fs.accessSync(candidate, fs.constants.X_OK);
                return candidate;
            }
        } catch {
            // not here
        }
    }
    return null;
}

/** The minimal environment every started process gets (PATH always includes the sbin dirs). */
export function baseEnv(): Record<string, string> {
    const pathParts = (process.env.PATH ?? "").split(path.delimiter).filter(Boolean);
    for (const d of ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]) {
        if (!pathParts.includes(d)) pathParts.push(d);
    }
    return { PATH: pathParts.join(path.delimiter), HOME: process.env.HOME ?? "/root", LANG: "C.UTF-8" };
}

/** Starts a long-running program, its output appended to logFile, tracked until it exits. `env` is added to {@link baseEnv}. */
export function startProcess(cmd: string, args: readonly string[], opts: { env?: Record<string, string>; cwd?: string; logFile: string }): ProcHandle {
    installExitHook();
    fs.mkdirSync(path.dirname(opts.logFile), { recursive: true });
    let argv: string[] = [cmd, ...args];
    // By its full path: a process may be given a PATH without it (the push supervisor's busybox-only one).
    const setpriv = which("setpriv", baseEnv().PATH);
    if (setpriv !== null) argv = [setpriv, "--pdeathsig", "KILL", "--", ...argv];

    const fd = fs.openSync(opts.logFile, "a");
    fs.writeSync(fd, `### ${new Date().toISOString()} started: ${argv.join(" ")}\n`);
    const child = spawn(argv[0], argv.slice(1), { cwd: opts.cwd, env: { ...baseEnv(), ...opts.env }, stdio: ["ignore", fd, fd] });
    fs.closeSync(fd);

    let exitedFlag = false;
    let spawnError: Error | undefined;
    const exited = new Promise<number | null>((resolve) => {
        child.once("error", (err) => {
            spawnError = err;
            exitedFlag = true;
            resolve(null);
        });
        child.once("exit", (code) => {
            exitedFlag = true;
            resolve(code);
        });
    });
    const pid = child.pid;
    if (pid === undefined) throw new Error(`startProcess: could not start ${argv.join(" ")} (see ${opts.logFile})`);

    const handle: ProcHandle = {
        pid,
        logFile: opts.logFile,
        exited,
        hasExited: () => exitedFlag,
        log: () => {
            const text = fs.existsSync(opts.logFile) ? fs.readFileSync(opts.logFile, "utf8") : "";
            return spawnError ? `${text}\nspawn error: ${spawnError.message}` : text;
        },
        stop: async () => {
            if (!exitedFlag) {
                signal(pid, "SIGTERM");
                const timer = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), STOP_GRACE_MS).unref());
                if ((await Promise.race([exited, timer])) === "timeout" && !exitedFlag) {
                    signal(pid, "SIGKILL");
                    await exited;
                }
            }
            running.delete(pid);
        },
    };
    running.set(pid, handle);
    void exited.then(() => running.delete(pid));
    return handle;
}

function signal(pid: number, sig: NodeJS.Signals): void {
    try {
        process.kill(pid, sig);
    } catch {
        // already gone
    }
}

/** Stops every process started by {@link startProcess} that is still running (call it in afterAll). */
export async function stopAll(): Promise<void> {
    await Promise.all([...running.values()].map((p) => p.stop()));
}

/** Picks a free TCP port on 127.0.0.1 by binding port 0. */
export function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.unref();
        srv.once("error", reject);
        srv.listen(0, "127.0.0.1", () => {
            const port = (srv.address() as net.AddressInfo).port;
            srv.close(() => resolve(port));
        });
    });
}

/**
 * Polls fn every 50 ms until it returns a value other than undefined/false/null (and does not throw).
 * The error after timeoutMs names `what`, the last error and the log tail of `opts.proc`; waiting fails
 * early if that process exits.
 */
export async function waitFor<T>(
    fn: () => Promise<T | undefined | null | false> | T | undefined | null | false,
    timeoutMs: number,
    what: string,
    opts: { proc?: ProcHandle } = {},
): Promise<T> {
    const proc = opts.proc;
    const start = Date.now();
    let lastError = "";
    for (;;) {
        try {
            const v = await fn();
            if (v !== undefined && v !== null && v !== false) return v;
            lastError = "";
        } catch (e) {
            lastError = e instanceof Error ? e.message : String(e);
        }
        const elapsed = Date.now() - start;
        const died = proc?.hasExited() === true;
        if (died || elapsed >= timeoutMs) {
            const reason = died ? `process ${proc?.pid} exited (code ${String(await proc?.exited)}) after ${elapsed} ms` : `timed out after ${timeoutMs} ms`;
            const parts = [`waitFor(${what}): ${reason}`];
            if (lastError) parts.push(`last error: ${lastError}`);
            if (proc) parts.push(`--- log tail (${proc.logFile}) ---\n${proc.log().split("\n").slice(-40).join("\n")}`);
            throw new Error(parts.join("\n"));
        }
        await new Promise((r) => setTimeout(r, 50));
    }
}

/** Result of {@link runCommand}. */
export interface CommandResult {
    code: number | null;
    stdout: string;
    stderr: string;
}

/** Runs a short command to completion (killed after timeoutMs, default 5 min), capturing stdout and stderr. */
export function runCommand(
    cmd: string,
    args: readonly string[],
    opts: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {},
): Promise<CommandResult> {
    return new Promise((resolve, reject) => {
        const child = spawn(cmd, [...args], { cwd: opts.cwd, env: { ...baseEnv(), ...opts.env }, stdio: ["ignore", "pipe", "pipe"] });
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        child.stdout.on("data", (b: Buffer) => out.push(b));
        child.stderr.on("data", (b: Buffer) => err.push(b));
        const timer = setTimeout(() => child.pid !== undefined && signal(child.pid, "SIGKILL"), opts.timeoutMs ?? 300_000);
        timer.unref();
        child.once("error", (e) => {
            clearTimeout(timer);
            reject(new Error(`${cmd}: ${e.message}`));
        });
        child.once("close", (code) => {
            clearTimeout(timer);
            resolve({ code, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") });
        });
    });
}
