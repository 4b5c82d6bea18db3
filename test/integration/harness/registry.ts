// Starts the real CNCF distribution registry 2.8 (Debian's docker-registry) on 127.0.0.1.

import * as fs from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import * as path from "node:path";
import { startProcess, waitFor, type ProcHandle } from "./procs";

/** Options for {@link startRegistry}. */
export interface StartRegistryOptions {
    /** Contents of the config file (registry 2.8 refuses to start without one). */
    configYaml: string;
    /** REGISTRY_* variables etc.; REGISTRY_HTTP_ADDR is always set to `addr`. */
    env: Record<string, string>;
    workDir: string;
    /** "127.0.0.1:PORT" */
    addr: string;
    /** CA that signed the registry's certificate: the readiness probe then verifies TLS with it. */
    caFile?: string;
    /** Force TLS on/off; by default TLS is assumed when REGISTRY_HTTP_TLS_CERTIFICATE is set or the config has a `tls:` key. */
    tls?: boolean;
    /** Defaults to WORKDIR/registry-PORT.log */
    logFile?: string;
    /** Readiness timeout (default 15000 ms). */
    timeoutMs?: number;
    /** Also passed to startProcess: run in a private mount namespace with this file as /etc/hosts. */
    unshareHostsFile?: string;
}

/** A running registry. */
export interface RegistryHandle {
    proc: ProcHandle;
    /** "https://127.0.0.1:PORT" or "http://127.0.0.1:PORT" */
    url: string;
    addr: string;
    configFile: string;
    /** Stops the registry process. */
    stop(): Promise<void>;
}

/** Result of {@link httpRequest}. */
export interface HttpResult {
    status: number;
    headers: http.IncomingHttpHeaders;
    body: Buffer;
}

/** Options for {@link httpRequest}. */
export interface HttpRequestOptions {
    method?: string;
    headers?: Record<string, string>;
    /** PEM CA to trust; without it TLS is not verified. */
    caFile?: string;
    timeoutMs?: number;
    body?: Buffer | string;
}

/** Makes one HTTP(S) request with node's http/https (TLS verified against caFile if given, else unverified). */
export function httpRequest(url: string, opts: HttpRequestOptions = {}): Promise<HttpResult> {
    return new Promise((resolve, reject) => {
        const u = new URL(url);
        const isHttps = u.protocol === "https:";
        const common = {
            method: opts.method ?? "GET",
            headers: opts.headers,
            timeout: opts.timeoutMs ?? 5000,
            agent: false as const,
        };
        const onResponse = (res: http.IncomingMessage): void => {
            const chunks: Buffer[] = [];
            res.on("data", (c: Buffer) => chunks.push(c));
            res.on("end", () =>
                resolve({
                    status: res.statusCode ?? 0,
                    headers: res.headers,
                    body: Buffer.concat(chunks),
                }),
            );
            res.on("error", reject);
        };
        const req = isHttps
            ? https.request(
                  u,
                  opts.caFile !== undefined ? { ...common, ca: fs.readFileSync(opts.caFile) } : { ...common, rejectUnauthorized: false },
                  onResponse,
              )
            : http.request(u, common, onResponse);
        req.on("timeout", () => req.destroy(new Error(`timeout after ${common.timeout} ms: ${url}`)));
        req.on("error", reject);
        req.end(opts.body);
    });
}

/** Basic-auth header value for user:password. */
export function basicAuth(username: string, password: string): string {
    return `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
}

/** Minimal registry 2.8 config storing under rootDir (everything else can come from REGISTRY_* env vars). */
export function minimalRegistryConfig(rootDir: string): string {
    return ["version: 0.1", "log:", "  level: info", "storage:", "  filesystem:", `    rootdirectory: ${rootDir}`, ""].join("\n");
}

/** Writes the config into workDir, runs `docker-registry serve CONFIG` and waits until GET / answers. */
export async function startRegistry(opts: StartRegistryOptions): Promise<RegistryHandle> {
    // Loopback only: 127.0.0.0/8 stands for ClusterIPs in the tests.
    const m = /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}:(\d+)$/.exec(opts.addr);
    if (m === null) throw new Error(`startRegistry: addr must be a loopback 127.x.y.z:PORT, got ${opts.addr}`);
    const port = m[1];
    fs.mkdirSync(opts.workDir, { recursive: true });
    const configFile = path.join(opts.workDir, `registry-${port}.yml`);
    fs.writeFileSync(configFile, opts.configYaml);

    const env: Record<string, string> = {
        ...opts.env,
        REGISTRY_HTTP_ADDR: opts.addr,
    };
    const hasStorage = /^storage:/m.test(opts.configYaml) || Object.keys(env).some((k) => k.startsWith("REGISTRY_STORAGE"));
    if (!hasStorage) env.REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY = path.join(opts.workDir, `registry-${port}-data`);

    const tls = opts.tls ?? (env.REGISTRY_HTTP_TLS_CERTIFICATE !== undefined || /^\s+tls:/m.test(opts.configYaml) || opts.caFile !== undefined);
    const url = `${tls ? "https" : "http"}://${opts.addr}`;

    const proc = startProcess("docker-registry", ["serve", configFile], {
        env,
        cwd: opts.workDir,
        logFile: opts.logFile ?? path.join(opts.workDir, `registry-${port}.log`),
        unshareHostsFile: opts.unshareHostsFile,
    });
    try {
        await waitFor(
            async () => {
                const r = await httpRequest(`${url}/`, {
                    caFile: opts.caFile,
                    timeoutMs: 2000,
                });
                return r.status > 0;
            },
            opts.timeoutMs ?? 15_000,
            `registry on ${url} answering GET /`,
            { proc },
        );
    } catch (e) {
        await proc.stop();
        throw e;
    }
    return { proc, url, addr: opts.addr, configFile, stop: () => proc.stop() };
}
