// A minimal CRI v1 ImageService client (runtime.v1.ImageService) over containerd's unix socket,
// making the same calls kubelet makes when it pulls an image for a pod.

import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const PROTO_FILE = path.join(__dirname, "cri-api.proto");
const SERVICE = "runtime.v1.ImageService";

/**
 * CRI AuthConfig as kubelet fills it from an imagePullSecret: username and password, no server_address;
 * containerd then sends them to whichever host it maps the image's registry to (hosts.toml).
 */
export interface CriAuth {
    username: string;
    password: string;
}

/** The part of a CRI Image message the tests read. */
export interface CriImage {
    id: string;
    repo_tags: string[];
    repo_digests: string[];
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
                    // The gRPC status name and containerd's text, which tests match on.
                    reject(new Error(`CRI ${method}(${label}) failed: ${grpc.status[err.code] ?? err.code}: ${err.details || err.message}`));
                    return;
                }
                resolve(value as Res);
            },
        );
    });
}

/** Pulls an image through CRI PullImage (auth as kubelet passes it; deadline default 180 s) and returns the image_ref. */
export async function criPull(socket: string, image: string, auth?: CriAuth, opts: { timeoutMs?: number } = {}): Promise<string> {
    const req: { image: { image: string }; auth?: CriAuth } = { image: { image } };
    if (auth !== undefined) req.auth = auth;
    const res = await unary<{ image_ref: string }>(socket, "PullImage", req, opts.timeoutMs ?? 180_000, image);
    return res.image_ref;
}

/** Removes an image through CRI RemoveImage (idempotent). */
export async function criRemove(socket: string, image: string): Promise<void> {
    await unary<object>(socket, "RemoveImage", { image: { image } }, 15_000, image);
}

/** Returns the CRI Image for a reference or ID, or null when the runtime does not have it. */
export async function criImageStatus(socket: string, image: string): Promise<CriImage | null> {
    const res = await unary<{ image: CriImage | null }>(socket, "ImageStatus", { image: { image }, verbose: false }, 15_000, image);
    return res.image ?? null;
}

/** Lists the images the runtime has (CRI ListImages). */
export async function criListImages(socket: string, timeoutMs = 15_000): Promise<CriImage[]> {
    const res = await unary<{ images: CriImage[] }>(socket, "ListImages", {}, timeoutMs, "");
    return res.images;
}
