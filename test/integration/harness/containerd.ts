// Starts a private containerd 1.6 (Debian's) whose every path lives under a work dir, with the
// CRI plugin reading registry hosts from a certs.d dir, as a node's containerd would.

import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { criListImages } from "./cri";
import { startProcess, waitFor } from "./procs";

/** A running containerd. */
export interface ContainerdHandle {
    /** Path of the gRPC unix socket (CRI is served there too). */
    socket: string;
    /** containerd's root dir (content store, snapshots, metadata). */
    root: string;
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
export async function startContainerd(opts: { workDir: string; certsDir: string; env?: Record<string, string> }): Promise<ContainerdHandle> {
    const workDir = path.resolve(opts.workDir);
    const socket = path.join(workDir, "containerd.sock");
    if (Buffer.byteLength(`${socket}.ttrpc`) > 107) {
        throw new Error(`startContainerd: socket path too long for a unix socket (${socket}); use a shorter workDir`);
    }
    for (const d of ["root", "state", "opt", "cni/bin", "cni/net.d"]) fs.mkdirSync(path.join(workDir, d), { recursive: true });
    fs.mkdirSync(opts.certsDir, { recursive: true });
    const configFile = path.join(workDir, "containerd.toml");
    fs.writeFileSync(configFile, containerdConfig({ workDir, certsDir: path.resolve(opts.certsDir), socket }));

    const proc = startProcess("containerd", ["--config", configFile], {
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
    return { socket, root: path.join(workDir, "root") };
}
