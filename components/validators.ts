/**
 * Checks for configuration values, each against the grammar of the program that consumes the value
 * (the API server, kubelet, containerd, distribution, Go's standard library, bcrypt), not against what
 * JavaScript happens to parse. Every check returns `undefined` when the consumer accepts the value, or a
 * short phrase saying what would be accepted. A phrase never contains the value: some values are
 * secrets, and the caller decides whether to echo one.
 */

// ---------------------------------------------------------------------------------------------------
// Kubernetes names
// ---------------------------------------------------------------------------------------------------

// k8s.io/apimachinery/pkg/util/validation/validation.go: dns1123LabelFmt, dns1035LabelFmt, dns1123SubdomainFmt.
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** An RFC 1123 label, as the API server wants namespace names (IsDNS1123Label). */
export function dnsLabel(value: string): string | undefined {
    return value.length <= 63 && DNS1123_LABEL.test(value)
        ? undefined
        : "a DNS label: at most 63 characters of lower-case a-z, 0-9 and '-', starting and ending with a letter or digit";
}

/**
 * A Service name. The API server checks these as RFC 1035 labels (ValidateServiceName = NameIsDNS1035Label
 * in pkg/apis/core/validation), so a leading digit is refused unless the RelaxedServiceNameValidation gate is on.
 */
export function serviceName(value: string): string | undefined {
    return value.length <= 63 && DNS1035_LABEL.test(value)
        ? undefined
        : "a Service name: at most 63 characters of lower-case a-z, 0-9 and '-', starting with a letter and ending with a letter or digit";
}

/** An RFC 1123 subdomain, as the API server wants Secret, ConfigMap and StorageClass names (IsDNS1123Subdomain). */
export function dnsSubdomain(value: string): string | undefined {
    return value.length <= 253 && DNS1123_SUBDOMAIN.test(value)
        ? undefined
        : "a Kubernetes object name: at most 253 characters of lower-case a-z, 0-9, '-' and '.', each dot-separated part starting and ending with a letter or digit";
}

/** Namespaces every cluster has: creating one fails, and deleting one on destroy would break the cluster. */
export const SYSTEM_NAMESPACES: readonly string[] = ["default", "kube-system", "kube-public", "kube-node-lease"];

/** A namespace this program may create (and so delete on destroy). */
export function namespaceToCreate(value: string): string | undefined {
    const label = dnsLabel(value);
    if (label !== undefined) return label;
    return SYSTEM_NAMESPACES.includes(value)
        ? "a new namespace: the cluster's own namespaces exist already, and deleting one on destroy would break the cluster"
        : undefined;
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
export function dnsName(value: string): string | undefined {
    // IsDNS1123Subdomain bounds only the whole name; DNS also bounds each label at 63.
    if (dnsSubdomain(value) !== undefined || value.split(".").some((label) => label.length > 63)) {
        return "a DNS name: at most 253 characters of lower-case a-z, 0-9, '-' and '.', labels of at most 63 that start and end with a letter or digit";
    }
    return /^[0-9]+$/.test(value.slice(value.lastIndexOf(".") + 1)) ? MISTYPED_IP : undefined;
}

// Go net/netip/netip.go parseIPv4: four decimal fields 0-255, no leading zeros (Go 1.17+).
function parseGoIPv4(s: string): number[] | undefined {
    const fields: number[] = [];
    let val = 0;
    let digits = 0;
    for (let i = 0; i < s.length; i++) {
        const c = s[i];
        if (c >= "0" && c <= "9") {
            if (digits === 1 && val === 0) return undefined; // leading zero
            val = val * 10 + Number(c);
            digits++;
            if (val > 255) return undefined;
        } else if (c === ".") {
            if (i === 0 || i === s.length - 1 || s[i - 1] === "." || fields.length === 3) return undefined;
            fields.push(val);
            val = 0;
            digits = 0;
        } else {
            return undefined;
        }
    }
    if (fields.length < 3) return undefined;
    fields.push(val);
    return fields;
}

// Go net/netip/netip.go parseIPv6, with net.ParseIP's refusal of zones (net/ip.go parseIP).
function parseGoIPv6(input: string): boolean {
    if (input.includes("%")) return false;
    let s = input;
    let ellipsis = -1;
    if (s.startsWith("::")) {
        ellipsis = 0;
        s = s.slice(2);
        if (s === "") return true;
    }
    let i = 0;
    while (i < 16) {
        const hex = /^[0-9a-fA-F]*/.exec(s)![0];
        if (hex === "" || hex.length > 4) return false; // netip: 1-4 hex digits a group, a fifth fails even after leading zeros
        if (s[hex.length] === ".") {
            // An embedded IPv4 address replaces the last two fields.
            if ((ellipsis < 0 && i !== 12) || i + 4 > 16) return false;
            if (parseGoIPv4(s) === undefined) return false;
            s = "";
            i += 4;
            break;
        }
        i += 2;
        s = s.slice(hex.length);
        if (s === "") break;
        if (s[0] !== ":" || s.length === 1) return false;
        s = s.slice(1);
        if (s[0] === ":") {
            if (ellipsis >= 0) return false;
            ellipsis = i;
            s = s.slice(1);
            if (s === "") break;
        }
    }
    if (s !== "") return false;
    return i < 16 ? ellipsis >= 0 : ellipsis < 0;
}

/** 4 or 6 when Go's net.ParseIP reads the value as an address of that family (IPv4-mapped forms are 6), else undefined. */
export function ipVersion(value: string): 4 | 6 | undefined {
    // netip.ParseAddr decides the family by whichever of '.', ':' or '%' comes first.
    const first = /[.:%]/.exec(value)?.[0];
    if (first === ".") return parseGoIPv4(value) ? 4 : undefined;
    if (first === ":") return parseGoIPv6(value) ? 6 : undefined;
    return undefined;
}

/** An IP address exactly as Go's net.ParseIP accepts it: no leading zeros in IPv4, no IPv6 zone. */
export function ipAddress(value: string): string | undefined {
    return ipVersion(value) !== undefined ? undefined : "an IPv4 address such as 10.0.0.1 (no leading zeros) or an IPv6 address such as fd00::1 (no %zone)";
}

// ---------------------------------------------------------------------------------------------------
// Storage quantities
// ---------------------------------------------------------------------------------------------------

const BINARY_SI: Record<string, number> = { Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60 };
const DECIMAL_SI: Record<string, number> = { n: -9, u: -6, m: -3, "": 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
// <quantity> ::= <signedNumber><suffix>, from the comment on Quantity in
// k8s.io/apimachinery/pkg/api/resource/quantity.go; digits may be absent ("Gi" and "." parse as zero).
const K8S_QUANTITY = /^([+-]?)([0-9]*)(?:\.([0-9]*))?(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$/;
const INT64_MAX = (1n << 63n) - 1n;

interface Quantity {
    negative: boolean;
    /** The value is mantissa * 10^exp10 * 2^exp2. */
    mantissa: bigint;
    exp10: number;
    exp2: number;
    /** Ki..Ei: ParseQuantity silently caps these at 2^63-1. */
    binary: boolean;
}

// ParseQuantity and quantitySuffixer.interpret (quantity.go, suffix.go): which strings are quantities.
function parseK8sQuantity(value: string): Quantity | undefined {
    const m = value === "" ? null : K8S_QUANTITY.exec(value);
    if (!m) return undefined;
    const [, sign, whole, fraction = "", suffix = ""] = m;
    let exp10 = -fraction.length;
    let exp2 = 0;
    if (suffix in BINARY_SI) exp2 = BINARY_SI[suffix];
    else if (suffix in DECIMAL_SI) exp10 += DECIMAL_SI[suffix];
    else {
        // interpret accepts exponents within +-MaxInt32 (TestInterpretExponentInt32Bounds).
        const e = BigInt(suffix.slice(1));
        if (e > 2147483647n || e < -2147483647n) return undefined;
        // Clamped: every value this changes is far past 2^63 or rounds up to one byte either way.
        exp10 += Math.max(-400, Math.min(400, Number(e)));
    }
    return { negative: sign === "-", mantissa: BigInt(`${whole}${fraction}` || "0"), exp10, exp2, binary: suffix in BINARY_SI };
}

/** The value as a fraction num/den of bytes. */
function quantityRatio(q: Quantity): { num: bigint; den: bigint } {
    let num = q.mantissa << BigInt(q.exp2);
    let den = 1n;
    if (q.exp10 >= 0) num *= 10n ** BigInt(q.exp10);
    else den = 10n ** BigInt(-q.exp10);
    return { num, den };
}

/**
 * The bytes the API server reads from a Kubernetes quantity (any form it accepts: bare numbers, `m`,
 * exponents, signs), rounded away from zero to a whole byte as Quantity.Value does, and with binary
 * suffixes capped at 2^63-1 as ParseQuantity caps them; undefined when the API server would refuse the
 * string. Compare sizes with it: `quantityBytes("1Gi")! > quantityBytes("500M")!`.
 */
export function quantityBytes(value: string): bigint | undefined {
    const q = parseK8sQuantity(value);
    if (!q) return undefined;
    const { num, den } = quantityRatio(q);
    let bytes = (num + den - 1n) / den;
    if (q.binary && bytes > INT64_MAX) bytes = INT64_MAX;
    return q.negative ? -bytes : bytes;
}

const STORAGE = "a storage quantity with a unit, such as 10Gi or 500Mi";

/**
 * A volume size that the API server accepts and that means what a user means: digits with an optional
 * fraction and a unit (Ki Mi Gi Ti Pi Ei, or k M G T P E), a whole number of bytes, at least `min`
 * (default 1Mi: no registry fits in less) and at most 2^63-1 bytes.
 */
export function storageQuantity(value: string, opts: { min?: string } = {}): string | undefined {
    const min = opts.min ?? "1Mi";
    const q = parseK8sQuantity(value);
    if (/^[0-9.]+(K|KB|KiB|MB|MiB|GB|GiB|TB|TiB|Kb|Mb|Gb|Tb)$/.test(value)) {
        return `${STORAGE} (Kubernetes units are k M G T P E for powers of 1000 and Ki Mi Gi Ti for powers of 1024, with no B)`;
    }
    if (!q) return STORAGE;
    if (/^[0-9.]+$/.test(value)) return `${STORAGE} (a bare number is bytes)`;
    if (/^[0-9.]+m$/.test(value)) return `${STORAGE} (m means thousandths of a byte; megabytes are M or Mi)`;
    if (!/^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)$/.test(value)) {
        return `${STORAGE}: digits, an optional fraction and a unit, with no sign or exponent`;
    }
    const { num, den } = quantityRatio(q);
    if (num % den !== 0n) return `${STORAGE} that is a whole number of bytes, such as 1.5Gi or 1536Mi`;
    const bytes = num / den;
    if (bytes > INT64_MAX) return `${STORAGE} below 8Ei (Kubernetes holds at most 2^63-1 bytes)`;
    const floor = quantityBytes(min) ?? 0n;
    if (bytes < floor) return `${STORAGE} of at least ${min}`;
    return undefined;
}

// ---------------------------------------------------------------------------------------------------
// Paths on a node
// ---------------------------------------------------------------------------------------------------

/**
 * An absolute directory on a Linux node, in one canonical spelling: '/'-separated names of
 * A-Z a-z 0-9 . _ - (nothing a shell, YAML or TOML would trip on), no '.' or '..' names, no '//' or
 * trailing '/', names of at most 255 bytes (NAME_MAX) and at most 4095 bytes in all (PATH_MAX counts the NUL).
 */
export function nodePath(value: string): string | undefined {
    const names = value.split("/").slice(1);
    if (!value.startsWith("/") || !/^[A-Za-z0-9._/-]+$/.test(value) || names.some((n) => n === "" || n === "." || n === "..")) {
        return "an absolute directory path on the node such as /etc/containerd/certs.d: '/'-separated names of A-Z a-z 0-9 . _ -, without '.', '..', '//' or a trailing '/'";
    }
    if (value.length > 4095 || names.some((n) => n.length > 255)) {
        return "a path of at most 4095 bytes whose names have at most 255 bytes each (Linux PATH_MAX and NAME_MAX)";
    }
    return undefined;
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

const REGISTRY_HOST = "a registry host as image references name it, such as docker.io, registry.example.com:5000 or [fd00::1]:5000 (lower case, port 1-65535)";

/**
 * A registry host as image references name it and as containerd looks it up in its hosts directory
 * (core/remotes/docker/config/hosts.go hostPaths: HOST_PORT_, then HOST:PORT, matched byte for byte).
 * It must survive distribution's normalisation (github.com/distribution/reference normalize.go
 * splitDockerDomain): a first path element with no '.' or ':' that is not `localhost` is a Docker Hub
 * namespace, and index.docker.io becomes docker.io, so containerd never looks such names up.
 * Upper case is refused although the reference grammar allows it: containerd does not fold case, so
 * Example.com and example.com are different directories, and references are written in lower case.
 */
export function registryHost(value: string): string | undefined {
    const hp = splitHostPort(value);
    if (!hp || value !== value.toLowerCase() || (hp.port !== undefined && !validPort(hp.port))) return REGISTRY_HOST;
    if (hp.bracketed) {
        // reference regexp.go ipv6address: [a-fA-F0-9:]+ in brackets, so no embedded IPv4 and no zone.
        if (!/^[0-9a-f:]+$/.test(hp.host) || ipVersion(hp.host) !== 6) return REGISTRY_HOST;
    } else if (ipVersion(hp.host) !== 4) {
        const name = dnsName(hp.host);
        if (name !== undefined) return name === MISTYPED_IP ? MISTYPED_IP : REGISTRY_HOST;
        if (!hp.host.includes(".") && hp.port === undefined && hp.host !== "localhost") {
            return "a host with a '.' or a :port, or localhost (image references read a bare first name as a Docker Hub namespace)";
        }
        if (value === "index.docker.io" || value === "registry-1.docker.io") {
            return "docker.io for Docker Hub: image references are normalised to it, so containerd never looks up another name for Hub images";
        }
    }
    // containerd's first directory name is HOST_PORT_, one byte longer than HOST:PORT; Linux NAME_MAX is 255.
    if ((hp.port === undefined ? value.length : value.length + 1) > 255) {
        return "a registry host whose certs.d directory name (host_port_) fits in 255 bytes";
    }
    return undefined;
}

/** A cache's host: a registry host that is not one the hosted registry already answers to. */
export function cacheHost(value: string, hostedHosts: readonly string[] = []): string | undefined {
    return (
        registryHost(value) ?? (hostedHosts.includes(value) ? "a host other than the hosted registry's: both would need the same certs.d directory" : undefined)
    );
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

/** An image reference kubelet can parse and that cannot move: a tag other than `latest`, or a digest. */
export function imageReference(value: string): string | undefined {
    const ref = parseImageReference(value);
    const pinned = "a pinned image reference with a tag other than latest or a digest, such as docker.io/library/registry:3.1.0";
    if (!ref) return `${pinned}, that kubelet can parse (lower-case repository, tags of at most 128 characters, sha256 digests)`;
    return ref.digest !== undefined || (ref.tag !== undefined && ref.tag !== "latest") ? undefined : pinned;
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
export function upstreamUrl(value: string): string | undefined {
    const m = /^(https?):\/\/(.*)$/s.exec(value);
    if (!m) return `${UPSTREAM}, starting with https:// or http:// in lower case`;
    const authority = m[2];
    if (authority.includes("@")) return `${UPSTREAM}, without credentials (distribution prints the URL in its log)`;
    if (/[/?#\\]/.test(authority)) return `${UPSTREAM}, with no path, query or fragment, not even a trailing slash`;
    if (/[\u0080-\uffff]/.test(authority)) return `${UPSTREAM}, with an internationalised name in its ASCII xn-- form`;
    const hp = /^[a-z0-9.:[\]-]+$/.test(authority) ? splitHostPort(authority) : undefined;
    if (!hp || (hp.port !== undefined && !validPort(hp.port))) return `${UPSTREAM}, in lower case with no spaces or escapes, port 1-65535`;
    if (hp.bracketed) return ipVersion(hp.host) === 6 ? undefined : UPSTREAM;
    if (ipVersion(hp.host) === 4) return undefined;
    const name = dnsName(hp.host);
    if (name !== undefined) return name === MISTYPED_IP ? `${UPSTREAM}, with ${MISTYPED_IP}` : UPSTREAM;
    // What is left can differ only in xn-- labels, which WHATWG URLs decode and refuse when they are not punycode.
    return URL.canParse(value) && new URL(value).hostname === hp.host ? undefined : `${UPSTREAM}, with xn-- labels that are valid punycode`;
}

// ---------------------------------------------------------------------------------------------------
// Go durations
// ---------------------------------------------------------------------------------------------------

const UNITS: Record<string, bigint> = {
    ns: 1n,
    us: 1_000n,
    "\u00b5s": 1_000n, // micro sign
    "\u03bcs": 1_000n, // Greek mu
    ms: 1_000_000n,
    s: 1_000_000_000n,
    m: 60_000_000_000n,
    h: 3_600_000_000_000n,
};
const TWO63 = 1n << 63n;

/** Nanoseconds, exactly as Go's time.ParseDuration reads the value (time/format.go), or undefined where it errs. */
export function parseGoDuration(value: string): bigint | undefined {
    let s = value;
    let neg = false;
    if (s[0] === "-" || s[0] === "+") {
        neg = s[0] === "-";
        s = s.slice(1);
    }
    if (s === "0") return 0n;
    if (s === "") return undefined;
    let d = 0n;
    while (s !== "") {
        // leadingInt: at most 2^63, else an error.
        const int = /^[0-9]*/.exec(s)![0];
        let v = 0n;
        for (const c of int) {
            if (v > TWO63 / 10n) return undefined;
            v = v * 10n + BigInt(c);
            if (v > TWO63) return undefined;
        }
        s = s.slice(int.length);
        // leadingFraction: stops gaining precision on overflow instead of failing.
        let f = 0n;
        let scale = 1;
        let post = false;
        if (s[0] === ".") {
            const frac = /^[0-9]*/.exec(s.slice(1))![0];
            post = frac !== "";
            let overflow = false;
            for (const c of frac) {
                if (overflow) continue;
                if (f > (TWO63 - 1n) / 10n) {
                    overflow = true;
                    continue;
                }
                const y = f * 10n + BigInt(c);
                if (y > TWO63) {
                    overflow = true;
                    continue;
                }
                f = y;
                scale *= 10;
            }
            s = s.slice(1 + frac.length);
        }
        if (int === "" && !post) return undefined;
        const u = /^[^0-9.]*/.exec(s)![0];
        const unit = UNITS[u];
        if (u === "" || unit === undefined) return undefined;
        s = s.slice(u.length);
        if (v > TWO63 / unit) return undefined;
        v *= unit;
        if (f > 0n) {
            // Go computes this term in float64; Number() rounds a bigint the same way Go converts uint64.
            v += BigInt(Math.trunc(Number(f) * (Number(unit) / scale)));
            if (v > TWO63) return undefined;
        }
        d += v;
        if (d > TWO63) return undefined;
    }
    if (neg) return -d;
    return d > TWO63 - 1n ? undefined : d;
}

/**
 * A duration in Go's time.ParseDuration grammar and range (what distribution reads for proxy.ttl):
 * numbers with units h m s ms us ns, no spaces, days or weeks, at most 2562047h47m16.854775807s;
 * and at least `min`, itself a Go duration, when given.
 */
export function goDuration(value: string, opts: { min?: string } = {}): string | undefined {
    const ns = parseGoDuration(value);
    if (ns === undefined) {
        return "a Go duration such as 168h, 72h30m or 1.5h: numbers with units h, m, s, ms, us or ns, no spaces or days, at most 2562047h";
    }
    const min = opts.min === undefined ? undefined : parseGoDuration(opts.min);
    if (min !== undefined && ns < min) return min === 0n ? "a duration that is not negative" : `a duration of at least ${opts.min}`;
    return undefined;
}

// ---------------------------------------------------------------------------------------------------
// Credentials
// ---------------------------------------------------------------------------------------------------

/**
 * A password for htpasswd (bcrypt): at least 12 characters, not only blanks, and at most 72 UTF-8
 * bytes, because bcrypt ignores every byte after the 72nd (bcryptjs `truncates`). The phrase gives
 * counts, never content.
 */
export function password(value: string): string | undefined {
    const chars = [...value].length;
    const bytes = Buffer.byteLength(value, "utf8");
    if (chars > 0 && value.trim() === "") return "a password that is not only blanks";
    if (chars < 12) return `a password of at least 12 characters (this one has ${chars})`;
    if (bytes > 72) return `a password of at most 72 bytes in UTF-8, since bcrypt ignores the rest (this one has ${bytes})`;
    return undefined;
}

/** A user name for htpasswd and .dockerconfigjson, where ':' ends the name. */
export function htpasswdUser(value: string): string | undefined {
    return /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/.test(value)
        ? undefined
        : "a user name of 1-64 characters from A-Z a-z 0-9 . _ @ -, starting with a letter or digit";
}

// ---------------------------------------------------------------------------------------------------
// Object storage (S3 and S3-compatible stores)
// ---------------------------------------------------------------------------------------------------

/** An S3 bucket name (AWS's general purpose bucket rules; S3-compatible stores accept at least these). */
export function s3Bucket(value: string): string | undefined {
    return /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(value) && !value.includes("..") && ipVersion(value) === undefined
        ? undefined
        : "an S3 bucket name: 3 to 63 characters of lower-case a-z, 0-9, '.' and '-', starting and ending with a letter or digit, not an IP address";
}

/** An AWS region name as the S3 driver sends it in signatures (any such name for an S3-compatible store). */
export function awsRegion(value: string): string | undefined {
    return /^[a-z]{2}(-[a-z0-9]+){1,3}$/.test(value)
        ? undefined
        : "a region name such as us-east-1 (an S3-compatible store accepts us-east-1 unless told otherwise)";
}

/** An IAM role ARN, which IRSA's annotation takes. */
export function iamRoleArn(value: string): string | undefined {
    return /^arn:aws[a-z-]*:iam::[0-9]{12}:role\/[\w+=,.@/-]{1,512}$/.test(value)
        ? undefined
        : "an IAM role ARN such as arn:aws:iam::123456789012:role/cluster-registry";
}
