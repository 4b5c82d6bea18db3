/** The distribution registry's config.yml, for a hosted registry or a pull-through cache. */
import * as YAML from "yaml";

export interface RegistryConfigInput {
    /** Port the registry listens on inside the pod. */
    port: number;
    /** Port of the debug listener (Prometheus `/metrics`, `/debug/health`, pprof, expvar) inside the pod. */
    debugPort: number;
    /**
     * Let the debug listener take connections on every address of the pod (for Prometheus), not only
     * on its loopback, where the readiness probe reaches it. Default: false.
     */
    debugOnPodAddress?: boolean;
    /** Where images are stored (the volume's mount path). */
    storageRoot: string;
    /** Server certificate and key files. */
    tls: { certificate: string; key: string };
    /** htpasswd authentication; absent means anonymous access (caches reachable only in-cluster). */
    htpasswd?: { realm: string; path: string };
    /** Pull-through cache of one upstream; absent for the hosted registry. */
    proxy?: { remoteUrl: string; ttl: string };
    /**
     * Keep an in-memory blob-descriptor cache. Default: on for a hosted registry, off for a cache.
     * Off where garbage is collected beside a running registry: in 3.1.1 it answers for swept blobs
     * until the process restarts (distribution issues 4569, 3743; the fix, PR 4868, came later).
     */
    descriptorCache?: boolean;
    /** Let users delete manifests and tags (`storage.delete.enabled`). Default: only a cache (TTL expiry). */
    deletes?: boolean;
    /** Extra response headers, e.g. a `Warning` saying why writes are refused. Default: none. */
    headers?: Record<string, string>;
    /**
     * Serve pulls only: distribution's maintenance read-only mode refuses every write (push, tag,
     * delete) with 405 whoever asks, so a pull identity cannot write however the htpasswd is set up.
     * Its upload purger is off too: the read-write container beside it owns the uploads.
     */
    readOnly?: boolean;
    /**
     * On SIGTERM, stop accepting and let in-flight requests finish for at most this long (a Go
     * duration); without it distribution 3 has no SIGTERM handler and cuts every transfer at once.
     */
    drainTimeout: string;
    /** Keep the images in S3 or an S3-compatible store instead of `storageRoot`. Default: the filesystem. */
    s3?: S3StorageInput;
}

/** distribution's S3 driver settings; credentials are never here (they come from the pod's identity or a Secret's env). */
export interface S3StorageInput {
    bucket: string;
    region: string;
    /** An S3-compatible store's URL; path-style addressing goes with it. Default: AWS's endpoint for the region. */
    regionEndpoint?: string;
    /** Key prefix inside the bucket. Default: the bucket's root. */
    rootDirectory?: string;
    /** Encrypt objects with this KMS key (SSE-KMS). Default: the bucket's own encryption. */
    kmsKeyId?: string;
}

/**
 * distribution's upload purger, on every container that writes (the push container, caches): an
 * upload unfinished after `age` is deleted at the next run (every `interval`, the first within an hour
 * of start: distribution waits a random 0-59 minutes). Its default age is 168h, a week of abandoned
 * pushes on the volume; an upload of one blob that takes longer than `age` is lost.
 */
export const UPLOAD_PURGING = { enabled: true, age: "3h", interval: "1h", dryrun: false } as const;

/** The pod's own loopback address, where its debug listener listens unless metrics are scraped. */
export const LOOPBACK = "127.0.0.1";
/** Where the debug listener serves Prometheus metrics. */
export const METRICS_PATH = "/metrics";
/** Where the debug listener serves the health checks' state: 200, or 503 once a check fails. */
export const HEALTH_PATH = "/debug/health";

/**
 * Secrets are not in this file: it lives in a ConfigMap. Upstream credentials reach a cache as
 * `REGISTRY_PROXY_*` environment variables from a Secret, and so does `http.secret` (which signs upload
 * state, so every replica needs the same one) as `REGISTRY_HTTP_SECRET`. Every key is in distribution 3's schema
 * (configuration/configuration.go); the integration tests run it on the release the image ships.
 */
export function renderRegistryConfig(input: RegistryConfigInput): string {
    const config: Record<string, unknown> = {
        version: "0.1",
        log: { level: "info", formatter: "text", fields: { service: "registry" } },
        storage: {
            ...storageDriver(input),
            // Only a cache's TTL expiry needs deletes; on the hosted registry any user could delete images.
            delete: { enabled: !!input.proxy || !!input.deletes },
            // Proxy mode with the in-memory descriptor cache can answer "unexpected EOF" once blobs
            // expire (distribution issue 2367), so a cache has none.
            ...(input.proxy || input.descriptorCache === false ? {} : { cache: { blobdescriptor: "inmemory" } }),
            maintenance: input.readOnly ? { uploadpurging: { enabled: false }, readonly: { enabled: true } } : { uploadpurging: { ...UPLOAD_PURGING } },
        },
        http: {
            addr: `:${input.port}`,
            draintimeout: input.drainTimeout,
            tls: { certificate: input.tls.certificate, key: input.tls.key, minimumtls: "tls1.2" },
            headers: { "X-Content-Type-Options": ["nosniff"], ...Object.fromEntries(Object.entries(input.headers ?? {}).map(([k, v]) => [k, [v]])) },
            // Plain HTTP with pprof and expvar beside the metrics: a pod that holds a CPU profile or an
            // unread trace open can stall or OOM the registry, so only the pod itself reaches it unless
            // asked (then a NetworkPolicy admits the namespaces named, and no NodePort lists it).
            debug: {
                addr: `${input.debugOnPodAddress ? "" : LOOPBACK}:${input.debugPort}`,
                prometheus: { enabled: true, path: METRICS_PATH },
            },
        },
        health: { storagedriver: { enabled: true, interval: "10s", threshold: 3 } },
    };
    if (input.htpasswd) config.auth = { htpasswd: { realm: input.htpasswd.realm, path: input.htpasswd.path } };
    if (input.proxy) config.proxy = { remoteurl: input.proxy.remoteUrl, ttl: input.proxy.ttl };
    return YAML.stringify(config);
}

/** The storage driver section: a directory, or a bucket streamed through the registry. */
function storageDriver(input: RegistryConfigInput): Record<string, unknown> {
    if (!input.s3) return { filesystem: { rootdirectory: input.storageRoot } };
    const s3 = input.s3;
    return {
        s3: {
            bucket: s3.bucket,
            region: s3.region,
            // distribution's S3 driver needs path-style addressing for a regionendpoint.
            ...(s3.regionEndpoint ? { regionendpoint: s3.regionEndpoint, forcepathstyle: true } : {}),
            ...(s3.rootDirectory ? { rootdirectory: s3.rootDirectory } : {}),
            ...(s3.kmsKeyId ? { encrypt: true, keyid: s3.kmsKeyId } : {}),
        },
        // Blobs stream through the registry: nodes never need a route to, or credentials for, the bucket.
        redirect: { disable: true },
    };
}

/**
 * The readiness check a registry pod runs with the image's busybox `sh -c SCRIPT probe STORAGE
 * MAX_FILL_PERCENT HEALTH_URL`: not ready while the storage volume is at or above MAX_FILL_PERCENT
 * (`-` skips that check and so never reads STORAGE) or while distribution's health endpoint does not answer 200 (its storage
 * driver check failing makes it 503). Plain POSIX sh with df, awk and wget, as busybox has them.
 */
export const READINESS_SCRIPT = [
    // Without a fill limit there may be no volume to measure (object storage).
    'if [ "$2" != - ]; then',
    '  used=$(df -P "$1" | awk \'NR == 2 { sub(/%$/, "", $5); print $5 }\')',
    '  case "$used" in "" | *[!0-9]*) echo "cannot read how full $1 is" >&2; exit 1 ;; esac',
    '  if [ "$used" -ge "$2" ]; then echo "$1 is $used% full (limit $2%): not serving new content" >&2; exit 1; fi',
    "fi",
    'wget -q -Y off -O /dev/null "$3" || { echo "$3 does not answer 200: storage unhealthy" >&2; exit 1; }',
].join("\n");

/** Where distribution's filesystem driver keeps everything under its root directory. */
export const DISTRIBUTION_DATA_DIR = "docker/registry/v2";

/** Where a cache's eviction loop keeps its counters, in Prometheus' text format, on the cache's volume. */
export const EVICTION_COUNTERS_FILE = "cache-evictions.prom";

/**
 * A cache's eviction loop, run by the image's busybox as `sh -c SCRIPT cache-evict STORAGE HIGH_KIB
 * LOW_KIB HARD_KIB EVERY_SECONDS`. Every EVERY_SECONDS it measures what the cache owns (`du` of
 * STORAGE: the registry's data, nginx's copies, these counters), not the filesystem under it (a node
 * directory's `df` is the node's disk). From HIGH_KIB up it deletes committed blob data files
 * (`blobs/<algorithm>/<xx>/<hex>/data`), oldest modification (fetch) first, until it has freed what
 * takes the cache under LOW_KIB; nothing else. A blob read since it was fetched or since the last
 * pass looked at it (its atime not before its mtime, in whole seconds: one fetched within a second
 * counts as read once) gets a second chance: its atime is set back to 1970 and it is skipped, so what is deleted was not read for at least a pass, unless the cache holds HARD_KIB (then
 * the oldest go, read or not). Why that never cuts a transfer in flight (distribution 3.1.1):
 * - `_uploads` is never touched: a fetch in flight writes there until its commit renames it into
 *   `blobs`, so a proxy miss streaming to its client and to storage keeps both.
 * - A blob being served keeps streaming: the registry has the file open, and Linux frees an unlinked
 *   file when its last reader closes it.
 * - Repository links (`_layers`, manifest revisions, tags) stay: a link whose data is gone is an unknown
 *   blob to the registry's stat, which a cache answers by fetching it again from the upstream (and its
 *   commit puts the data back); a manifest whose data is gone is fetched again the same way.
 * The one window left is distribution's own (its TTL expiry has it too): a request whose registry
 * goroutine is between its stat of that very file and its open of it at the instant of the unlink gets
 * an empty body or a 500; the second chance keeps blobs being read out of it (on a filesystem mounted
 * `noatime` it cannot, and the order is plain first in, first out). Each eviction is one log line per blob and one summary; the counters are
 * written at start (carried on from the file: 0 on a new volume) and after each eviction, whole, renamed
 * into place, mode 0644: the coalescer's nginx serves them at `/metrics` (coalescer.ts). Plain POSIX sh with du, find, stat and sort, as busybox has them.
 */
export const EVICTION_SCRIPT = [
    `blobs="$1/${DISTRIBUTION_DATA_DIR}/blobs"`,
    `counters="$1/${EVICTION_COUNTERS_FILE}"`,
    'order="$1/.evict-order"',
    // The counters file 0644: the coalescer's nginx serves it (it runs as the same user; this is in case it does not).
    "umask 022",
    // Left by the start-over of earlier versions (a whole data directory renamed aside, and its count).
    'rm -rf "$1"/.evicted-* "$1/cache-evictions"',
    "evictions=0 blobs_total=0 kib_total=0 stuck=",
    'if [ -f "$counters" ]; then',
    "    while read -r name value; do",
    // A value that is not a count (an edited file) would end the shell at the arithmetic: start it at 0.
    '        case "$value" in "" | *[!0-9]*) value=0 ;; esac',
    '        case "$name" in',
    "            cluster_registry_cache_evictions_total) evictions=$value ;;",
    "            cluster_registry_cache_evicted_blobs_total) blobs_total=$value ;;",
    "            cluster_registry_cache_evicted_bytes_total) kib_total=$((value / 1024)) ;;",
    "        esac",
    '    done < "$counters"',
    "fi",
    "write_counters() {",
    "    {",
    '        echo "# HELP cluster_registry_cache_evictions_total Times the cache reached its fill limit and deleted its oldest blobs."',
    '        echo "# TYPE cluster_registry_cache_evictions_total counter"',
    '        echo "cluster_registry_cache_evictions_total $evictions"',
    '        echo "# HELP cluster_registry_cache_evicted_blobs_total Blobs the cache deleted to make room."',
    '        echo "# TYPE cluster_registry_cache_evicted_blobs_total counter"',
    '        echo "cluster_registry_cache_evicted_blobs_total $blobs_total"',
    '        echo "# HELP cluster_registry_cache_evicted_bytes_total Bytes of disk the cache freed by deleting blobs."',
    '        echo "# TYPE cluster_registry_cache_evicted_bytes_total counter"',
    '        echo "cluster_registry_cache_evicted_bytes_total $((kib_total * 1024))"',
    '    } > "$counters.tmp" && mv -f "$counters.tmp" "$counters"',
    "}",
    // From the start, so a scrape finds them (at 0 on a new volume) before the first eviction.
    "write_counters",
    "while :; do",
    "    used=$(du -sk \"$1\" 2>/dev/null | awk '{ print $1 }')",
    '    case "$used" in "" | *[!0-9]*) echo "cache-evict: cannot measure what $1 holds" >&2; used=0 ;; esac',
    '    if [ "$used" -ge "$2" ]; then',
    "        need=$((used - $3)) freed=0 n=0 spared=0 force=",
    '        [ "$used" -lt "$4" ] || force=1',
    // "mtime atime blocks blocksize path", oldest first; a file gone since find is skipped by stat.
    // Kept in a file on the volume, not in a variable: one line per blob, in a container of little memory.
    '        find "$blobs" -type f -name data -exec stat -c "%Y %X %b %B %n" {} + 2>/dev/null | sort -n > "$order"',
    '        while [ "$freed" -lt "$need" ] && read -r mtime atime blocks size file; do',
    '            [ -n "$file" ] || continue',
    // Setting atime back also moves ctime to now, so the next read moves atime again (relatime).
    '            if [ "$atime" -ge "$mtime" ] && [ -z "$force" ]; then',
    '                touch -a -d @1 "$file" 2>/dev/null && spared=$((spared + 1))',
    "                continue",
    "            fi",
    "            kib=$((blocks * size / 1024)) dir=${file%/data}",
    '            if rm -f "$file"; then',
    '                rmdir "$dir" 2>/dev/null',
    "                freed=$((freed + kib)) n=$((n + 1))",
    "                algorithm=${dir%/*/*} algorithm=${algorithm##*/}",
    '                echo "cache-evict: deleted blob $algorithm:${dir##*/} ($kib KiB, fetched at $mtime s since the epoch)"',
    "            fi",
    '        done < "$order"',
    '        rm -f "$order"',
    '        [ "$spared" -eq 0 ] || echo "cache-evict: kept $spared blobs read since the last pass for the next one"',
    '        if [ "$n" -gt 0 ]; then',
    "            evictions=$((evictions + 1)) blobs_total=$((blobs_total + n)) kib_total=$((kib_total + freed)) stuck=",
    '            echo "cache-evict: $1 held $used KiB (limit $2 KiB): deleted the $n oldest blobs, $freed KiB, to get under $3 KiB; what is pulled next is fetched again (eviction $evictions)"',
    "            write_counters",
    '        elif [ "$spared" -eq 0 ] && [ -z "$stuck" ]; then',
    "            stuck=1",
    '            echo "cache-evict: $1 holds $used KiB (limit $2 KiB) and no committed blob is left to delete: the rest is fetches in flight, links and the coalescer\'s copies" >&2',
    "        fi",
    "    fi",
    '    sleep "$5"',
    "done",
].join("\n");
