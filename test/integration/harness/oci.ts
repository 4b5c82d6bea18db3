// Builds an OCI image layout by hand (no Docker), reproducibly: the same input gives the same digests.

import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { runCommand } from "./procs";

/** A layer made of the given files (paths relative to the image root; parent dirs are created). */
export interface FilesLayer {
    files: Record<string, Buffer | string>;
}

/** A layer holding one file of incompressible, seed-determined bytes. */
export interface RandomLayer {
    randomBytes: number;
    /** Default: `${tag}#${layerIndex}`. */
    seed?: string;
    /** Path of the file in the image (default `random-<index>.bin`). */
    fileName?: string;
}

/** One layer of {@link buildOciImage}. */
export type LayerSpec = FilesLayer | RandomLayer;

/** Options of {@link buildOciImage}. */
export interface BuildOciImageOptions {
    layers: LayerSpec[];
    /** Written as org.opencontainers.image.ref.name in index.json (skopeo's `oci:DIR:TAG`). */
    tag: string;
    /** Image config `config` section (default: Cmd ["/bin/sh"]). */
    config?: Record<string, unknown>;
}

/** A descriptor as used in OCI manifests and indexes. */
export interface OciDescriptor {
    mediaType: string;
    digest: string;
    size: number;
    annotations?: Record<string, string>;
}

/** What {@link buildOciImage} made. */
export interface BuiltOciImage {
    dir: string;
    /** `oci:DIR:TAG`, ready for skopeo. */
    ref: string;
    manifestDigest: string;
    configDigest: string;
    layers: Array<OciDescriptor & { diffId: string }>;
    /** Bytes a pull transfers: manifest + config + compressed layers. */
    totalBytes: number;
}

/** OCI media types used here. */
export const MEDIA_TYPES = {
    index: "application/vnd.oci.image.index.v1+json",
    manifest: "application/vnd.oci.image.manifest.v1+json",
    config: "application/vnd.oci.image.config.v1+json",
    layerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
} as const;

const CHUNK = 1 << 20;

/** Writes n incompressible bytes, deterministic from seed: SHAKE256(seed ":" chunkIndex) per 1 MiB chunk. */
export async function writeSeededRandomFile(file: string, n: number, seed: string): Promise<void> {
    const out = fs.createWriteStream(file);
    const done = new Promise<void>((resolve, reject) => {
        out.once("finish", resolve);
        out.once("error", reject);
    });
    for (let off = 0, i = 0; off < n; off += CHUNK, i++) {
        const len = Math.min(CHUNK, n - off);
        const chunk = createHash("shake256", { outputLength: len }).update(`${seed}:${i}`).digest();
        if (!out.write(chunk)) await new Promise<void>((r) => out.once("drain", () => r()));
    }
    out.end();
    await done;
}

/** sha256 of a file, as "sha256:<hex>". */
export async function sha256File(file: string): Promise<string> {
    const h = createHash("sha256");
    for await (const chunk of fs.createReadStream(file)) h.update(chunk as Buffer);
    return `sha256:${h.digest("hex")}`;
}

function sha256(data: Buffer): string {
    return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

async function must(cmd: string, args: string[], cwd?: string): Promise<void> {
    const r = await runCommand(cmd, args, { cwd, timeoutMs: 600_000 });
    if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${String(r.code)}): ${r.stderr}`);
}

function blobPath(dir: string, digest: string): string {
    return path.join(dir, "blobs", ...digest.split(":"));
}

async function addBlobFromFile(dir: string, file: string): Promise<{ digest: string; size: number }> {
    const digest = await sha256File(file);
    const size = fs.statSync(file).size;
    const dest = blobPath(dir, digest);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.renameSync(file, dest);
    return { digest, size };
}

function addBlob(dir: string, data: Buffer): { digest: string; size: number } {
    const digest = sha256(data);
    const dest = blobPath(dir, digest);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.writeFileSync(dest, data);
    return { digest, size: data.length };
}

async function buildLayer(dir: string, work: string, spec: LayerSpec, index: number, tag: string): Promise<OciDescriptor & { diffId: string }> {
    const root = path.join(work, `layer-${index}`);
    fs.mkdirSync(root, { recursive: true, mode: 0o755 });
    if ("files" in spec) {
        for (const [rel, content] of Object.entries(spec.files)) {
            const clean = path.posix.normalize(rel.replace(/^\/+/, ""));
            if (clean.startsWith("..") || clean === ".") throw new Error(`buildOciImage: bad file path ${rel}`);
            const p = path.join(root, clean);
            fs.mkdirSync(path.dirname(p), { recursive: true, mode: 0o755 });
            fs.writeFileSync(p, content, { mode: 0o644 });
        }
    } else {
        const name = spec.fileName ?? `random-${index}.bin`;
        const p = path.join(root, name);
        fs.mkdirSync(path.dirname(p), { recursive: true, mode: 0o755 });
        await writeSeededRandomFile(p, spec.randomBytes, spec.seed ?? `${tag}#${index}`);
    }
    // Normalize modes whatever the umask was.
    await must("chmod", ["-R", "u=rwX,go=rX", root]);
    const entries = fs.readdirSync(root).sort();
    const tarFile = path.join(work, `layer-${index}.tar`);
    await must(
        "tar",
        ["--sort=name", "--mtime=@0", "--owner=0", "--group=0", "--numeric-owner", "--format=gnu", "-C", root, "-cf", tarFile, "--", ...entries],
        work,
    );
    const diffId = await sha256File(tarFile);
    await must("gzip", ["-n", tarFile]); // -> layer-N.tar.gz, tar removed
    fs.rmSync(root, { recursive: true, force: true });
    const blob = await addBlobFromFile(dir, `${tarFile}.gz`);
    return {
        mediaType: MEDIA_TYPES.layerGzip,
        digest: blob.digest,
        size: blob.size,
        diffId,
    };
}

/** Builds an OCI image layout in dir (added to its index.json under `tag`) and returns its digests. */
export async function buildOciImage(dir: string, opts: BuildOciImageOptions): Promise<BuiltOciImage> {
    fs.mkdirSync(path.join(dir, "blobs", "sha256"), { recursive: true });
    const work = fs.mkdtempSync(path.join(dir, ".build-"));
    try {
        // Two cores: building layers concurrently halves the gzip time of big random layers.
        const layers = await Promise.all(opts.layers.map((spec, i) => buildLayer(dir, work, spec, i, opts.tag)));

        const config = {
            created: "1970-01-01T00:00:00Z",
            architecture: "amd64",
            os: "linux",
            config: opts.config ?? { Cmd: ["/bin/sh"] },
            rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
            history: layers.map((_, i) => ({
                created: "1970-01-01T00:00:00Z",
                created_by: `harness layer ${i}`,
            })),
        };
        const configBlob = addBlob(dir, Buffer.from(JSON.stringify(config)));

        const manifest = {
            schemaVersion: 2,
            mediaType: MEDIA_TYPES.manifest,
            config: {
                mediaType: MEDIA_TYPES.config,
                digest: configBlob.digest,
                size: configBlob.size,
            },
            layers: layers.map((l) => ({
                mediaType: l.mediaType,
                digest: l.digest,
                size: l.size,
            })),
        };
        const manifestBlob = addBlob(dir, Buffer.from(JSON.stringify(manifest)));

        fs.writeFileSync(path.join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
        const indexFile = path.join(dir, "index.json");
        let manifests: OciDescriptor[] = [];
        if (fs.existsSync(indexFile)) {
            const old = JSON.parse(fs.readFileSync(indexFile, "utf8")) as {
                manifests?: OciDescriptor[];
            };
            manifests = (old.manifests ?? []).filter((m) => m.annotations?.["org.opencontainers.image.ref.name"] !== opts.tag);
        }
        manifests.push({
            mediaType: MEDIA_TYPES.manifest,
            digest: manifestBlob.digest,
            size: manifestBlob.size,
            annotations: { "org.opencontainers.image.ref.name": opts.tag },
        });
        fs.writeFileSync(
            indexFile,
            JSON.stringify({
                schemaVersion: 2,
                mediaType: MEDIA_TYPES.index,
                manifests,
            }),
        );

        return {
            dir,
            ref: `oci:${dir}:${opts.tag}`,
            manifestDigest: manifestBlob.digest,
            configDigest: configBlob.digest,
            layers,
            totalBytes: manifestBlob.size + configBlob.size + layers.reduce((a, l) => a + l.size, 0),
        };
    } finally {
        fs.rmSync(work, { recursive: true, force: true });
    }
}
