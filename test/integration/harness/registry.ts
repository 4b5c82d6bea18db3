// Starts the real CNCF distribution registry (the release the default image ships, see distribution.ts)
// on 127.0.0.1, over TLS.

import * as fs from "node:fs";
import * as https from "node:https";
import * as path from "node:path";
import { registryBinary } from "./distribution";
import { startProcess, waitFor, type ProcHandle } from "./procs";

/** A running registry. */
export interface RegistryHandle {
    proc: ProcHandle;
    /** "https://127.x.y.z:PORT" */
    url: string;
    configFile: string;
    /** Stops the registry process. */
    stop(): Promise<void>;
}

/** Makes one HTTPS request, verifying the server against the CA in caFile; resolves with the status. */
export function httpsStatus(url: string, opts: { caFile: string; headers?: Record<string, string>; timeoutMs?: number }): Promise<number> {
    return new Promise((resolve, reject) => {
        const timeout = opts.timeoutMs ?? 5000;
        const req = https.request(url, { headers: opts.headers, timeout, agent: false, ca: fs.readFileSync(opts.caFile) }, (res) => {
            res.resume();
            res.on("end", () => resolve(res.statusCode ?? 0));
            res.on("error", reject);
        });
        req.on("timeout", () => req.destroy(new Error(`timeout after ${timeout} ms: ${url}`)));
        req.on("error", reject);
        req.end();
    });
}

/** Basic-auth header value for user:password. */
export function basicAuth(username: string, password: string): string {
    return `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
}

/**
 * Writes configYaml into workDir, runs `registry serve CONFIG` with env (REGISTRY_HTTP_ADDR set
 * to addr, "127.x.y.z:PORT"), and waits until it answers GET / over TLS verified against caFile.
 */
export async function startRegistry(opts: {
    configYaml: string;
    env: Record<string, string>;
    workDir: string;
    addr: string;
    caFile: string;
    /** A command the registry runs under, e.g. `unshare ... sh -c '...; exec "$@"' sh` (it must exec its arguments). Default: none. */
    launcher?: readonly string[];
}): Promise<RegistryHandle> {
    // Loopback only: 127.0.0.0/8 stands for ClusterIPs in the tests.
    const port = /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}:(\d+)$/.exec(opts.addr)?.[1];
    if (port === undefined) throw new Error(`startRegistry: addr must be a loopback 127.x.y.z:PORT, got ${opts.addr}`);
    fs.mkdirSync(opts.workDir, { recursive: true });
    const configFile = path.join(opts.workDir, `registry-${port}.yml`);
    fs.writeFileSync(configFile, opts.configYaml);
    const url = `https://${opts.addr}`;
    const [cmd, ...args] = [...(opts.launcher ?? []), registryBinary(), "serve", configFile];
    const proc = startProcess(cmd, args, {
        env: { ...opts.env, REGISTRY_HTTP_ADDR: opts.addr },
        cwd: opts.workDir,
        logFile: path.join(opts.workDir, `registry-${port}.log`),
    });
    try {
        await waitFor(async () => (await httpsStatus(`${url}/`, { caFile: opts.caFile, timeoutMs: 2000 })) > 0, 15_000, `registry on ${url} answering GET /`, {
            proc,
        });
    } catch (e) {
        await proc.stop();
        throw e;
    }
    return { proc, url, configFile, stop: () => proc.stop() };
}
