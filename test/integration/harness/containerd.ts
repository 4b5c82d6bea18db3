// Starts a private containerd whose every path lives under a work dir, with the CRI plugin reading
// registry hosts from a certs.d dir, as a node's containerd would: Debian 12's 1.6 with the harness's
// own config, or any build (1.7 from trixie, 2.x from sid, unpacked by scripts/test-all) with a real
// node's config file moved onto the work dir.

import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { parse, stringify } from "smol-toml";
import { criListImages } from "./cri";
import { startProcess, waitFor } from "./procs";

/** A running containerd. */
export interface ContainerdHandle {
    /** Path of the gRPC unix socket (CRI is served there too). */
    socket: string;
    /** containerd's root dir (content store, snapshots, metadata). */
    root: string;
    /** The config file it runs with. */
    configFile: string;
    /** Stops this containerd (stopAll() does too). */
    stop(): Promise<void>;
}

/** The containerd lines the tests run: Debian 12's (bookworm), trixie's and sid's. */
export type ContainerdLine = "1.6" | "1.7" | "2.x";

/** Where scripts/test-all unpacks the containerd of each Debian suite (.gitignore'd). */
export const CONTAINERD_CACHE = path.resolve(__dirname, "../../../.cache/containerd");

// Every line comes unpacked from its package, never installed: a machine with Docker CE keeps its runtime.
const LINE_SUITES: Record<ContainerdLine, string> = { "1.6": "bookworm", "1.7": "trixie", "2.x": "sid" };

function cachedBinary(suite: string): string | null {
    const bin = path.join(CONTAINERD_CACHE, suite, "root", "usr", "bin", "containerd");
    return fs.existsSync(bin) ? bin : null;
}

/** A containerd build found here, with what `containerd --version` says. */
export interface ContainerdBuild {
    line: ContainerdLine;
    binary: string;
    /** e.g. "2.1.9" */
    version: string;
    /** major.minor, for test names: "2.1" */
    label: string;
    /** The whole `containerd --version` line, recorded in the test log. */
    versionLine: string;
}

/** The build of a containerd line, or one line saying why there is none (and how to get it). */
export function containerdBuild(line: ContainerdLine): ContainerdBuild | { missing: string } {
    const suite = LINE_SUITES[line];
    const binary = cachedBinary(suite);
    const fetch = `scripts/test-all (it unpacks ${suite}'s containerd into ${CONTAINERD_CACHE})`;
    if (binary === null) return { missing: `containerd ${line} (${suite}) is not here: run ${fetch}` };
    let versionLine: string;
    try {
        versionLine = execFileSync(binary, ["--version"], { encoding: "utf8", timeout: 10_000 }).trim();
    } catch (e) {
        return { missing: `containerd ${line} at ${binary} does not run (${e instanceof Error ? e.message : String(e)}): run ${fetch}` };
    }
    const version = /\bv?(\d+\.\d+\.\d+)/.exec(versionLine.replace(/^containerd\s+\S+\s+/, ""))?.[1];
    if (version === undefined) return { missing: `cannot tell the version of ${binary} from "${versionLine}"` };
    const label = version.split(".").slice(0, 2).join(".");
    const expected = line === "2.x" ? "2." : `${line}.`;
    if (!version.startsWith(expected)) return { missing: `${binary} is containerd ${version}, not ${line}: run ${fetch}` };
    return { line, binary, version, label, versionLine };
}

/** A real node's containerd config, and the node directory its config_path names for the agent's files. */
export interface NodeContainerdConfig {
    /** The config file's text, as the distribution writes it. */
    toml: string;
    /** The node directory the agent writes to (e.g. /etc/containerd/certs.d): becomes certsDir. */
    certsPath: string;
}

// Plugins a CRI image pull never needs; disabling them keeps start-up quiet and fast.
const DISABLED_PLUGINS = [
    "io.containerd.snapshotter.v1.aufs",
    "io.containerd.snapshotter.v1.btrfs",
    "io.containerd.snapshotter.v1.devmapper",
    "io.containerd.snapshotter.v1.zfs",
    "io.containerd.internal.v1.tracing",
    "io.containerd.tracing.processor.v1.otlp",
];

const q = (s: string): string => JSON.stringify(s); // TOML basic strings accept JSON escapes

/** The containerd 1.6 config (version 2): every path under workDir, CRI reading hosts from certsDir. */
function containerdConfig(o: { workDir: string; certsDir: string; socket: string }): string {
    const w = o.workDir;
    return [
        "version = 2",
        `root = ${q(path.join(w, "root"))}`,
        `state = ${q(path.join(w, "state"))}`,
        `disabled_plugins = [${DISABLED_PLUGINS.map(q).join(", ")}]`,
        "",
        "[grpc]",
        `  address = ${q(o.socket)}`,
        "",
        "[ttrpc]",
        `  address = ${q(`${o.socket}.ttrpc`)}`,
        "",
        "[debug]",
        '  level = "info"',
        "",
        "[plugins]",
        '  [plugins."io.containerd.internal.v1.opt"]',
        `    path = ${q(path.join(w, "opt"))}`,
        '  [plugins."io.containerd.grpc.v1.cri"]',
        "    disable_tcp_service = true",
        '    stream_server_address = "127.0.0.1"',
        '    stream_server_port = "0"',
        '    [plugins."io.containerd.grpc.v1.cri".containerd]',
        '      snapshotter = "overlayfs"',
        '    [plugins."io.containerd.grpc.v1.cri".cni]',
        `      bin_dir = ${q(path.join(w, "cni", "bin"))}`,
        `      conf_dir = ${q(path.join(w, "cni", "net.d"))}`,
        '    [plugins."io.containerd.grpc.v1.cri".registry]',
        `      config_path = ${q(o.certsDir)}`,
        "",
    ].join("\n");
}

type Table = Record<string, any>;
const table = (parent: Table, key: string): Table => (parent[key] ??= {}) as Table;

/**
 * A node's config with every path moved under workDir, so it runs here as it does on the node: root,
 * state, sockets, opt, CNI and CDI dirs, no proxy plugins, imports or base runtime specs (files the
 * node has), NRI off (its socket is in /var/run), the streaming server on a free port, and config_path
 * with the node's certs dir replaced by certsDir and every other directory by an empty one here. The
 * registry settings (config_path's shape, discard_unpacked_layers, use_local_image_pull) are kept.
 */
export function localizeNodeConfig(node: NodeContainerdConfig, o: { workDir: string; certsDir: string; socket: string }): string {
    const w = o.workDir;
    const c = parse(node.toml) as Table;
    const v3 = c.version === 3;
    c.root = path.join(w, "root");
    c.state = path.join(w, "state");
    delete c.imports;
    delete c.proxy_plugins;
    c.disabled_plugins = [...((c.disabled_plugins as string[] | undefined) ?? []), ...DISABLED_PLUGINS, "io.containerd.nri.v1.nri"];
    table(c, "grpc").address = o.socket;
    table(c, "ttrpc").address = `${o.socket}.ttrpc`;
    const plugins = table(c, "plugins");
    table(plugins, "io.containerd.internal.v1.opt").path = path.join(w, "opt");
    const cri = table(plugins, "io.containerd.grpc.v1.cri");
    cri.stream_server_address = "127.0.0.1";
    cri.stream_server_port = "0";
    // v3 moved the runtime settings to their own plugin; v2 files keep them in the CRI plugin.
    const runtime = v3 ? table(plugins, "io.containerd.cri.v1.runtime") : cri;
    const cni = table(runtime, "cni");
    delete cni.bin_dir;
    delete cni.bin_dirs;
    if (v3) cni.bin_dirs = [path.join(w, "cni", "bin")];
    else cni.bin_dir = path.join(w, "cni", "bin");
    cni.conf_dir = path.join(w, "cni", "net.d");
    runtime.cdi_spec_dirs = [path.join(w, "cdi")];
    for (const r of Object.values((runtime.containerd as Table | undefined)?.runtimes ?? {})) delete (r as Table).base_runtime_spec;

    const registry = ((v3 ? plugins["io.containerd.cri.v1.images"] : cri) as Table | undefined)?.registry as Table | undefined;
    const configPath = registry?.config_path as string | undefined;
    if (registry && configPath) {
        registry.config_path = configPath
            .split(":")
            .map((dir, i) => {
                if (dir.replace(/\/+$/, "") === node.certsPath) return o.certsDir;
                const other = path.join(w, `other-certs-${i}`);
                fs.mkdirSync(other, { recursive: true });
                return other;
            })
            .join(":");
    }
    return stringify(c);
}

/** The containerd program of a line; throws saying how to get it when it is missing. */
export function containerdBinary(line: ContainerdLine): string {
    const build = containerdBuild(line);
    if ("missing" in build) throw new Error(build.missing);
    return build.binary;
}

function canConnect(socket: string): Promise<boolean> {
    return new Promise((resolve) => {
        const s = net.connect(socket);
        s.once("connect", () => {
            s.destroy();
            resolve(true);
        });
        s.once("error", () => resolve(false));
    });
}

/**
 * Writes a config under workDir, starts containerd with `env` added (e.g. SSL_CERT_FILE standing for the
 * node's trust store) and waits until CRI answers. It is stopped by stopAll().
 */
export async function startContainerd(opts: {
    workDir: string;
    certsDir: string;
    env?: Record<string, string>;
    /** The containerd program. Default: Debian 12's 1.6, unpacked into .cache/ by scripts/test-all. */
    binary?: string;
    /** A real node's config to run with (see {@link localizeNodeConfig}). Default: the harness's own 1.6 config. */
    nodeConfig?: NodeContainerdConfig;
}): Promise<ContainerdHandle> {
    const workDir = path.resolve(opts.workDir);
    const socket = path.join(workDir, "containerd.sock");
    if (Buffer.byteLength(`${socket}.ttrpc`) > 107) {
        throw new Error(`startContainerd: socket path too long for a unix socket (${socket}); use a shorter workDir`);
    }
    for (const d of ["root", "state", "opt", "cni/bin", "cni/net.d", "cdi"]) fs.mkdirSync(path.join(workDir, d), { recursive: true });
    fs.mkdirSync(opts.certsDir, { recursive: true });
    const configFile = path.join(workDir, "containerd.toml");
    const paths = { workDir, certsDir: path.resolve(opts.certsDir), socket };
    fs.writeFileSync(configFile, opts.nodeConfig ? localizeNodeConfig(opts.nodeConfig, paths) : containerdConfig(paths));

    // containerd creates /run/containerd whatever its state dir is (1.7+: the shims' socket dir is
    // hard-coded, containerd issue 10502): it runs in a mount namespace of its own with a private /run,
    // so nothing is left on the machine. unshare and sh exec, so the PID stays containerd's.
    const binary = opts.binary ?? containerdBinary("1.6");
    const argv = [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        'mount -t tmpfs -o mode=0755 tmpfs /run && exec "$0" "$@"',
        binary,
        "--config",
        configFile,
    ];
    const proc = startProcess(argv[0], argv.slice(1), {
        cwd: workDir,
        logFile: path.join(workDir, "containerd.log"),
        // containerd reads no proxy, so nothing else is needed from the environment
        env: { ...opts.env, TMPDIR: path.join(workDir, "state") },
    });
    try {
        await waitFor(async () => (await canConnect(socket)) && (await criListImages(socket, 2000)) !== undefined, 20_000, `containerd CRI on ${socket}`, {
            proc,
        });
    } catch (e) {
        await proc.stop();
        throw e;
    }
    return { socket, root: path.join(workDir, "root"), configFile, stop: () => proc.stop() };
}
