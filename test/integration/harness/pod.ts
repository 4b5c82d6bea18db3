/**
 * Turns a pod spec the program generated into a local process: every mounted ConfigMap, Secret and
 * volume is written under a root directory at its mount path (ConfigMaps and Secrets in kubelet's
 * atomic-writer layout, `items` honoured), env comes from the container spec
 * (secretKeyRef included), and absolute paths in the generated config are rebased onto that root.
 * Nothing is hand-copied: change the Deployment or DaemonSet and these tests see the change.
 */
import { randomUUID } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import YAML from "yaml";
import type { FakeCloud, RecordedResource } from "../../support/fake-cloud";

export interface LocalContainer {
    /** The container spec as the program asked for it. */
    container: any;
    /** The pod spec. */
    pod: any;
    /** Environment with secretKeyRef values resolved and mount paths rebased. */
    env: Record<string, string>;
    /** Maps an absolute path inside the container to its place under root. */
    rebase(p: string): string;
    /** Each mount path, rebased. */
    mounts: Record<string, string>;
}

function byName(cloud: FakeCloud, type: string, name: string): RecordedResource {
    const found = cloud.byType(type).filter((r) => r.outputs.metadata?.name === name);
    if (found.length !== 1) throw new Error(`expected one ${type} named ${name}, found ${found.length}`);
    return found[0];
}

function dataOf(r: RecordedResource): Record<string, string> {
    const out: Record<string, string> = { ...(r.inputs.data ?? {}) };
    if (r.type === "kubernetes:core/v1:Secret") {
        for (const [k, v] of Object.entries<string>(r.inputs.data ?? {})) out[k] = Buffer.from(v, "base64").toString();
    }
    return { ...out, ...(r.inputs.stringData ?? {}) };
}

/** A ConfigMap or Secret volume's files as kubelet projects them: every key, or only `items` (key -> path). */
function projectedFiles(
    source: { defaultMode?: number; items?: Array<{ key: string; path: string; mode?: number }> },
    data: Record<string, string>,
    volume: string,
): Array<{ path: string; content: string; mode: number }> {
    const mode = source.defaultMode ?? 0o644;
    if (!source.items) return Object.entries(data).map(([key, content]) => ({ path: key, content, mode }));
    return source.items.map((item) => {
        if (!(item.key in data)) throw new Error(`volume ${volume} projects key ${item.key}, which its source does not have`);
        if (path.isAbsolute(item.path) || item.path.split("/").includes("..")) throw new Error(`volume ${volume} projects to ${item.path}`);
        return { path: item.path, content: data[item.key], mode: item.mode ?? mode };
    });
}

/**
 * Writes a volume's files the way kubelet's atomic writer does, so a program that lists the directory
 * or keeps a file open sees what it would in a pod: the files in a timestamped directory `..<ts>`, a
 * `..data` symlink to it, and one symlink per top-level name through `..data`. Writing again (a pod
 * restarted on the same root, an updated Secret) swaps `..data` with a rename and drops the old directory.
 */
function writeAtomically(dir: string, files: Array<{ path: string; content: string; mode: number }>): void {
    const stamp = `..${new Date().toISOString().replace(/[-:.]/g, "_")}.${randomUUID().slice(0, 8)}`;
    for (const f of files) {
        const p = path.join(dir, stamp, f.path);
        fs.mkdirSync(path.dirname(p), { recursive: true });
        fs.writeFileSync(p, f.content, { mode: f.mode });
        fs.chmodSync(p, f.mode);
    }
    fs.mkdirSync(path.join(dir, stamp), { recursive: true });
    const dataLink = path.join(dir, "..data");
    const old = linkTarget(dataLink);
    fs.rmSync(path.join(dir, "..data_tmp"), { force: true });
    fs.symlinkSync(stamp, path.join(dir, "..data_tmp"));
    fs.renameSync(path.join(dir, "..data_tmp"), dataLink);
    const names = new Set(files.map((f) => f.path.split("/")[0]));
    for (const name of names) {
        const link = path.join(dir, name);
        if (linkTarget(link) === path.join("..data", name)) continue;
        fs.rmSync(link, { recursive: true, force: true });
        fs.symlinkSync(path.join("..data", name), link);
    }
    // Only our own links to names the new version no longer has; anything else in dir is not ours.
    for (const e of fs.readdirSync(dir)) if (!names.has(e) && linkTarget(path.join(dir, e)) === path.join("..data", e)) fs.rmSync(path.join(dir, e));
    if (old && old !== stamp) fs.rmSync(path.join(dir, old), { recursive: true, force: true });
}

/** Where a symlink points, or undefined for anything else (or nothing). */
function linkTarget(p: string): string | undefined {
    try {
        return fs.readlinkSync(p);
    } catch {
        return undefined;
    }
}

/**
 * Materialises `containerName` of a workload (Deployment or DaemonSet) under `root`. `hostPaths`
 * maps a hostPath volume's node path to a local directory standing for it.
 */
export function materialize(
    cloud: FakeCloud,
    workload: RecordedResource,
    root: string,
    hostPaths: Record<string, string> = {},
    containerName?: string,
    /** What the downward API tells this pod about itself; a new pod gets a new UID. */
    pod: { uid: string; name: string } = { uid: randomUUID(), name: "local-pod" },
): LocalContainer {
    const spec = workload.inputs.spec.template.spec;
    const container = containerName ? spec.containers.find((c: any) => c.name === containerName) : spec.containers[0];
    const volumes: Record<string, any> = Object.fromEntries(spec.volumes.map((v: any) => [v.name, v]));
    const mounts: Record<string, string> = {};

    for (const m of container.volumeMounts) {
        const v = volumes[m.name];
        if (!v) throw new Error(`mount ${m.name} has no volume`);
        let dir = path.join(root, m.mountPath);
        if (v.hostPath) {
            // A node directory not given explicitly stands under root, created as DirectoryOrCreate does.
            dir = hostPaths[v.hostPath.path] ?? path.join(root, "node", v.hostPath.path);
            if (v.hostPath.type === "DirectoryOrCreate") fs.mkdirSync(dir, { recursive: true });
        } else {
            fs.mkdirSync(dir, { recursive: true });
            const source = v.configMap
                ? byName(cloud, "kubernetes:core/v1:ConfigMap", v.configMap.name)
                : v.secret
                  ? byName(cloud, "kubernetes:core/v1:Secret", v.secret.secretName)
                  : undefined;
            if (source) {
                writeAtomically(dir, projectedFiles(v.configMap ?? v.secret, dataOf(source), m.name));
            } else if (v.projected) {
                // Only what kubelet would put there for a ServiceAccount token: a token nobody checks.
                const files = v.projected.sources.map((src: any) => {
                    if (!src.serviceAccountToken) throw new Error(`volume ${m.name} projects a source this harness does not know: ${JSON.stringify(src)}`);
                    return { path: src.serviceAccountToken.path, content: `fake-token-for-${pod.uid}`, mode: v.projected.defaultMode ?? 0o644 };
                });
                writeAtomically(dir, files);
            } else if (!v.persistentVolumeClaim && !v.emptyDir) {
                throw new Error(`volume ${m.name} has a kind this harness does not know: ${JSON.stringify(v)}`);
            }
        }
        mounts[m.mountPath] = dir;
    }

    // Longest mount path first, so /a/b wins over /a.
    const order = Object.keys(mounts).sort((a, b) => b.length - a.length);
    const rebase = (p: string): string => {
        for (const mp of order) if (p === mp || p.startsWith(mp + "/")) return mounts[mp] + p.slice(mp.length);
        return p;
    };

    const env: Record<string, string> = {};
    for (const e of container.env ?? []) {
        if (e.value !== undefined) env[e.name] = rebase(e.value);
        else if (e.valueFrom?.secretKeyRef) {
            const ref = e.valueFrom.secretKeyRef;
            env[e.name] = dataOf(byName(cloud, "kubernetes:core/v1:Secret", ref.name))[ref.key];
        } else if (e.valueFrom?.fieldRef) {
            const field: Record<string, string> = {
                "metadata.uid": pod.uid,
                "metadata.name": pod.name,
                "metadata.namespace": workload.inputs.metadata?.namespace,
            };
            const value = field[e.valueFrom.fieldRef.fieldPath];
            if (value === undefined)
                throw new Error(`env ${e.name} asks the downward API for ${e.valueFrom.fieldRef.fieldPath}, which this harness does not know`);
            env[e.name] = value;
        } else throw new Error(`env ${e.name} has a source this harness does not know`);
    }
    return { container, pod: spec, env, rebase, mounts };
}

/** Rebases every absolute path in a YAML document (the registry's config.yml) onto the local root. */
export function rebaseYamlPaths(yamlText: string, rebase: (p: string) => string): string {
    const walk = (v: unknown): unknown => {
        if (typeof v === "string") return v.startsWith("/") ? rebase(v) : v;
        if (Array.isArray(v)) return v.map(walk);
        if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
        return v;
    };
    return YAML.stringify(walk(YAML.parse(yamlText)));
}

/**
 * Where the loopback of the pod on `podIp` (127.0.0.1 inside that pod) is on this machine: 127.1.x.y
 * for a pod on 127.0.x.y. Another address on the same lo, so what listens there is not reachable at
 * the pod's address, as in a pod's own network namespace.
 */
export function podLoopback(podIp: string): string {
    const [, , c, d] = podIp.split(".");
    return `127.1.${c}.${d}`;
}
