/**
 * nginx.conf of a cache's coalescer: nginx in front of distribution's proxy, so that N clients asking
 * at once for what the cache does not hold yet cause one request to the registry (and so one upstream
 * download) instead of N (distribution coalesces nothing: registry/proxy/proxyblobstore.go, issue 4511).
 */

export interface NginxConfigInput {
    /** Port nginx listens on (the Service's target), with TLS. */
    port: number;
    /** Where the registry listens inside the pod, `127.0.0.1:PORT`; it speaks TLS too (see coalescer.ts). */
    backend: string;
    /** The cache's certificate and key files. */
    tls: { certificate: string; key: string };
    /** Directory of nginx's own cache: complete responses, and the ones being fetched. */
    cacheDir: string;
    /** nginx's pid file and temp files for requests it does not cache: a writable directory. */
    tmpDir: string;
    /** Check every cacheable request's credentials with the registry: true when the cache has an htpasswd. */
    authenticate: boolean;
    /** The cache's TTL in seconds (0: none): nginx holds nothing longer than the registry would. */
    ttlSeconds: number;
    /** At most this much in nginx's cache, in KiB, where the cache's volume is small. Default: {@link COALESCER_MAX_SIZE}. */
    maxSizeKiB?: bigint;
    /**
     * A second, plain-HTTP server that serves one file (the cache's eviction counters, Prometheus text)
     * at {@link METRICS_PATH} and answers 404 to anything else, on `listen` (`127.0.0.1:PORT` or `PORT`).
     * Default: none.
     */
    metrics?: { listen: string; file: string };
}

/** Where the metrics server serves its file. */
export const METRICS_PATH = "/metrics";
/** Prometheus' text exposition format. */
export const PROMETHEUS_TEXT = "text/plain; version=0.0.4";

/** How long waiting clients wait for the one download, and when one more request may go upstream. */
export const COALESCER_LOCK_TIMEOUT = "4m";
/** nginx's cache is bounded: at most this much, and it evicts (least recently used first)... */
export const COALESCER_MAX_SIZE = "2g";
/** ...the same in KiB: a cache with a fill limit gives nginx less (see registry.ts evictionThresholds). */
export const COALESCER_MAX_KIB = 2 * 1024 * 1024;
/** ...and it keeps at least this much of the volume free, evicting first. */
export const COALESCER_MIN_FREE = "1g";
/** Entries no request asked for in this long are evicted (seconds): distribution keeps its own copy. */
export const COALESCER_INACTIVE_SECONDS = 600;
/** How long a blob is served from nginx's copy (seconds): longer than any wait for it lasts. */
export const COALESCER_BLOB_SECONDS = 3600;
/** A manifest is shared for this long (seconds): the window in which N asking cost one upstream GET. */
export const COALESCER_MANIFEST_SECONDS = 30;
/** Where the auth check is made: an internal location, never reachable from outside. */
const AUTH_LOCATION = "/_coalescer_auth";

/** The `location` blocks, at the server block's depth; cached ones check credentials first and share one cache with a lock. */
function locations(input: NginxConfigInput): string[] {
    const capped = (seconds: number) => `${input.ttlSeconds > 0 ? Math.min(seconds, input.ttlSeconds) : seconds}s`;
    const cached = (key: string, valid: string) => [
        ...(input.authenticate ? [`auth_request ${AUTH_LOCATION};`] : []),
        "proxy_pass https://registry;",
        "proxy_cache coalescer;",
        `proxy_cache_key "${key}";`,
        `proxy_cache_valid 200 ${valid};`,
        "proxy_cache_lock on;",
        `proxy_cache_lock_timeout ${COALESCER_LOCK_TIMEOUT};`,
        // Not the default 5 s, which lets one more request upstream every 5 s of a long download.
        `proxy_cache_lock_age ${COALESCER_LOCK_TIMEOUT};`,
    ];
    // A regex with braces must be quoted, or nginx reads `{` as the block's start.
    const block = (why: string, match: string, body: string[]) => ["", `# ${why}`, `location ${match} {`, ...body.map((l) => `    ${l}`), "}"];
    return [
        ...block(
            "Digest-addressed, so one answer fits every client.",
            '~ "^/v2/.+/blobs/sha256:[0-9a-f]{64}$"',
            cached("$uri", capped(COALESCER_BLOB_SECONDS)),
        ),
        ...block(
            "Manifests by tag or digest: the answer depends on what the client accepts.",
            "~ ^/v2/.+/manifests/[^/]+$",
            cached("$uri $http_accept", capped(COALESCER_MANIFEST_SECONDS)),
        ),
        ...block("Not cached, so the registry checks the credentials itself; streamed both ways, so nothing spills to disk.", "/", [
            "proxy_pass https://registry;",
            "proxy_buffering off;",
            "proxy_request_buffering off;",
        ]),
        ...(input.authenticate
            ? block("A cache hit never reaches the registry: nginx asks it first whether these credentials may pull.", `= ${AUTH_LOCATION}`, [
                  "internal;",
                  "proxy_pass https://registry/v2/;",
                  "proxy_pass_request_body off;",
                  'proxy_set_header Content-Length "";',
              ])
            : []),
    ];
}

/**
 * Renders the config. nginx must run with `-e stderr` (its built-in error log path is on a read-only
 * root) and as a non-root user: every path it writes is under `cacheDir` or `tmpDir`.
 */
export function renderNginxConfig(input: NginxConfigInput): string {
    const t = input.tmpDir;
    return `# Generated by cluster-registry: the cache's coalescer.
worker_processes 2;
pid ${t}/nginx.pid;
error_log stderr warn;

events {
    worker_connections 1024;
}

http {
    server_tokens off;
    log_format coalescer '$remote_addr "$request" $status $body_bytes_sent cache=$upstream_cache_status registry=$upstream_status $request_time';
    access_log /dev/stdout coalescer;
    client_body_temp_path ${t}/client-body;
    proxy_temp_path ${t}/proxy;
    fastcgi_temp_path ${t}/fastcgi;
    uwsgi_temp_path ${t}/uwsgi;
    scgi_temp_path ${t}/scgi;
    # Pushes are the registry's to refuse (405), not nginx's (413).
    client_max_body_size 0;
    # Temp files beside the entries (use_temp_path=off): a finished download is renamed, not copied.
    proxy_cache_path ${input.cacheDir} levels=1:2 keys_zone=coalescer:10m max_size=${input.maxSizeKiB === undefined ? COALESCER_MAX_SIZE : `${input.maxSizeKiB}k`} min_free=${COALESCER_MIN_FREE} inactive=${input.ttlSeconds > 0 ? Math.min(COALESCER_INACTIVE_SECONDS, input.ttlSeconds) : COALESCER_INACTIVE_SECONDS}s use_temp_path=off;
    # distribution marks local hits cacheable for a year and proxied ones not at all: our windows decide.
    proxy_ignore_headers Cache-Control Expires Set-Cookie X-Accel-Expires X-Accel-Redirect X-Accel-Limit-Rate X-Accel-Buffering X-Accel-Charset;

    upstream registry {
        server ${input.backend};
        keepalive 32;
    }

    server {
        listen ${input.port} ssl;
        ssl_certificate ${input.tls.certificate};
        ssl_certificate_key ${input.tls.key};
        ssl_protocols TLSv1.2 TLSv1.3;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-Proto https;
        # On the pod's loopback: nobody can be in between, and the pod holds no CA to verify with.
        proxy_ssl_verify off;
        proxy_ssl_session_reuse on;
${locations(input)
    .map((l) => (l ? `        ${l}` : l))
    .join("\n")}
    }
${input.metrics ? metricsServer(input.metrics) : ""}}
`;
}

/**
 * The counters file, read-only (GET and HEAD; other methods 403), as Prometheus text; nothing else
 * (no index, no listing: 404). Before the eviction loop first writes it, 404 too. No access log: a
 * scrape every 30 s is not a pull.
 */
function metricsServer(metrics: { listen: string; file: string }): string {
    return `
    # The cache's eviction counters (written by its evict container) for Prometheus, and nothing else.
    server {
        listen ${metrics.listen};
        access_log off;
        location = ${METRICS_PATH} {
            limit_except GET {
                deny all;
            }
            types {
            }
            default_type "${PROMETHEUS_TEXT}";
            alias ${metrics.file};
        }
        location / {
            return 404;
        }
    }
`;
}
