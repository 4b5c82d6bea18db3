// Runs the hosted registry's push container as its pod would: the generated command (the supervisor
// script from the ConfigMap, run by busybox sh) with only busybox's applets and the real registry on
// PATH, the settings file and the registry configs it names rebased onto a local root.

import * as fs from "node:fs";
import * as path from "node:path";
import YAML from "yaml";
import type { FakeCloud, RecordedResource } from "../../support/fake-cloud";
import { registryBinary } from "./distribution";
import { materialize, podLoopback, rebaseYamlPaths } from "./pod";
import { startProcess, waitFor, which } from "./procs";
import { httpsStatus, type RegistryHandle } from "./registry";

/** The applets the supervisor and the registry image's busybox give it. */
const APPLETS = ["sh", "sleep", "date", "df", "awk", "grep", "wget"];
/**
 * flock: the image's busybox (Alpine's) has the applet; Debian's busybox lacks it, so util-linux's,
 * which takes the same options (-s, -x, -n, FD) and makes the same flock(2) calls.
 */
const UTIL_LINUX = ["flock"];

export interface PushSupervisorOptions {
    cloud: FakeCloud;
    deployment: RecordedResource;
    /** The pod's directory: the same one the pull container uses, so both see one volume. */
    root: string;
    /** `127.x.y.z:PORT`: the Service's ClusterIP and push port. */
    listen: string;
    caFile: string;
    /** What `date -u +%H:%M` answers in the container; default: the real clock. */
    clock?: string;
    /** Seconds between the supervisor's looks at the schedule and the fill level; the script's default is 15. */
    tickSeconds?: number;
    /** Runs the container's command inside another (e.g. `unshare` with a small tmpfs on the volume); gets and returns argv. */
    wrap?: (argv: string[]) => string[];
    /** Settings-file values replaced (e.g. a shorter `gc_holdoff_seconds`), by key. */
    settings?: Record<string, string>;
    /** Tools left off the container's PATH (e.g. `flock`, as in an image without it). */
    without?: string[];
    /** How long a writer waits for the writer lock before it exits; the script's default is 7200. */
    lockWaitSeconds?: number;
}

/** Starts the push container's supervisor; resolves once the push port answers over TLS. */
export async function startPushSupervisor(o: PushSupervisorOptions): Promise<RegistryHandle> {
    const local = materialize(o.cloud, o.deployment, o.root, {}, "push");
    const [shell, script, settingsPath] = local.container.command as string[];
    if (shell !== "sh") throw new Error(`unexpected push command ${local.container.command}`);
    const [ip, port] = o.listen.split(":");
    const work = path.join(o.root, `push-${port}`);
    fs.mkdirSync(work, { recursive: true });
    const bin = binDir(path.join(work, "bin"), o.clock, o.without ?? []);

    // The settings' paths rebased; the configs they name rebased into files of their own.
    let debugAddr = "";
    // The pod's loopback (127.0.0.1) is elsewhere on this machine; a listener on every address of the
    // pod is on the pod's address.
    const loopbackOfPod = podLoopback(ip);
    const settings = fs
        .readFileSync(local.rebase(settingsPath), "utf8")
        .split("\n")
        .map((line) => {
            const [key, value] = [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)];
            if (o.settings && key in o.settings) return `${key}=${o.settings[key]}`;
            // The read-only config exists only with garbage collection on.
            if (key.endsWith("_config") && fs.existsSync(local.rebase(value))) {
                const yaml = rebaseYamlPaths(fs.readFileSync(local.rebase(value), "utf8"), local.rebase);
                const debug = (YAML.parse(yaml) as { http?: { debug?: { addr?: string } } }).http?.debug?.addr ?? "";
                debugAddr = `${debug.startsWith("127.0.0.1:") ? loopbackOfPod : ip}:${debug.split(":").pop()}`;
                const file = path.join(work, path.basename(value));
                fs.writeFileSync(file, yaml);
                return `${key}=${file}`;
            }
            if (key === "health_url") return `${key}=${value.replace(/127\.0\.0\.1(:\d+)/, `${loopbackOfPod}$1`)}`;
            return value.startsWith("/") ? `${key}=${local.rebase(value)}` : line;
        })
        .join("\n");
    const settingsFile = path.join(work, "push-supervisor.conf");
    fs.writeFileSync(settingsFile, settings);

    const [cmd, ...args] = (o.wrap ?? ((a: string[]) => a))([path.join(bin, "sh"), local.rebase(script), settingsFile]);
    const proc = startProcess(cmd, args, {
        env: {
            ...local.env,
            PATH: bin,
            // The pod's listeners on the Service's loopback IP instead of every interface.
            REGISTRY_HTTP_ADDR: o.listen,
            REGISTRY_HTTP_DEBUG_ADDR: debugAddr,
            PUSH_SUPERVISOR_TICK_SECONDS: String(o.tickSeconds ?? 1),
            ...(o.lockWaitSeconds === undefined ? {} : { PUSH_SUPERVISOR_LOCK_WAIT_SECONDS: String(o.lockWaitSeconds) }),
        },
        cwd: work,
        logFile: path.join(work, "push.log"),
    });
    const url = `https://${o.listen}`;
    try {
        await waitFor(async () => (await httpsStatus(`${url}/`, { caFile: o.caFile, timeoutMs: 2000 })) > 0, 20_000, `push supervisor on ${url}`, { proc });
    } catch (e) {
        await proc.stop();
        throw e;
    }
    return { proc, url, configFile: path.join(work, "push.yml"), stop: () => proc.stop() };
}

/**
 * busybox applets and `registry`; the registry is started under setpriv's parent-death signal, so a
 * supervisor killed by a failing test leaves no registry behind. `clock` replaces `date -u +%H:%M`.
 */
function binDir(bin: string, clock: string | undefined, without: string[]): string {
    fs.rmSync(bin, { recursive: true, force: true });
    fs.mkdirSync(bin, { recursive: true });
    for (const applet of APPLETS) fs.symlinkSync("/bin/busybox", path.join(bin, applet));
    for (const tool of UTIL_LINUX.filter((t) => !without.includes(t))) {
        const found = which(tool, "/usr/bin:/bin");
        if (!found) throw new Error(`${tool} (util-linux) is not installed: the push supervisor needs it`);
        fs.symlinkSync(found, path.join(bin, tool));
    }
    const setpriv = which("setpriv", "/usr/bin:/bin");
    const registry = setpriv ? `exec ${setpriv} --pdeathsig KILL -- ${registryBinary()} "$@"` : `exec ${registryBinary()} "$@"`;
    fs.writeFileSync(path.join(bin, "registry"), `#!${path.join(bin, "sh")}\n${registry}\n`, { mode: 0o755 });
    if (clock) {
        fs.rmSync(path.join(bin, "date"));
        const date = `case "$*" in *%H:%M*) echo ${clock} ;; *) exec /bin/busybox date "$@" ;; esac`;
        fs.writeFileSync(path.join(bin, "date"), `#!${path.join(bin, "sh")}\n${date}\n`, { mode: 0o755 });
    }
    return bin;
}
