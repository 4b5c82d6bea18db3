// Process management for integration tests and benchmarks that start real programs
// (docker-registry, containerd, ...) on 127.0.0.1. Every process started here is
// tracked and killed by PID: by `stop()`, by `stopAll()` and, as a last resort, on
// `process.on("exit")` and through the kernel's parent-death signal (setpriv).

import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";

/** Options for {@link startProcess}. */
export interface StartProcessOptions {
    /** Variables added on top of a minimal base environment (PATH, HOME, LANG). */
    env?: Record<string, string>;
    /** Inherit the whole environment of this Node process instead of the minimal base. */
    inheritEnv?: boolean;
    cwd?: string;
    /** stdout and stderr of the process are appended here; `log()` reads it back. */
    logFile: string;
    /**
     * Run the command in a private mount namespace in which this file is bind-mounted
     * over /etc/hosts (needs root). The real /etc/hosts is never touched.
     */
    unshareHostsFile?: string;
    /** Kill the process with SIGKILL if this Node process dies (default true, uses setpriv). */
    dieWithParent?: boolean;
}

/** A started process. */
export interface ProcHandle {
    pid: number;
    /** The full command line that was executed (after wrapping). */
    argv: readonly string[];
    logFile: string;
    /** SIGTERM, wait up to graceMs (default 5000), then SIGKILL; resolves once it has exited. */
    stop(graceMs?: number): Promise<void>;
    /** The whole log written so far. */
    log(): string;
    /** Resolves with the exit code (null if killed by a signal). */
    exited: Promise<number | null>;
    /** True once the process has exited. */
    hasExited(): boolean;
}

const running = new Map<number, ProcHandle>();
let exitHookInstalled = false;

function installExitHook(): void {
    if (exitHookInstalled) return;
    exitHookInstalled = true;
    process.on("exit", () => {
        for (const pid of running.keys()) {
            try {
                process.kill(pid, "SIGKILL");
            } catch {
                // already gone
            }
        }
    });
}

/** Finds an executable on PATH (or returns null). */
export function which(cmd: string, searchPath: string = process.env.PATH ?? ""): string | null {
    if (cmd.includes("/")) return isExecutable(cmd) ? cmd : null;
    for (const dir of searchPath.split(path.delimiter)) {
        if (!dir) continue;
        const candidate = path.join(dir, cmd);
        if (isExecutable(candidate)) return candidate;
    }
    return null;
}

function isExecutable(p: string): boolean {
    try {
        const st = fs.statSync(p);
        if (!st.isFile()) return false;
        fs.accessSync(p, fs.constants.X_OK);
        return true;
    } catch {
        return false;
    }
}

/** The minimal environment every started process gets (PATH always includes the sbin dirs). */
export function baseEnv(): Record<string, string> {
    const pathParts = (process.env.PATH ?? "").split(path.delimiter).filter(Boolean);
    for (const d of ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]) {
        if (!pathParts.includes(d)) pathParts.push(d);
    }
    return {
        PATH: pathParts.join(path.delimiter),
        HOME: process.env.HOME ?? "/root",
        LANG: "C.UTF-8",
    };
}

/** Last `lines` lines of a text. */
export function tail(text: string, lines = 40): string {
    const all = text.split("\n");
    return all.slice(Math.max(0, all.length - lines)).join("\n");
}

/** Starts a long-running program with its output in logFile; it is tracked until it exits. */
export function startProcess(cmd: string, args: readonly string[], opts: StartProcessOptions): ProcHandle {
    installExitHook();
    fs.mkdirSync(path.dirname(opts.logFile), { recursive: true });

    let argv: string[] = [cmd, ...args];
    if (opts.unshareHostsFile !== undefined) {
        if (!fs.existsSync(opts.unshareHostsFile)) {
            throw new Error(`startProcess: hosts file ${opts.unshareHostsFile} does not exist`);
        }
        // unshare execs sh, which execs the command: the PID stays the same all along.
        argv = [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            'mount --bind "$0" /etc/hosts && exec "$@"',
            path.resolve(opts.unshareHostsFile),
            ...argv,
        ];
    }
    if (opts.dieWithParent !== false && which("setpriv", baseEnv().PATH) !== null) {
        argv = ["setpriv", "--pdeathsig", "KILL", "--", ...argv];
    }

    const env = {
        ...(opts.inheritEnv ? filterEnv(process.env) : baseEnv()),
        ...(opts.env ?? {}),
    };
    const fd = fs.openSync(opts.logFile, "a");
    fs.writeSync(fd, `### ${new Date().toISOString()} started: ${argv.join(" ")}\n`);
    const child = spawn(argv[0], argv.slice(1), {
        cwd: opts.cwd,
        env,
        stdio: ["ignore", fd, fd],
    });
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
    if (pid === undefined) {
        throw new Error(`startProcess: could not start ${argv.join(" ")} (see ${opts.logFile})`);
    }

    const handle: ProcHandle = {
        pid,
        argv,
        logFile: opts.logFile,
        exited,
        hasExited: () => exitedFlag,
        log: () => {
            let text = "";
            try {
                text = fs.readFileSync(opts.logFile, "utf8");
            } catch {
                // no log yet
            }
            return spawnError ? `${text}\nspawn error: ${spawnError.message}` : text;
        },
        stop: async (graceMs = 5000) => {
            if (!exitedFlag) {
                signal(pid, "SIGTERM");
                const timer = new Promise<"timeout">((resolve) => {
                    const t = setTimeout(() => resolve("timeout"), graceMs);
                    t.unref();
                });
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

function filterEnv(env: NodeJS.ProcessEnv): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
    return out;
}

/** Stops every process started by {@link startProcess} that is still running (call it in afterAll). */
export async function stopAll(graceMs = 5000): Promise<void> {
    await Promise.all([...running.values()].map((p) => p.stop(graceMs)));
}

/** PIDs of the processes started here that are still running. */
export function runningPids(): number[] {
    return [...running.keys()];
}

/** Picks a free TCP port on 127.0.0.1 by binding port 0. */
export function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.unref();
        srv.once("error", reject);
        srv.listen(0, "127.0.0.1", () => {
            const addr = srv.address();
            if (addr === null || typeof addr === "string") {
                srv.close();
                reject(new Error("freePort: no port"));
                return;
            }
            const port = addr.port;
            srv.close(() => resolve(port));
        });
    });
}

/** Options for {@link waitFor}. */
export interface WaitForOptions {
    /** The process whose log tail goes into the timeout error; waiting fails early if it exits. */
    proc?: ProcHandle;
    intervalMs?: number;
}

/**
 * Polls fn until it returns a value other than undefined/false/null (and does not throw);
 * the error after timeoutMs names `what`, the last error and the process log tail.
 */
export async function waitFor<T>(
    fn: () => Promise<T | undefined | null | false> | T | undefined | null | false,
    timeoutMs: number,
    what: string,
    opts: WaitForOptions = {},
): Promise<T> {
    const start = Date.now();
    const interval = opts.intervalMs ?? 50;
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
        const died = opts.proc?.hasExited() === true;
        if (died || elapsed >= timeoutMs) {
            const reason = died
                ? `process ${opts.proc?.pid} exited (code ${String(await opts.proc?.exited)}) after ${elapsed} ms`
                : `timed out after ${timeoutMs} ms`;
            const parts = [`waitFor(${what}): ${reason}`];
            if (lastError) parts.push(`last error: ${lastError}`);
            if (opts.proc) parts.push(`--- log tail (${opts.proc.logFile}) ---\n${tail(opts.proc.log())}`);
            throw new Error(parts.join("\n"));
        }
        await new Promise((r) => setTimeout(r, interval));
    }
}

/** Result of {@link runCommand}. */
export interface CommandResult {
    code: number | null;
    stdout: string;
    stderr: string;
}

/** Runs a short command to completion (killed after timeoutMs), capturing stdout and stderr. */
export function runCommand(
    cmd: string,
    args: readonly string[],
    opts: {
        env?: Record<string, string>;
        cwd?: string;
        timeoutMs?: number;
        input?: string | Buffer;
    } = {},
): Promise<CommandResult> {
    return new Promise((resolve, reject) => {
        const child = spawn(cmd, [...args], {
            cwd: opts.cwd,
            env: { ...baseEnv(), ...(opts.env ?? {}) },
            stdio: [opts.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
        });
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        child.stdout?.on("data", (b: Buffer) => out.push(b));
        child.stderr?.on("data", (b: Buffer) => err.push(b));
        const timer = setTimeout(() => {
            if (child.pid !== undefined) signal(child.pid, "SIGKILL");
        }, opts.timeoutMs ?? 300_000);
        timer.unref();
        child.once("error", (e) => {
            clearTimeout(timer);
            reject(new Error(`${cmd}: ${e.message}`));
        });
        child.once("close", (code) => {
            clearTimeout(timer);
            resolve({
                code,
                stdout: Buffer.concat(out).toString("utf8"),
                stderr: Buffer.concat(err).toString("utf8"),
            });
        });
        if (opts.input !== undefined) child.stdin?.end(opts.input);
    });
}
