// Builds an OCI image layout by hand (no Docker), reproducibly: the same input gives the same digests.

import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { runCommand } from "./procs";

/** One layer: the given files (paths relative to the image root), or one file of incompressible bytes. */
export type LayerSpec = { files: Record<string, string> } | { randomBytes: number };

/** A blob as OCI manifests describe it. */
export interface OciDescriptor {
    mediaType: string;
    digest: string;
    size: number;
}

/** What {@link buildOciImage} made. */
export interface BuiltOciImage {
    /** `oci:DIR:TAG`, ready for skopeo. */
    ref: string;
    manifestDigest: string;
    configDigest: string;
    layers: OciDescriptor[];
    /** Bytes a pull transfers: manifest + config + compressed layers. */
    totalBytes: number;
}

const MEDIA_TYPES = {
    index: "application/vnd.oci.image.index.v1+json",
    manifest: "application/vnd.oci.image.manifest.v1+json",
    config: "application/vnd.oci.image.config.v1+json",
    layerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
} as const;

/** Writes n incompressible bytes, deterministic from seed: SHAKE256(seed ":" chunkIndex) per 1 MiB chunk. */
async function writeSeededRandomFile(file: string, n: number, seed: string): Promise<void> {
    const out = fs.createWriteStream(file);
    const done = new Promise<void>((resolve, reject) => out.once("finish", resolve).once("error", reject));
    for (let off = 0, i = 0; off < n; off += 1 << 20, i++) {
        const chunk = createHash("shake256", { outputLength: Math.min(1 << 20, n - off) })
            .update(`${seed}:${i}`)
            .digest();
        if (!out.write(chunk)) await new Promise<void>((r) => out.once("drain", () => r()));
    }
    out.end();
    await done;
}

async function sha256File(file: string): Promise<string> {
    const h = createHash("sha256");
    for await (const chunk of fs.createReadStream(file)) h.update(chunk as Buffer);
    return `sha256:${h.digest("hex")}`;
}

async function must(cmd: string, args: string[], cwd?: string): Promise<void> {
    const r = await runCommand(cmd, args, { cwd, timeoutMs: 600_000 });
    if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${String(r.code)}): ${r.stderr}`);
}

const blobPath = (dir: string, digest: string) => path.join(dir, "blobs", ...digest.split(":"));

function addBlob(dir: string, mediaType: string, data: Buffer): OciDescriptor {
    const digest = `sha256:${createHash("sha256").update(data).digest("hex")}`;
    fs.writeFileSync(blobPath(dir, digest), data);
    return { mediaType, digest, size: data.length };
}

/** Tars (reproducibly: sorted, mtime 0, root-owned) and gzips (-n) one layer into the layout's blobs. */
async function buildLayer(dir: string, work: string, spec: LayerSpec, index: number, tag: string): Promise<OciDescriptor & { diffId: string }> {
    const root = path.join(work, `layer-${index}`);
    fs.mkdirSync(root, { recursive: true });
    const files = "files" in spec ? Object.entries(spec.files) : [[`random-${index}.bin`, undefined] as const];
    for (const [rel, content] of files) {
        const p = path.join(root, rel);
        fs.mkdirSync(path.dirname(p), { recursive: true });
        if (content !== undefined) fs.writeFileSync(p, content);
        else await writeSeededRandomFile(p, (spec as { randomBytes: number }).randomBytes, `${tag}#${index}`);
    }
    // Normalize modes whatever the umask was.
    await must("chmod", ["-R", "u=rwX,go=rX", root]);
    const tarFile = path.join(work, `layer-${index}.tar`);
    const tarArgs = ["--sort=name", "--mtime=@0", "--owner=0", "--group=0", "--numeric-owner", "--format=gnu", "-C", root, "-cf", tarFile];
    await must("tar", [...tarArgs, "--", ...fs.readdirSync(root).sort()], work);
    const diffId = await sha256File(tarFile);
    await must("gzip", ["-n", tarFile]); // -> layer-N.tar.gz, tar removed
    const digest = await sha256File(`${tarFile}.gz`);
    const size = fs.statSync(`${tarFile}.gz`).size;
    fs.renameSync(`${tarFile}.gz`, blobPath(dir, digest));
    return { mediaType: MEDIA_TYPES.layerGzip, digest, size, diffId };
}

/** Builds an OCI image layout in a new dir holding one image, tagged `tag`. */
export async function buildOciImage(dir: string, opts: { tag: string; layers: LayerSpec[] }): Promise<BuiltOciImage> {
    fs.mkdirSync(path.join(dir, "blobs", "sha256"), { recursive: true });
    const work = fs.mkdtempSync(path.join(dir, ".build-"));
    try {
        // Two cores: building layers concurrently halves the gzip time of big random layers.
        const built = await Promise.all(opts.layers.map((spec, i) => buildLayer(dir, work, spec, i, opts.tag)));
        const layers = built.map(({ mediaType, digest, size }) => ({ mediaType, digest, size }));
        const config = addBlob(
            dir,
            MEDIA_TYPES.config,
            Buffer.from(
                JSON.stringify({
                    created: "1970-01-01T00:00:00Z",
                    architecture: "amd64",
                    os: "linux",
                    config: { Cmd: ["/bin/sh"] },
                    rootfs: { type: "layers", diff_ids: built.map((l) => l.diffId) },
                    history: built.map((_, i) => ({ created: "1970-01-01T00:00:00Z", created_by: `harness layer ${i}` })),
                }),
            ),
        );
        const manifest = addBlob(dir, MEDIA_TYPES.manifest, Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.manifest, config, layers })));
        fs.writeFileSync(path.join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
        const tagged = { ...manifest, annotations: { "org.opencontainers.image.ref.name": opts.tag } };
        fs.writeFileSync(path.join(dir, "index.json"), JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.index, manifests: [tagged] }));
        return {
            ref: `oci:${dir}:${opts.tag}`,
            manifestDigest: manifest.digest,
            configDigest: config.digest,
            layers,
            totalBytes: manifest.size + config.size + layers.reduce((a, l) => a + l.size, 0),
        };
    } finally {
        fs.rmSync(work, { recursive: true, force: true });
    }
}
