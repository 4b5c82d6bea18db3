// Runs Debian's nginx from a cache pod's coalescer container, by PID, on loopback, with its own
// prefix and config: /etc/nginx is never read, and nothing but the test's directory is written.

import * as fs from "node:fs";
import * as path from "node:path";
import { COALESCER_BACKEND_PORT, COALESCER_METRICS_PORT } from "../../../components/coalescer";
import { REGISTRY_CONTAINER_PORT } from "../../../components/registry";
import type { FakeCloud, RecordedResource } from "../../support/fake-cloud";
import { materialize, podLoopback } from "./pod";
import { freePort, startProcess, waitFor, type ProcHandle } from "./procs";
import { httpsStatus } from "./registry";

/** Where scripts/test-all unpacks Debian's nginx (never installed: the package would start a system web server). */
export const NGINX_BINARY = path.resolve(__dirname, "../../../.cache/nginx/root/usr/sbin/nginx");

/** Null when nginx is unpacked here, else one line saying how to get it. */
export function missingNginx(): string | null {
    return fs.existsSync(NGINX_BINARY) ? null : `nginx is not unpacked at ${NGINX_BINARY}: run scripts/test-all`;
}

function nginxBinary(): string {
    const missing = missingNginx();
    if (missing !== null) throw new Error(missing);
    return NGINX_BINARY;
}

/** The eviction counters' server in a generated nginx.conf: `loopback` (the pod's), `pod` (every address of it), or none. */
export function metricsListener(conf: string): "loopback" | "pod" | undefined {
    if (conf.includes(`listen 127.0.0.1:${COALESCER_METRICS_PORT};`)) return "loopback";
    if (conf.includes(`listen ${COALESCER_METRICS_PORT};`)) return "pod";
    return undefined;
}

/**
 * The generated nginx.conf made local: nginx listens on `listen` instead of the pod's port (and on
 * `metricsListen` for the eviction counters, when it serves them), reaches the registry at `backend`
 * instead of the pod's loopback, and every absolute path under a mount is rebased.
 */
export function localNginxConfig(conf: string, rebase: (p: string) => string, listen: string, backend: string, metricsListen?: string): string {
    const swap = (text: string, from: string, to: string) => {
        if (!text.includes(from)) throw new Error(`the generated nginx.conf has no "${from}"`);
        return text.replace(from, to);
    };
    let moved = swap(
        swap(conf, `listen ${REGISTRY_CONTAINER_PORT} ssl;`, `listen ${listen} ssl;`),
        `server 127.0.0.1:${COALESCER_BACKEND_PORT};`,
        `server ${backend};`,
    );
    const metrics = metricsListener(conf);
    if (metrics !== undefined) {
        if (metricsListen === undefined) throw new Error("the generated nginx.conf serves the eviction counters: give it an address");
        moved = swap(moved, `listen ${metrics === "loopback" ? "127.0.0.1:" : ""}${COALESCER_METRICS_PORT};`, `listen ${metricsListen};`);
    }
    return moved.replace(/(?<=[\s=])\/[^\s;"']+/g, (p) => rebase(p));
}

/** A running coalescer, and where it serves the eviction counters (a free port, on the pod's loopback or address) if it does. */
export type CoalescerHandle = ProcHandle & { metricsAddr?: string };

/**
 * Starts nginx as the cache pod's `coalescer` container runs it (its command, its config from the
 * ConfigMap), under `root`, and waits until it answers GET / over TLS verified against caFile.
 * Workers run as root here: the pod's files are the test's, in a directory only root may enter.
 * The counters' server, if any, gets a free port on {@link podLoopback} of `listen`'s address (a pod's
 * loopback) or on that address itself (every address of the pod).
 */
export async function startCoalescerFromDeployment(
    cloud: FakeCloud,
    deployment: RecordedResource,
    root: string,
    listen: string,
    backend: string,
    caFile: string,
): Promise<CoalescerHandle> {
    const local = materialize(cloud, deployment, root, {}, "coalescer");
    const command = local.container.command as string[];
    const confPath = command[command.indexOf("-c") + 1];
    if (command[0] !== "nginx" || !confPath) throw new Error(`unexpected coalescer command ${command.join(" ")}`);
    const generated = fs.readFileSync(local.rebase(confPath), "utf8");
    const podIp = listen.split(":")[0];
    const where = metricsListener(generated);
    const metricsAddr = where === undefined ? undefined : `${where === "loopback" ? podLoopback(podIp) : podIp}:${await freePort()}`;
    const conf = localNginxConfig(generated, local.rebase, listen, backend, metricsAddr);
    const prefix = path.join(root, "nginx");
    fs.mkdirSync(prefix, { recursive: true });
    const confFile = path.join(prefix, "nginx.conf");
    fs.writeFileSync(confFile, conf);
    const global = command[command.indexOf("-g") + 1];
    const args = ["-p", prefix, "-e", "stderr", "-c", confFile, "-g", `${global} user root root;`];
    const proc = startProcess(nginxBinary(), args, { logFile: path.join(prefix, "nginx.log") });
    try {
        await waitFor(async () => (await httpsStatus(`https://${listen}/`, { caFile, timeoutMs: 2000 })) > 0, 15_000, `nginx on ${listen}`, { proc });
    } catch (e) {
        await proc.stop();
        throw e;
    }
    return Object.assign(proc, { metricsAddr });
}
