// versitygw, the S3-compatible server the object-storage tests run (posix backend, loopback only):
// maintained, and it has every S3 call distribution's driver makes (multipart uploads,
// ListMultipartUploads, UploadPartCopy). Built from the Go module proxy by scripts/test-all into
// .cache/versitygw/v<version>/versitygw, like the registry.

import * as fs from "node:fs";
import * as path from "node:path";
import { freePort, startProcess, waitFor, type ProcHandle } from "./procs";

/** The Go module of the server, and the one version the tests and scripts/test-all use. */
export const VERSITYGW_MODULE = "github.com/versity/versitygw/cmd/versitygw";
export const VERSITYGW_VERSION = "1.7.0";
/** Where scripts/test-all builds it (.gitignore'd). */
export const VERSITYGW_BINARY = path.resolve(__dirname, `../../../.cache/versitygw/v${VERSITYGW_VERSION}/versitygw`);

/** The binary, or one line saying why it is missing and how to get it. */
export function versitygwBuild(): { binary: string } | { missing: string } {
    if (fs.existsSync(VERSITYGW_BINARY)) return { binary: VERSITYGW_BINARY };
    return {
        missing: `versitygw ${VERSITYGW_VERSION} is not built here: run scripts/test-all (it builds ${VERSITYGW_MODULE}@v${VERSITYGW_VERSION} into ${path.dirname(VERSITYGW_BINARY)})`,
    };
}

/** A running S3 store with one bucket. */
export interface S3Store {
    proc: ProcHandle;
    /** `http://127.0.0.x:PORT`: what objectStorageEndpoint names. */
    endpoint: string;
    bucket: string;
    accessKey: string;
    secretKey: string;
    /** Where the bucket's objects are files. */
    bucketDir: string;
    stop(): Promise<void>;
}

/** Starts versitygw on `ip` (loopback) with one bucket, a directory of the posix backend; metadata in a sidecar directory (tmpfs may lack user xattrs). */
export async function startVersitygw(opts: { workDir: string; ip: string; bucket: string }): Promise<S3Store> {
    const build = versitygwBuild();
    if ("missing" in build) throw new Error(build.missing);
    const root = path.join(opts.workDir, "root");
    const sidecar = path.join(opts.workDir, "meta");
    const bucketDir = path.join(root, opts.bucket);
    fs.mkdirSync(bucketDir, { recursive: true });
    fs.mkdirSync(sidecar, { recursive: true });
    const port = await freePort();
    const [accessKey, secretKey] = ["cluster-registry-test", "not-a-real-secret-for-tests-only"];
    const proc = startProcess(build.binary, ["--port", `${opts.ip}:${port}`, "--quiet", "posix", "--sidecar", sidecar, root], {
        env: { ROOT_ACCESS_KEY_ID: accessKey, ROOT_SECRET_ACCESS_KEY: secretKey },
        logFile: path.join(opts.workDir, "versitygw.log"),
    });
    const endpoint = `http://${opts.ip}:${port}`;
    // Anonymous requests get 403 once it listens.
    await waitFor(async () => (await fetch(`${endpoint}/`)).status === 403, 15_000, `versitygw answering on ${endpoint}`, { proc });
    return { proc, endpoint, bucket: opts.bucket, accessKey, secretKey, bucketDir, stop: () => proc.stop() };
}
