// A minimal CRI v1 ImageService client (runtime.v1.ImageService) over containerd's unix socket,
// making the same calls kubelet makes when it pulls an image for a pod.

import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const PROTO_FILE = path.join(__dirname, "cri-api.proto");
const SERVICE = "runtime.v1.ImageService";

/** CRI ImageSpec (only `image` is usually set). */
export interface CriImageSpec {
    image: string;
    annotations?: Record<string, string>;
    user_specified_image?: string;
    runtime_handler?: string;
    image_ref?: string;
}

/**
 * CRI AuthConfig. kubelet fills username/password from an imagePullSecret and leaves
 * server_address empty; containerd then sends the credentials to whichever host it maps the
 * image's registry to (hosts.toml).
 */
export interface CriAuth {
    username?: string;
    password?: string;
    /** base64(user:password), as in a .dockerconfigjson */
    auth?: string;
    server_address?: string;
    identity_token?: string;
    registry_token?: string;
}

/** CRI Image message as decoded here (64-bit numbers as decimal strings). */
export interface CriImage {
    id: string;
    repo_tags: string[];
    repo_digests: string[];
    size: string;
    uid: { value: string } | null;
    username: string;
    spec: CriImageSpec | null;
    pinned: boolean;
}

/** Error from a CRI call: the message carries the gRPC status name and containerd's text. */
export class CriError extends Error {
    constructor(
        readonly method: string,
        readonly code: number,
        readonly codeName: string,
        readonly details: string,
    ) {
        super(`CRI ${method} failed: ${codeName}: ${details}`);
        this.name = "CriError";
    }
}

/** Options common to the CRI calls. */
export interface CriCallOptions {
    /** Deadline of the call (default 180 s for pulls, 15 s otherwise). */
    timeoutMs?: number;
}

let definition: protoLoader.PackageDefinition | undefined;

function methodDef(name: string): protoLoader.MethodDefinition<object, object> {
    definition ??= protoLoader.loadSync(PROTO_FILE, {
        keepCase: true,
        longs: String,
        enums: String,
        defaults: true,
        oneofs: true,
    });
    const svc = definition[SERVICE] as protoLoader.ServiceDefinition | undefined;
    const m = svc?.[name];
    if (m === undefined) throw new Error(`cri-api.proto has no ${SERVICE}/${name}`);
    return m;
}

function unary<Res>(socket: string, method: string, request: object, timeoutMs: number, label: string): Promise<Res> {
    const def = methodDef(method);
    const target = `unix://${path.resolve(socket)}`;
    const client = new grpc.Client(target, grpc.credentials.createInsecure());
    return new Promise<Res>((resolve, reject) => {
        client.makeUnaryRequest<object, object>(
            def.path,
            def.requestSerialize,
            def.responseDeserialize,
            request,
            new grpc.Metadata(),
            { deadline: Date.now() + timeoutMs },
            (err, value) => {
                client.close();
                if (err) {
                    const codeName = grpc.status[err.code] ?? String(err.code);
                    reject(new CriError(`${method}(${label})`, err.code, codeName, err.details || err.message));
                    return;
                }
                resolve(value as Res);
            },
        );
    });
}

/** Pulls an image through CRI PullImage (auth as kubelet passes it) and returns the image_ref. */
export async function criPull(socket: string, image: string, auth?: CriAuth, opts: CriCallOptions = {}): Promise<string> {
    const req: { image: CriImageSpec; auth?: CriAuth } = { image: { image } };
    if (auth !== undefined) req.auth = auth;
    const res = await unary<{ image_ref: string }>(socket, "PullImage", req, opts.timeoutMs ?? 180_000, image);
    return res.image_ref;
}

/** Removes an image through CRI RemoveImage (idempotent). */
export async function criRemove(socket: string, image: string, opts: CriCallOptions = {}): Promise<void> {
    await unary<object>(socket, "RemoveImage", { image: { image } }, opts.timeoutMs ?? 15_000, image);
}

/** Returns the CRI Image for a reference or ID, or null when the runtime does not have it. */
export async function criImageStatus(socket: string, image: string, opts: CriCallOptions = {}): Promise<CriImage | null> {
    const res = await unary<{ image: CriImage | null }>(socket, "ImageStatus", { image: { image }, verbose: false }, opts.timeoutMs ?? 15_000, image);
    return res.image ?? null;
}

/** Lists the images the runtime has (CRI ListImages). */
export async function criListImages(socket: string, opts: CriCallOptions = {}): Promise<CriImage[]> {
    const res = await unary<{ images: CriImage[] }>(socket, "ListImages", {}, opts.timeoutMs ?? 15_000, "");
    return res.images;
}
