/**
 * Checks for configuration values, each as narrow as the settings that use it: the forms a setting
 * takes, checked against what its consumer (the API server, containerd, distribution, Go's standard
 * library, bcrypt) does with them. A check answers with a `Verdict`: accepted, or what would be
 * accepted instead. That phrase never contains the value: some values are secrets, and the caller
 * decides whether to echo one.
 */
import * as net from "node:net";

/** A check's answer: the value is accepted, or `expected` says what would be. */
export type Verdict = { ok: true } | { ok: false; expected: string };

export const ACCEPTED: Verdict = { ok: true };

/** Refuses, saying what would be accepted. */
export function expecting(expected: string): Verdict {
    return { ok: false, expected };
}

/** Accepted when `ok`, else refused with `expected`. */
export function acceptedIf(ok: boolean, expected: string): Verdict {
    return ok ? ACCEPTED : expecting(expected);
}

/** The same verdict, its phrase reworded (a setting that says more than the check it uses). */
export function reworded(verdict: Verdict, reword: (expected: string) => string): Verdict {
    return verdict.ok ? verdict : expecting(reword(verdict.expected));
}

// ---------------------------------------------------------------------------------------------------
// Kubernetes names
// ---------------------------------------------------------------------------------------------------

// k8s.io/apimachinery/pkg/util/validation/validation.go: dns1123LabelFmt, dns1035LabelFmt, dns1123SubdomainFmt.
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** An RFC 1123 label, as the API server wants namespace names (IsDNS1123Label). */
export function checkDnsLabel(value: string): Verdict {
    if (value.length <= 63 && DNS1123_LABEL.test(value)) return ACCEPTED;
    return expecting(`a DNS label: at most 63 characters of lower-case a-z, 0-9 and '-', starting and ending with a letter or digit (${labelDefect(value)})`);
}

/** What is wrong with a refused label, first things first, so that the user is not left to guess. */
function labelDefect(value: string): string {
    if (/[A-Z]/.test(value)) return "this one has upper-case letters";
    if (/[^a-z0-9-]/.test(value)) return "this one has other characters";
    if (value.length > 63) return `this one has ${value.length} characters`;
    return value === "" ? "this one is empty" : "this one starts or ends with '-'";
}

/**
 * A Service name. The API server checks these as RFC 1035 labels (ValidateServiceName = NameIsDNS1035Label
 * in pkg/apis/core/validation), so a leading digit is refused unless the RelaxedServiceNameValidation gate is on.
 */
export function checkServiceName(value: string): Verdict {
    return acceptedIf(
        value.length <= 63 && DNS1035_LABEL.test(value),
        "a Service name: at most 63 characters of lower-case a-z, 0-9 and '-', starting with a letter and ending with a letter or digit",
    );
}

/** An RFC 1123 subdomain, as the API server wants Secret, ConfigMap and StorageClass names (IsDNS1123Subdomain). */
export function checkDnsSubdomain(value: string): Verdict {
    return acceptedIf(
        value.length <= 253 && DNS1123_SUBDOMAIN.test(value),
        "a Kubernetes object name: at most 253 characters of lower-case a-z, 0-9, '-' and '.', each dot-separated part starting and ending with a letter or digit",
    );
}

/** Namespaces every cluster has: creating one fails, and deleting one on destroy would break the cluster. */
export const SYSTEM_NAMESPACES: readonly string[] = ["default", "kube-system", "kube-public", "kube-node-lease"];

/** A namespace this program may create (and so delete on destroy). */
export function checkNamespaceToCreate(value: string): Verdict {
    const label = checkDnsLabel(value);
    if (!label.ok) return label;
    return acceptedIf(
        !SYSTEM_NAMESPACES.includes(value),
        "a new namespace: the cluster's own namespaces exist already, and deleting one on destroy would break the cluster",
    );
}

// ---------------------------------------------------------------------------------------------------
// DNS names and IP addresses
// ---------------------------------------------------------------------------------------------------

const MISTYPED_IP = "a valid IP address (four numbers 0-255 without leading zeros, such as 10.0.0.1) or a DNS name whose last label is not all digits";

/**
 * A DNS name for a certificate SAN, a cluster domain or a URL host: an RFC 1123 subdomain, lower case,
 * whose last label is not all digits. Top-level labels are never numeric (RFC 3696 section 2); a name
 * like 10.0.0.256 or 1.2.3 is a mistyped IP address that Go would look up in DNS and WHATWG URLs
 * (Node's `URL`) would turn into some other address.
 */
export function checkDnsName(value: string): Verdict {
    // IsDNS1123Subdomain bounds only the whole name; DNS also bounds each label at 63.
    if (!checkDnsSubdomain(value).ok || value.split(".").some((label) => label.length > 63)) {
        return expecting(
            "a DNS name: at most 253 characters of lower-case a-z, 0-9, '-' and '.', labels of at most 63 that start and end with a letter or digit",
        );
    }
    return acceptedIf(!/^[0-9]+$/.test(value.slice(value.lastIndexOf(".") + 1)), MISTYPED_IP);
}

/**
 * 4 or 6 when Go's net.ParseIP reads the value as an address of that family, else undefined. Node's
 * net.isIP reads the same strings (dotted quads without leading zeros, RFC 4291 IPv6 with an embedded
 * IPv4 only at the end) except zones, which net.ParseIP refuses; a unit test holds it to Go's answers.
 */
export function ipVersion(value: string): 4 | 6 | undefined {
    const family = value.includes("%") ? 0 : net.isIP(value);
    return family === 4 || family === 6 ? family : undefined;
}

/** An IP address exactly as Go's net.ParseIP accepts it: no leading zeros in IPv4, no IPv6 zone. */
export function isIpAddress(value: string): boolean {
    return ipVersion(value) !== undefined;
}

// ---------------------------------------------------------------------------------------------------
// Storage sizes
// ---------------------------------------------------------------------------------------------------

const STORAGE = "a storage quantity with a unit, such as 10Gi or 500Mi";
const UNIT_BYTES: Record<string, bigint> = { k: 10n ** 3n, M: 10n ** 6n, G: 10n ** 9n, T: 10n ** 12n, P: 10n ** 15n, E: 10n ** 18n };
for (const [i, u] of ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"].entries()) UNIT_BYTES[u] = 1n << BigInt(10 * (i + 1));
const INT64_MAX = (1n << 63n) - 1n;
const MIN_VOLUME = 1n << 20n;
// Every string the API server reads as a quantity (k8s.io/apimachinery resource/quantity.go); used only
// to say why one it would take is still refused here.
const K8S_QUANTITY = /^[+-]?[0-9]*(\.[0-9]*)?(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$/;

/**
 * A volume size that means what a user means: digits with an optional fraction and a unit (Ki Mi Gi
 * Ti Pi Ei, or k M G T P E), a whole number of bytes, from 1Mi (no registry fits in less) to 2^63-1
 * bytes. Every such string is a quantity the API server accepts, with the same value.
 */
export function checkStorageQuantity(value: string): Verdict {
    const m = /^([0-9]+)(?:\.([0-9]+))?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)$/.exec(value);
    if (!m) return expecting(whyNotAStorageQuantity(value));
    const [, whole, fraction = "", unit] = m;
    const scale = 10n ** BigInt(fraction.length);
    const scaled = BigInt(whole + fraction) * UNIT_BYTES[unit];
    if (scaled % scale !== 0n) return expecting(`${STORAGE} that is a whole number of bytes, such as 1.5Gi or 1536Mi`);
    const bytes = scaled / scale;
    if (bytes > INT64_MAX) return expecting(`${STORAGE} below 8Ei (Kubernetes holds at most 2^63-1 bytes)`);
    return acceptedIf(bytes >= MIN_VOLUME, `${STORAGE} of at least 1Mi`);
}

/** The bytes of a quantity {@link checkStorageQuantity} accepts (a cache's size, for its fill limit). */
export function storageQuantityBytes(value: string): bigint {
    const m = /^([0-9]+)(?:\.([0-9]+))?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)$/.exec(value);
    if (!m || !checkStorageQuantity(value).ok) throw new Error(`${JSON.stringify(value)} is not ${STORAGE}`);
    const [, whole, fraction = "", unit] = m;
    return (BigInt(whole + fraction) * UNIT_BYTES[unit]) / 10n ** BigInt(fraction.length);
}

/** What to say about a string outside the narrow form, in the order a user most likely meant it. */
function whyNotAStorageQuantity(value: string): string {
    if (/^[0-9.]+(K|KB|KiB|MB|MiB|GB|GiB|TB|TiB|Kb|Mb|Gb|Tb)$/.test(value)) {
        return `${STORAGE} (Kubernetes units are k M G T P E for powers of 1000 and Ki Mi Gi Ti for powers of 1024, with no B)`;
    }
    const exponent = /[eE]([+-]?[0-9]+)$/.exec(value)?.[1];
    if (value === "" || !K8S_QUANTITY.test(value) || Math.abs(Number(exponent ?? 0)) > 2147483647) return STORAGE;
    if (/^[0-9.]+$/.test(value)) return `${STORAGE} (a bare number is bytes)`;
    if (/^[0-9.]+m$/.test(value)) return `${STORAGE} (m means thousandths of a byte; megabytes are M or Mi)`;
    return `${STORAGE}: digits, an optional fraction and a unit, with no sign or exponent`;
}

// ---------------------------------------------------------------------------------------------------
// Paths on a node
// ---------------------------------------------------------------------------------------------------

/**
 * An absolute directory on a Linux node, in one canonical spelling: '/'-separated names of
 * A-Z a-z 0-9 . _ - (nothing a shell, YAML or TOML would trip on), no '.' or '..' names, no '//' or
 * trailing '/', names of at most 255 bytes (NAME_MAX) and at most 4095 bytes in all (PATH_MAX counts the NUL).
 */
export function checkNodePath(value: string): Verdict {
    const names = value.split("/").slice(1);
    if (!value.startsWith("/") || !/^[A-Za-z0-9._/-]+$/.test(value) || names.some((n) => n === "" || n === "." || n === "..")) {
        return expecting(
            "an absolute directory path on the node such as /etc/containerd/certs.d: '/'-separated names of A-Z a-z 0-9 . _ -, without '.', '..', '//' or a trailing '/'",
        );
    }
    return acceptedIf(
        value.length <= 4095 && names.every((n) => n.length <= 255),
        "a path of at most 4095 bytes whose names have at most 255 bytes each (Linux PATH_MAX and NAME_MAX)",
    );
}

/**
 * Directories other software owns on a node: the OS (/etc, /usr, the /bin, /sbin and /lib trees,
 * /boot), the kernel's (/proc, /sys, /dev), runtime state (/run, /var/run) and kubelet's and
 * containerd's own state. Writing, chowning or removing anything inside them can break the node.
 */
const OWNED_BY_OTHERS = [
    "/etc",
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/boot",
    "/proc",
    "/sys",
    "/dev",
    "/run",
    "/var/run",
    "/var/lib/kubelet",
    "/var/lib/containerd",
];
/** Parents many programs share: a directory inside one is fine, the parent itself never. */
const SHARED_PARENTS = ["/var", "/var/lib", "/var/log", "/var/cache", "/var/tmp", "/tmp", "/opt", "/srv", "/home", "/root", "/mnt", "/media"];
/**
 * containerd's hosts directories under /etc (config_path's defaults from containerd 2.2 on, and what
 * kind and EKS AL2023 set): the one place inside /etc this program writes, and only as certsDir.
 */
export const SYSTEM_CERTS_DIRS: readonly string[] = ["/etc/containerd/certs.d", "/etc/docker/certs.d"];

/** The directory of OWNED_BY_OTHERS that `path` is or lies in, if any. */
function ownerRootOf(path: string): string | undefined {
    return OWNED_BY_OTHERS.find((root) => path === root || path.startsWith(`${root}/`));
}

const OWN_DIRECTORY =
    "a directory of this program's own: not /, /var, /var/lib, /opt or another shared parent, and not inside /etc, /usr, /bin, /sbin, /lib, /lib32, /lib64, /libx32, /boot, /proc, /sys, /dev, /run, /var/run, /var/lib/kubelet or /var/lib/containerd, which other software owns";

/**
 * A node directory this program may write, chown and remove things in: a canonical absolute path
 * (checkNodePath) that is not a shared parent and lies outside every directory other software owns,
 * except, when `certsDir`, containerd's own hosts directory in /etc (SYSTEM_CERTS_DIRS).
 */
export function checkNodeDirectory(value: string, opts: { certsDir?: boolean } = {}): Verdict {
    const syntax = checkNodePath(value);
    if (!syntax.ok || (opts.certsDir && SYSTEM_CERTS_DIRS.includes(value))) return syntax;
    const root = ownerRootOf(value);
    const certsDirs = opts.certsDir ? ` (in /etc only containerd's ${SYSTEM_CERTS_DIRS.join(" or ")})` : "";
    if (root !== undefined) return expecting(`${OWN_DIRECTORY}${certsDirs}; this one is in ${root}`);
    return acceptedIf(!SHARED_PARENTS.includes(value), `${OWN_DIRECTORY}${certsDirs}; this one is a shared parent`);
}

// ---------------------------------------------------------------------------------------------------
// Registry hosts and image references
// ---------------------------------------------------------------------------------------------------

/** Splits HOST[:PORT] and [IPV6][:PORT]; undefined when there is more than one ':' outside brackets. */
function splitHostPort(value: string): { host: string; port?: string; bracketed: boolean } | undefined {
    const b = /^\[([^\]]*)\](?::(.*))?$/.exec(value);
    if (b) return { host: b[1], port: b[2], bracketed: true };
    const parts = value.split(":");
    if (parts.length > 2) return undefined;
    return { host: parts[0], port: parts[1], bracketed: false };
}

/** A TCP port as digits 1-65535 with no leading zero, so that one port has one spelling. */
function validPort(port: string): boolean {
    return /^[1-9][0-9]{0,4}$/.test(port) && Number(port) <= 65535;
}

const REGISTRY_HOST = "a registry host as image references name it, such as docker.io or registry.example.com:5000 (lower case, port 1-65535)";

/**
 * A registry host as image references name it and as containerd looks it up in its hosts directory
 * (core/remotes/docker/config/hosts.go hostPaths: HOST_PORT_, then HOST:PORT, matched byte for byte).
 * It must survive distribution's normalisation (github.com/distribution/reference normalize.go
 * splitDockerDomain): a first path element with no '.' or ':' that is not `localhost` is a Docker Hub
 * namespace, and index.docker.io becomes docker.io, so containerd never looks such names up.
 * Upper case is refused although the reference grammar allows it: containerd does not fold case, so
 * Example.com and example.com are different directories, and references are written in lower case.
 */
export function checkRegistryHost(value: string): Verdict {
    const hp = splitHostPort(value);
    if (!hp || value !== value.toLowerCase() || (hp.port !== undefined && !validPort(hp.port))) return expecting(REGISTRY_HOST);
    if (hp.bracketed) {
        // reference regexp.go ipv6address: [a-fA-F0-9:]+ in brackets, so no embedded IPv4 and no zone.
        if (!/^[0-9a-f:]+$/.test(hp.host) || ipVersion(hp.host) !== 6) return expecting(REGISTRY_HOST);
    } else if (ipVersion(hp.host) !== 4) {
        const name = checkDnsName(hp.host);
        if (!name.ok) return expecting(name.expected === MISTYPED_IP ? MISTYPED_IP : REGISTRY_HOST);
        if (!hp.host.includes(".") && hp.port === undefined && hp.host !== "localhost") {
            return expecting("a host with a '.' or a :port, or localhost (image references read a bare first name as a Docker Hub namespace)");
        }
        if (value === "index.docker.io" || value === "registry-1.docker.io") {
            return expecting("docker.io for Docker Hub: image references are normalised to it, so containerd never looks up another name for Hub images");
        }
    }
    // containerd's first directory name is HOST_PORT_, one byte longer than HOST:PORT; Linux NAME_MAX is 255.
    return acceptedIf(
        (hp.port === undefined ? value.length : value.length + 1) <= 255,
        "a registry host whose certs.d directory name (host_port_) fits in 255 bytes",
    );
}

/**
 * A cache's host: a registry host that is not one the hosted registry already answers to, and not an
 * IPv6 address: containerd looks up `[fd00::1]:5000` in a directory of that name, which the node agent
 * does not write (it takes no brackets or colons in a file name), so such a cache would fail at
 * `pulumi up` on every node instead of here.
 */
export function checkCacheHost(value: string, hostedHosts: readonly string[] = []): Verdict {
    const registry = checkRegistryHost(value);
    if (!registry.ok) return registry;
    if (value.startsWith("[")) {
        return expecting(
            "a host name or IPv4 address such as registry.example.com:5000 or 10.0.0.5:5000: an IPv6 host's certs.d directory is not supported on nodes yet (the URL may still be IPv6)",
        );
    }
    return acceptedIf(!hostedHosts.includes(value), "a host other than the hosted registry's: both would need the same certs.d directory");
}

// github.com/distribution/reference regexp.go, built from the same pieces.
const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const DOMAIN_AND_PORT = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[(?:[a-fA-F0-9:]+)\\])(?::[0-9]+)?`;
const PATH_COMPONENT = "[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*";
const REMOTE_NAME = `${PATH_COMPONENT}(?:/${PATH_COMPONENT})*`;
const NAME = `(?:${DOMAIN_AND_PORT}/)?${REMOTE_NAME}`;
const TAG = "[\\w][\\w.-]{0,127}";
const DIGEST = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}";
const REFERENCE = new RegExp(`^(${NAME})(?::(${TAG}))?(?:@(${DIGEST}))?$`);
const ANCHORED_NAME = new RegExp(`^(?:(${DOMAIN_AND_PORT})/)?(${REMOTE_NAME})$`);

/** An image reference as kubelet and containerd read it, normalised: `nginx` is docker.io/library/nginx. */
export interface ImageReference {
    /** The registry host: the name containerd looks up in its hosts directory. */
    domain: string;
    /** The repository path, at most 255 characters. */
    path: string;
    tag?: string;
    digest?: string;
}

/**
 * Parses like reference.ParseNormalizedNamed (github.com/distribution/reference normalize.go), the parser
 * kubelet and containerd's CRI use. Digests must be sha256 with 64 lower-case hex digits (go-digest's
 * Validate); the reference grammar alone would take any algorithm, but go-digest refuses unregistered ones.
 */
export function parseImageReference(value: string): ImageReference | undefined {
    if (/^[a-f0-9]{64}$/.test(value)) return undefined; // ParseNormalizedNamed refuses bare identifiers
    // splitDockerDomain
    const slash = value.indexOf("/");
    let domain = "docker.io";
    let remainder = `library/${value}`;
    if (slash >= 0) {
        const first = value.slice(0, slash);
        remainder = value.slice(slash + 1);
        if (first === "localhost" || /[.:]/.test(first) || first !== first.toLowerCase()) domain = first;
        else remainder = value;
        if (first === "index.docker.io") domain = "docker.io";
        if (domain === "docker.io" && !remainder.includes("/")) remainder = `library/${remainder}`;
    }
    const colon = remainder.indexOf(":");
    const remote = colon >= 0 ? remainder.slice(0, colon) : remainder;
    if (remote !== remote.toLowerCase()) return undefined;
    // reference.go Parse
    const m = REFERENCE.exec(`${domain}/${remainder}`);
    if (!m) return undefined;
    const name = ANCHORED_NAME.exec(m[1]);
    if (!name || name[2].length > 255) return undefined;
    const digest = m[3];
    if (digest !== undefined && !/^sha256:[a-f0-9]{64}$/.test(digest)) return undefined;
    return { domain: name[1] ?? "", path: name[2], tag: m[2], digest };
}

/** A tag naming one release: a full version x.y.z (v optional), with an optional suffix such as -alpine. */
const RELEASE_TAG = /^v?[0-9]+\.[0-9]+\.[0-9]+([-_.+][A-Za-z0-9_.-]*)?$/;

/**
 * An image reference kubelet can parse and that cannot move: a digest, or a tag naming one release.
 * `registry:3` or `nginx:1.28` is re-pointed at every patch release, so a rerun with no config change
 * (or a node pulling afresh) would run another image than the one previewed.
 */
export function checkImageReference(value: string): Verdict {
    const ref = parseImageReference(value);
    const pinned =
        "a pinned image reference: a tag that is a full version x.y.z (optionally with a suffix such as -alpine), or a digest, such as docker.io/library/registry:3.1.0 or registry@sha256:…; a tag such as 3, 3.1 or latest (or no tag) moves";
    if (!ref) return expecting(`${pinned}, that kubelet can parse (lower-case repository, tags of at most 128 characters, sha256 digests)`);
    return acceptedIf(ref.digest !== undefined || (ref.tag !== undefined && RELEASE_TAG.test(ref.tag)), pinned);
}

// ---------------------------------------------------------------------------------------------------
// Upstream URLs
// ---------------------------------------------------------------------------------------------------

const UPSTREAM = "an http(s) URL of only a host and optional port, such as https://registry-1.docker.io or https://[fd00::1]:5000";

/**
 * An upstream for distribution's `proxy.remoteurl`, which Go's net/url reads. Only the spelling that Go
 * and WHATWG URLs (Node) read the same way is accepted: lower-case http(s), `//`, a host (DNS name,
 * IPv4 or [IPv6]) and an optional port 1-65535; no credentials (distribution logs the URL), path,
 * trailing slash, query, fragment, whitespace, backslash, percent-escape or non-ASCII. JavaScript
 * strips, lower-cases, punycodes, decodes and reads backslashes as slashes; Go keeps or refuses each.
 * Upper case in the host is refused too: Go would keep it and TLS would still match, but one spelling
 * keeps the hosts.toml we write and the comparisons we make exact.
 */
export function checkUpstreamUrl(value: string): Verdict {
    const m = /^(https?):\/\/(.*)$/s.exec(value);
    if (!m) return expecting(`${UPSTREAM}, starting with https:// or http:// in lower case`);
    const authority = m[2];
    if (authority.includes("@")) return expecting(`${UPSTREAM}, without credentials (distribution prints the URL in its log)`);
    if (/[/?#\\]/.test(authority)) return expecting(`${UPSTREAM}, with no path, query or fragment, not even a trailing slash`);
    if (/[\u0080-\uffff]/.test(authority)) return expecting(`${UPSTREAM}, with an internationalised name in its ASCII xn-- form`);
    const hp = /^[a-z0-9.:[\]-]+$/.test(authority) ? splitHostPort(authority) : undefined;
    if (!hp || (hp.port !== undefined && !validPort(hp.port))) return expecting(`${UPSTREAM}, in lower case with no spaces or escapes, port 1-65535`);
    if (hp.bracketed) return acceptedIf(ipVersion(hp.host) === 6, UPSTREAM);
    if (ipVersion(hp.host) === 4) return ACCEPTED;
    const name = checkDnsName(hp.host);
    if (!name.ok) return expecting(name.expected === MISTYPED_IP ? `${UPSTREAM}, with ${MISTYPED_IP}` : UPSTREAM);
    // What is left can differ only in xn-- labels, which WHATWG URLs decode and refuse when they are not punycode.
    return acceptedIf(URL.canParse(value) && new URL(value).hostname === hp.host, `${UPSTREAM}, with xn-- labels that are valid punycode`);
}

// ---------------------------------------------------------------------------------------------------
// Cache TTL: a Go duration
// ---------------------------------------------------------------------------------------------------

const UNIT_NS: Record<string, bigint> = {
    ns: 1n,
    us: 1_000n,
    "\u00b5s": 1_000n,
    "\u03bcs": 1_000n,
    ms: 1_000_000n,
    s: 1_000_000_000n,
    m: 60_000_000_000n,
    h: 3_600_000_000_000n,
};
// time.ParseDuration's grammar without the minus sign (a TTL is never negative; "-0" is zero): "0",
// or numbers, each with a fraction or not and a unit, no spaces.
const DURATION = /^[+-]?(?:0|(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|\u00b5s|\u03bcs|ms|s|m|h))+)$/;
const NS_MAX = (1n << 63n) - 1n;
const CACHE_TTL = "a Go duration such as 168h or 72h30m, or 0 to never expire";

/**
 * Nanoseconds as Go's time.ParseDuration (what distribution reads for proxy.ttl) reads a non-negative
 * duration, or undefined where Go errs or the duration is negative. Go sums a term's fraction in
 * float64 from at most the digits that fit in an int64; so does this, so the 2^63-1 ns bound matches.
 */
export function goDurationNanoseconds(value: string): bigint | undefined {
    if (!DURATION.test(value)) return undefined;
    let total = 0n;
    for (const [, whole, fraction = "", unit] of value.matchAll(/([0-9]*)(?:\.([0-9]*))?(ns|us|\u00b5s|\u03bcs|ms|s|m|h)/g)) {
        const ns = UNIT_NS[unit];
        let f = 0n;
        let scale = 1;
        for (const digit of fraction) {
            // Where Go's leadingFraction stops gaining precision (and ignores the remaining digits).
            if (f > NS_MAX / 10n || f * 10n + BigInt(digit) > NS_MAX + 1n) break;
            f = f * 10n + BigInt(digit);
            scale *= 10;
        }
        total += BigInt(whole || "0") * ns + BigInt(Math.trunc(Number(f) * (Number(ns) / scale)));
        if (total > NS_MAX) return undefined;
    }
    return value.startsWith("-") && total !== 0n ? undefined : total;
}

/** `cacheTtl`: a Go duration from 0 (never expire) to Go's largest, 2562047h47m16.854775807s. */
export function checkCacheTtl(value: string): Verdict {
    return acceptedIf(goDurationNanoseconds(value) !== undefined, CACHE_TTL);
}

// ---------------------------------------------------------------------------------------------------
// Credentials
// ---------------------------------------------------------------------------------------------------

/**
 * A password for htpasswd (bcrypt): at least 12 characters, not only blanks, and at most 72 UTF-8
 * bytes, because bcrypt ignores every byte after the 72nd (bcryptjs `truncates`). The phrase gives
 * counts, never content.
 */
export function checkPassword(value: string): Verdict {
    const chars = [...value].length;
    const bytes = Buffer.byteLength(value, "utf8");
    if (chars > 0 && value.trim() === "") return expecting("a password that is not only blanks");
    if (chars < 12) return expecting(`a password of at least 12 characters (this one has ${chars})`);
    return acceptedIf(bytes <= 72, `a password of at most 72 bytes in UTF-8, since bcrypt ignores the rest (this one has ${bytes})`);
}

/** Prefixes of well-known tokens: GitHub, GitLab, Docker Hub, AWS access keys, Slack, API keys, JWTs. */
const TOKEN_PREFIX = /(^|[=:@\s])(ghp_|gho_|ghu_|ghs_|ghr_|github_pat_|glpat-|dckr_pat_|AKIA|ASIA|xox[abpr]-|sk-|eyJ)[A-Za-z0-9_\-.]{8,}/;

/**
 * Whether a value typed into a non-secret setting looks like a password or a token, so that a message
 * never echoes it (the stack file keeps it in plain text already; the CLI's output and CI logs need
 * not too). Errs on hiding: a well-known token prefix; `NAME:SECRET` where SECRET has mixed case or a
 * symbol and no dot (an image tag has neither mix nor symbols, a port is digits); or a long random-looking run.
 */
export function looksLikeSecret(value: string): boolean {
    if (TOKEN_PREFIX.test(value)) return true;
    const pair = /(?:^|[=\s])[^\s:=/@]+:([^\s:/@.]{8,})$/.exec(value);
    if (pair) {
        const secret = pair[1];
        if ((/[A-Z]/.test(secret) && /[a-z]/.test(secret)) || /[^A-Za-z0-9_.-]/.test(secret)) return true;
    }
    return /[A-Za-z0-9+/_-]{24,}/.test(value) && [/[A-Z]/, /[a-z]/, /[0-9]/].every((r) => r.test(value)) && !value.includes(".") && !value.startsWith("/");
}

/** A user name for htpasswd and .dockerconfigjson, where ':' ends the name. */
export function checkHtpasswdUser(value: string): Verdict {
    return acceptedIf(
        /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/.test(value),
        "a user name of 1-64 characters from A-Z a-z 0-9 . _ @ -, starting with a letter or digit",
    );
}

// ---------------------------------------------------------------------------------------------------
// Object storage (S3 and S3-compatible stores)
// ---------------------------------------------------------------------------------------------------

/** An S3 bucket name (AWS's general purpose bucket rules; S3-compatible stores accept at least these). */
export function checkS3Bucket(value: string): Verdict {
    return acceptedIf(
        /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(value) && !value.includes("..") && ipVersion(value) === undefined,
        "an S3 bucket name: 3 to 63 characters of lower-case a-z, 0-9, '.' and '-', starting and ending with a letter or digit, not an IP address",
    );
}

/** An AWS region name as the S3 driver sends it in signatures (any such name for an S3-compatible store). */
export function checkAwsRegion(value: string): Verdict {
    return acceptedIf(
        /^[a-z]{2}(-[a-z0-9]+){1,3}$/.test(value),
        "a region name such as us-east-1 (an S3-compatible store accepts us-east-1 unless told otherwise)",
    );
}

/** An IAM role ARN, which IRSA's annotation takes. */
export function checkIamRoleArn(value: string): Verdict {
    return acceptedIf(
        /^arn:aws[a-z-]*:iam::[0-9]{12}:role\/[\w+=,.@/-]{1,512}$/.test(value),
        "an IAM role ARN such as arn:aws:iam::123456789012:role/cluster-registry",
    );
}
