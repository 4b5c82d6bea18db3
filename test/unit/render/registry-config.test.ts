import { execFileSync, spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import YAML from "yaml";
import { isCI } from "../../integration/harness/tools";
import { EVICTION_COUNTERS_FILE, EVICTION_SCRIPT, renderRegistryConfig } from "../../../components/render/registry-config";

const hasShellcheck = spawnSync("shellcheck", ["--version"]).status === 0;

const BASE = {
    port: 5000,
    debugPort: 5001,
    storageRoot: "/var/lib/registry",
    tls: { certificate: "/etc/registry/tls/tls.crt", key: "/etc/registry/tls/tls.key" },
    drainTimeout: "60s",
};

describe("registry config", () => {
    test("hosted: TLS 1.2 at least, htpasswd, deletes refused, metrics on the debug listener, no proxy", () => {
        expect(renderRegistryConfig({ ...BASE, htpasswd: { realm: "cluster-registry", path: "/etc/registry/auth/htpasswd" } })).toBe(`version: "0.1"
log:
  level: info
  formatter: text
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: false
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: true
      age: 3h
      interval: 1h
      dryrun: false
http:
  addr: :5000
  draintimeout: 60s
  tls:
    certificate: /etc/registry/tls/tls.crt
    key: /etc/registry/tls/tls.key
    minimumtls: tls1.2
  headers:
    X-Content-Type-Options:
      - nosniff
  debug:
    addr: 127.0.0.1:5001
    prometheus:
      enabled: true
      path: /metrics
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
auth:
  htpasswd:
    realm: cluster-registry
    path: /etc/registry/auth/htpasswd
`);
    });

    test("cache: proxy section with TTL, deletes on (expiry needs them), no in-memory blob descriptor cache (issue 2367), no auth", () => {
        const text = renderRegistryConfig({ ...BASE, proxy: { remoteUrl: "https://registry-1.docker.io", ttl: "168h" } });
        expect(text).toContain("proxy:\n  remoteurl: https://registry-1.docker.io\n  ttl: 168h\n");
        const config = YAML.parse(text);
        expect(config.storage).toEqual({
            filesystem: { rootdirectory: "/var/lib/registry" },
            delete: { enabled: true },
            // Cut proxy fetches leave uploads too.
            maintenance: { uploadpurging: { enabled: true, age: "3h", interval: "1h", dryrun: false } },
        });
        expect(config.http.debug).toEqual({ addr: "127.0.0.1:5001", prometheus: { enabled: true, path: "/metrics" } });
        expect(text).not.toContain("auth:");
    });

    test("debug listener: the pod's loopback only unless Prometheus is to reach it, then every address of the pod", () => {
        expect(YAML.parse(renderRegistryConfig(BASE)).http.debug.addr).toBe("127.0.0.1:5001");
        expect(YAML.parse(renderRegistryConfig({ ...BASE, debugOnPodAddress: true })).http.debug.addr).toBe(":5001");
    });

    test("a TTL of 0 (never expire) reaches the config as a duration Go parses to zero", () => {
        const config = YAML.parse(renderRegistryConfig({ ...BASE, proxy: { remoteUrl: "https://quay.io", ttl: "0" } }));
        expect(config.proxy.ttl).toBe("0");
    });

    test("read-only: distribution's maintenance read-only mode on, upload purging left to the read-write container", () => {
        const config = YAML.parse(renderRegistryConfig({ ...BASE, readOnly: true }));
        expect(config.storage.maintenance).toEqual({ uploadpurging: { enabled: false }, readonly: { enabled: true } });
        expect(YAML.parse(renderRegistryConfig(BASE)).storage.maintenance).toEqual({
            uploadpurging: { enabled: true, age: "3h", interval: "1h", dryrun: false },
        });
    });

    test("S3-compatible store: path-style with its endpoint, a key prefix, SSE-KMS, redirects off, no filesystem", () => {
        const text = renderRegistryConfig({
            ...BASE,
            s3: { bucket: "images", region: "us-east-1", regionEndpoint: "http://127.0.0.9:7070", rootDirectory: "/cluster-a", kmsKeyId: "alias/registry" },
        });
        expect(text).toContain(`storage:
  s3:
    bucket: images
    region: us-east-1
    regionendpoint: http://127.0.0.9:7070
    forcepathstyle: true
    rootdirectory: /cluster-a
    encrypt: true
    keyid: alias/registry
  redirect:
    disable: true
  delete:
    enabled: false
`);
        expect(text).not.toContain("filesystem");
        expect(text).not.toMatch(/accesskey|secretkey/i);
    });

    test("AWS S3: no endpoint, so virtual-hosted addressing (no forcepathstyle), and no encryption keys unless asked", () => {
        const config = YAML.parse(renderRegistryConfig({ ...BASE, s3: { bucket: "images", region: "eu-west-1" } }));
        expect(config.storage.s3).toEqual({ bucket: "images", region: "eu-west-1" });
        expect(config.storage.redirect).toEqual({ disable: true });
    });
});

/**
 * EVICTION_SCRIPT run by busybox sh (the registry image's shell) on a store laid out as distribution's
 * filesystem driver lays it out; one pass (the loop's second look, a second later, finds it under the
 * limit), then it is stopped.
 */
describe("a cache's eviction loop", () => {
    const V2 = "docker/registry/v2";
    const MiB = 1024;
    const roots: string[] = [];
    afterAll(() => roots.forEach((r) => fs.rmSync(r, { recursive: true, force: true })));

    /** A store with committed blobs (oldest first), a repository's links, an upload in flight and nginx's copies. */
    function store(blobs: number, blobMiB = 2): { root: string; digests: string[]; keep: string[] } {
        const root = fs.mkdtempSync(path.join(os.tmpdir(), "evict-"));
        roots.push(root);
        const digests: string[] = [];
        const write = (rel: string, bytes: number, mtime = Date.now() / 1000) => {
            fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
            fs.writeFileSync(path.join(root, rel), crypto.randomBytes(bytes));
            fs.utimesSync(path.join(root, rel), mtime - 30, mtime);
        };
        for (let i = 0; i < blobs; i++) {
            const hex = crypto.createHash("sha256").update(String(i)).digest("hex");
            digests.push(`sha256:${hex}`);
            // Fetched a minute apart, the first the oldest; listed in another order than their age.
            write(`${V2}/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`, blobMiB << 20, 1_700_000_000 + 60 * i);
            write(`${V2}/repositories/library/x/_layers/sha256/${hex}/link`, 71);
        }
        const keep = [
            `${V2}/repositories/library/x/_uploads/3f1c/data`,
            `${V2}/repositories/library/x/_manifests/tags/v1/current/link`,
            `${V2}/scheduler-state.json`,
            "coalescer/a/bc/0123abc",
        ];
        // An upload in flight and nginx's copies, older than every blob: still never deleted.
        for (const rel of keep) write(rel, rel.endsWith("data") || rel.startsWith("coalescer") ? 1 << 20 : 71, 1_600_000_000);
        // The counters a running loop left (it writes them at start, a block on the volume that thresholds here count).
        fs.writeFileSync(path.join(root, EVICTION_COUNTERS_FILE), "cluster_registry_cache_evictions_total 0\n");
        return { root, digests, keep };
    }

    const duKiB = (root: string) => Number(execFileSync("busybox", ["du", "-sk", root]).toString().split(/\s/)[0]);
    const present = (root: string, digests: string[]) =>
        digests.filter((d) => fs.existsSync(path.join(root, V2, "blobs/sha256", d.slice(7, 9), d.slice(7), "data")));

    /** One pass of the loop: `busybox sh -c SCRIPT` for a little more than one interval. */
    function evict(root: string, highKiB: number, lowKiB: number, hardKiB = 1 << 30, every = "1"): string {
        // Under a umask that would make its files private: the script sets its own.
        const r = spawnSync(
            "sh",
            [
                "-c",
                'umask 077 && exec "$@"',
                "sh",
                "timeout",
                "1.5",
                "busybox",
                "sh",
                "-c",
                EVICTION_SCRIPT,
                "cache-evict",
                root,
                String(highKiB),
                String(lowKiB),
                String(hardKiB),
                every,
            ],
            {
                encoding: "utf8",
            },
        );
        return r.stdout + r.stderr;
    }

    test("under its limit it deletes nothing, and its counters are there from the start at 0, mode 0644 (the coalescer's nginx serves them)", () => {
        const { root, digests } = store(4);
        const counters = path.join(root, EVICTION_COUNTERS_FILE);
        const high = duKiB(root) + 1;
        fs.rmSync(counters);
        const log = evict(root, high, 1);
        expect(present(root, digests)).toEqual(digests);
        expect(log).toBe("");
        expect(fs.readFileSync(counters, "utf8")).toContain("cluster_registry_cache_evictions_total 0\n");
        expect(fs.readFileSync(counters, "utf8")).toContain("cluster_registry_cache_evicted_blobs_total 0\n");
        expect(fs.readFileSync(counters, "utf8")).toContain("cluster_registry_cache_evicted_bytes_total 0\n");
        expect(fs.statSync(counters).mode & 0o777).toBe(0o644);
    });

    test("at its limit it deletes committed blob data, oldest first, until under the low mark; never uploads in flight, links, manifests' tags or nginx's copies", () => {
        const { root, digests, keep } = store(6);
        const before = duKiB(root);
        // Room for about 3 of the 6 blobs of 2 MiB.
        const low = before - 5 * MiB;
        const log = evict(root, before, low);
        expect(present(root, digests)).toEqual(digests.slice(3));
        expect(duKiB(root)).toBeLessThan(low);
        for (const rel of keep) expect(fs.existsSync(path.join(root, rel)), rel).toBe(true);
        // Repository links stay (the registry fetches a linked blob whose data is gone again); the blob's directory goes.
        for (const d of digests) expect(fs.existsSync(path.join(root, V2, "repositories/library/x/_layers/sha256", d.slice(7), "link"))).toBe(true);
        expect(fs.existsSync(path.join(root, V2, "blobs/sha256", digests[0].slice(7, 9), digests[0].slice(7)))).toBe(false);
        // One line per blob (what, how much), then one for the eviction.
        for (const d of digests.slice(0, 3)) expect(log).toContain(`cache-evict: deleted blob ${d} (2048 KiB, fetched at`);
        expect(log).toMatch(
            new RegExp(
                `cache-evict: ${root} held ${before} KiB \\(limit ${before} KiB\\): deleted the 3 oldest blobs, 6144 KiB, to get under ${low} KiB; .*\\(eviction 1\\)`,
            ),
        );
    });

    test("a blob read since it was fetched (or since the last pass) gets a second chance: its atime is set back and the next oldest goes instead", () => {
        const { root, digests } = store(6);
        const dataOf = (d: string) => path.join(root, V2, "blobs/sha256", d.slice(7, 9), d.slice(7), "data");
        // The oldest was read after it was fetched.
        fs.readFileSync(dataOf(digests[0]));
        expect(fs.statSync(dataOf(digests[0])).atimeMs).toBeGreaterThan(fs.statSync(dataOf(digests[0])).mtimeMs);
        const log = evict(root, duKiB(root), duKiB(root) - 3 * MiB);
        expect(present(root, digests)).toEqual([digests[0], ...digests.slice(3)]);
        expect(fs.statSync(dataOf(digests[0])).atimeMs).toBe(1000);
        expect(log).toContain("cache-evict: kept 1 blobs read since the last pass for the next one");
        // Not read since: the next pass deletes it first.
        evict(root, duKiB(root), duKiB(root) - 1 * MiB);
        expect(present(root, digests)).toEqual(digests.slice(3));
    });

    test("at the hard mark read blobs go too, oldest first; under it, a blob read in every pass stays", () => {
        const { root, digests } = store(4);
        const readAll = () => digests.forEach((d) => fs.readFileSync(path.join(root, V2, "blobs/sha256", d.slice(7, 9), d.slice(7), "data")));
        // One pass each (the next would be 5 s later).
        readAll();
        expect(evict(root, duKiB(root), duKiB(root) - 3 * MiB, duKiB(root) + 1, "5")).toContain("kept 4 blobs");
        readAll();
        expect(evict(root, duKiB(root), duKiB(root) - 3 * MiB, duKiB(root) + 1, "5")).toContain("kept 4 blobs");
        expect(present(root, digests)).toEqual(digests);
        readAll();
        evict(root, duKiB(root), duKiB(root) - 3 * MiB, duKiB(root), "5");
        expect(present(root, digests)).toEqual(digests.slice(2));
    });

    test("its counters are Prometheus text on the volume, and a restarted loop counts on from them", () => {
        const { root } = store(4);
        evict(root, duKiB(root), duKiB(root) - 3 * MiB);
        const counters = () => fs.readFileSync(path.join(root, EVICTION_COUNTERS_FILE), "utf8");
        expect(counters()).toContain("# TYPE cluster_registry_cache_evictions_total counter\ncluster_registry_cache_evictions_total 1\n");
        expect(counters()).toContain("cluster_registry_cache_evicted_blobs_total 2\n");
        expect(counters()).toContain(`cluster_registry_cache_evicted_bytes_total ${4 * 1024 * 1024}\n`);
        evict(root, duKiB(root), duKiB(root) - 1);
        expect(counters()).toContain("cluster_registry_cache_evictions_total 2\n");
        expect(counters()).toContain("cluster_registry_cache_evicted_blobs_total 3\n");
        expect(counters()).toContain(`cluster_registry_cache_evicted_bytes_total ${6 * 1024 * 1024}\n`);
    });

    test("a counters file that holds no counts (edited by hand, cut short) starts them at 0 instead of ending the loop", () => {
        const { root } = store(4);
        fs.writeFileSync(
            path.join(root, EVICTION_COUNTERS_FILE),
            "cluster_registry_cache_evictions_total 12abc\ncluster_registry_cache_evicted_bytes_total 4e6\n",
        );
        const log = evict(root, duKiB(root), duKiB(root) - 3 * MiB);
        expect(log).not.toMatch(/arithmetic|syntax error/);
        const counters = fs.readFileSync(path.join(root, EVICTION_COUNTERS_FILE), "utf8");
        expect(counters).toContain("cluster_registry_cache_evictions_total 1\n");
        expect(counters).toContain(`cluster_registry_cache_evicted_bytes_total ${4 * 1024 * 1024}\n`);
    });

    test("with nothing committed left to delete it says so once, and deletes nothing else", () => {
        const { root, keep } = store(0);
        const log = evict(root, 1, 0);
        for (const rel of keep) expect(fs.existsSync(path.join(root, rel)), rel).toBe(true);
        expect(log.match(/no committed blob is left to delete/g)).toHaveLength(1);
    });

    test("the start-over of earlier versions leaves nothing behind: its aside copy and its count are deleted at start", () => {
        const { root, digests } = store(2);
        fs.mkdirSync(path.join(root, ".evicted-1700000000/docker"), { recursive: true });
        fs.writeFileSync(path.join(root, "cache-evictions"), "3\n");
        evict(root, duKiB(root) + MiB, 1);
        expect(fs.readdirSync(root).sort()).toEqual([EVICTION_COUNTERS_FILE, "coalescer", "docker"]);
        expect(present(root, digests)).toEqual(digests);
    });

    test.skipIf(!hasShellcheck && !isCI())("is shellcheck-clean as POSIX sh", () => {
        expect(spawnSync("shellcheck", ["-s", "sh", "-"], { input: EVICTION_SCRIPT, encoding: "utf8" }).stdout).toBe("");
    });
});
