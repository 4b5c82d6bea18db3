// Runs Debian's nginx from a cache pod's coalescer container, by PID, on loopback, with its own
// prefix and config: /etc/nginx is never read, and nothing but the test's directory is written.

import * as fs from "node:fs";
import * as path from "node:path";
import { COALESCER_BACKEND_PORT } from "../../../components/coalescer";
import { REGISTRY_CONTAINER_PORT } from "../../../components/registry";
import type { FakeCloud, RecordedResource } from "../../support/fake-cloud";
import { materialize } from "./pod";
import { startProcess, waitFor, type ProcHandle } from "./procs";
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

/**
 * The generated nginx.conf made local: nginx listens on `listen` instead of the pod's port, reaches the
 * registry at `backend` instead of the pod's loopback, and every absolute path under a mount is rebased.
 */
export function localNginxConfig(conf: string, rebase: (p: string) => string, listen: string, backend: string): string {
    const swap = (text: string, from: string, to: string) => {
        if (!text.includes(from)) throw new Error(`the generated nginx.conf has no "${from}"`);
        return text.replace(from, to);
    };
    const moved = swap(
        swap(conf, `listen ${REGISTRY_CONTAINER_PORT} ssl;`, `listen ${listen} ssl;`),
        `server 127.0.0.1:${COALESCER_BACKEND_PORT};`,
        `server ${backend};`,
    );
    return moved.replace(/(?<=[\s=])\/[^\s;"']+/g, (p) => rebase(p));
}

/**
 * Starts nginx as the cache pod's `coalescer` container runs it (its command, its config from the
 * ConfigMap), under `root`, and waits until it answers GET / over TLS verified against caFile.
 * Workers run as root here: the pod's files are the test's, in a directory only root may enter.
 */
export async function startCoalescerFromDeployment(
    cloud: FakeCloud,
    deployment: RecordedResource,
    root: string,
    listen: string,
    backend: string,
    caFile: string,
): Promise<ProcHandle> {
    const local = materialize(cloud, deployment, root, {}, "coalescer");
    const command = local.container.command as string[];
    const confPath = command[command.indexOf("-c") + 1];
    if (command[0] !== "nginx" || !confPath) throw new Error(`unexpected coalescer command ${command.join(" ")}`);
    const conf = localNginxConfig(fs.readFileSync(local.rebase(confPath), "utf8"), local.rebase, listen, backend);
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
    return proc;
}
