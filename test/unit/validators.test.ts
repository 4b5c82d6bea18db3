/**
 * Each check against its consumer's grammar. Tables marked "Go 1.24" were run through Go 1.24.4's own
 * net.ParseIP, time.ParseDuration and net/url when they were written; the others come from the
 * consumer's source and tests (apimachinery quantity_test.go, distribution/reference tests).
 */
import * as net from "node:net";
import * as bcrypt from "bcryptjs";
import { describe, expect, it } from "vitest";
import {
    checkCacheHost,
    checkCacheTtl,
    checkDnsLabel,
    checkDnsName,
    checkDnsSubdomain,
    checkHtpasswdUser,
    checkImageReference,
    checkNamespaceToCreate,
    checkNodeDirectory,
    checkNodePath,
    checkPassword,
    checkRegistryHost,
    checkServiceName,
    checkStorageQuantity,
    storageQuantityBytes,
    checkUpstreamUrl,
    goDurationNanoseconds,
    ipVersion,
    isIpAddress,
    looksLikeSecret,
    parseImageReference,
    SYSTEM_NAMESPACES,
    Verdict,
} from "../../components/validators";

/** A check as the phrase it refuses with, `undefined` when it accepts: what the tables below compare. */
const phrase =
    <A extends unknown[]>(check: (v: string, ...rest: A) => Verdict) =>
    (v: string, ...rest: A): string | undefined => {
        const verdict = check(v, ...rest);
        return verdict.ok ? undefined : verdict.expected;
    };
const accepts = (check: (v: string) => string | undefined, values: string[]) => {
    for (const v of values) expect(check(v), JSON.stringify(v)).toBeUndefined();
};
const refuses = (check: (v: string) => string | undefined, values: string[], phrase?: RegExp) => {
    for (const v of values) {
        const got = check(v);
        expect(got, JSON.stringify(v)).toBeTypeOf("string");
        if (phrase) expect(got, JSON.stringify(v)).toMatch(phrase);
    }
};
const dnsLabel = phrase(checkDnsLabel);
const serviceName = phrase(checkServiceName);
const dnsSubdomain = phrase(checkDnsSubdomain);
const namespaceToCreate = phrase(checkNamespaceToCreate);
const dnsName = phrase(checkDnsName);
const IP = "an IPv4 address such as 10.0.0.1 (no leading zeros) or an IPv6 address such as fd00::1 (no %zone)";
const ipAddress = (v: string) => (isIpAddress(v) ? undefined : IP);
const storageQuantity = phrase(checkStorageQuantity);
const nodePath = phrase(checkNodePath);
const ownNodeDirectory = phrase(checkNodeDirectory);
const registryHost = phrase(checkRegistryHost);
const cacheHost = phrase(checkCacheHost);
const imageReference = phrase(checkImageReference);
const upstreamUrl = phrase(checkUpstreamUrl);
const cacheTtl = phrase(checkCacheTtl);
const password = phrase(checkPassword);
const htpasswdUser = phrase(checkHtpasswdUser);

const STORAGE = "a storage quantity with a unit, such as 10Gi or 500Mi";
const SHA = "sha256:" + "0123456789abcdef".repeat(4);

describe("Kubernetes names: what the API server's IsDNS1123Label, IsDNS1035Label and IsDNS1123Subdomain accept", () => {
    it("labels (namespaces) are lower case, at most 63, alphanumeric at both ends", () => {
        accepts(dnsLabel, ["a", "0", "registry", "my-name", "123-abc", "a--b", "a".repeat(63)]);
        refuses(dnsLabel, ["", "A", "My-Name", "-a", "a-", "a_b", "a.b", "a b", "ä", "a".repeat(64)]);
    });

    it("Service names must start with a letter (DNS-1035), which a namespace need not", () => {
        accepts(serviceName, ["registry", "cache-docker-io", "a1", "a".repeat(63)]);
        refuses(serviceName, ["1registry", "123-abc", "0", "-a", "a-", "Registry", "a.b", "a".repeat(64)]);
        expect(dnsLabel("123-abc")).toBeUndefined();
    });

    it("subdomains (Secrets, StorageClasses) allow dots and 253 characters, all-numeric ones included", () => {
        expect(dnsSubdomain("a".repeat(64) + ".b")).toBeUndefined(); // labels are bounded only in DNS names
        accepts(dnsSubdomain, ["a", "registry-pull", "a.b.c", "1.2.3", `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(61)}`]);
        refuses(dnsSubdomain, [
            "",
            ".a",
            "a.",
            "a..b",
            "A.b",
            "a_b",
            "-a.b",
            "a-.b",
            `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(62)}`,
        ]);
    });
});

describe("namespaces: the cluster's own exist already, so they are never created", () => {
    it("refuses default and the kube- namespaces, and still checks the label", () => {
        expect(SYSTEM_NAMESPACES).toEqual(["default", "kube-system", "kube-public", "kube-node-lease"]);
        refuses(namespaceToCreate, [...SYSTEM_NAMESPACES], /new namespace/);
        accepts(namespaceToCreate, ["registry", "kube-registry", "defaults"]);
        refuses(namespaceToCreate, ["Registry", "", "a".repeat(64)], /DNS label/);
    });
});

describe("DNS names: a name whose last label is a number is a mistyped IP address, not a host", () => {
    it("accepts RFC 1123 names, single labels and punycode", () => {
        accepts(dnsName, [
            "cluster.local",
            "registry.registry.svc",
            "localhost",
            "registry",
            "xn--bcher-kva.example",
            "1a.example",
            "host.123a",
            "10-0-0-1.example",
        ]);
    });

    it("says a numeric-looking name is a mistyped IP (Go would look it up in DNS; Node's URL would read another address)", () => {
        refuses(dnsName, ["10.0.0.256", "1.2.3", "01.2.3.4", "127.1", "123", "foo.123", "1.2.3.4.5"], /valid IP address/);
        expect(new URL("https://127.1").hostname).toBe("127.0.0.1");
        expect(new URL("https://1.2.3").hostname).toBe("1.2.0.3");
    });

    it("refuses upper case, empty labels, trailing dots, wildcards and underscores", () => {
        refuses(dnsName, ["", "Cluster.local", "a..b", ".a", "cluster.local.", "*.example.com", "a_b.example", "a".repeat(64) + ".example"], /DNS name/);
    });
});

describe("IP addresses: exactly what Go's net.ParseIP accepts (Go 1.24)", () => {
    const v4 = ["1.2.3.4", "0.0.0.0", "255.255.255.255", "10.96.0.1"];
    const v6 = [
        "::",
        "::1",
        "1::",
        "fd00::1",
        "FD00::1",
        "1:2:3:4:5:6:7:8",
        "1:2:3:4:5:6:7::",
        "::1:2:3:4:5:6:7",
        "::ffff:1.2.3.4",
        "1:2:3:4:5:6:1.2.3.4",
        "::1.2.3.4",
    ];
    const refused = [
        "",
        "1.2.3",
        "1.2.3.4.5",
        "256.0.0.1",
        "01.2.3.4", // leading zeros: refused since Go 1.17 (Node's URL reads them as octal)
        "1.2.3.04",
        "00.0.0.0",
        "1.2.3.4 ",
        " 1.2.3.4",
        "[::1]",
        ":::",
        "1::2::3",
        "1:2:3:4:5:6:7:8:9",
        "1:2:3:4:5:6:7:8::",
        "1:2:3:4:5:6:7:1.2.3.4",
        "::ffff:01.2.3.4",
        "00001::", // a fifth digit in a group, even a leading zero
        "fe80::1%eth0", // zones: netip parses them, net.ParseIP refuses
        "1.2.3.4%eth0",
        "0x7f.0.0.1",
        "localhost",
    ];

    it("reads the family as Go does", () => {
        for (const v of v4) expect(ipVersion(v), v).toBe(4);
        for (const v of v6) expect(ipVersion(v), v).toBe(6);
        for (const v of refused) expect(ipVersion(v), v).toBeUndefined();
        accepts(ipAddress, [...v4, ...v6]);
        refuses(ipAddress, refused, /IPv4 address/);
    });

    it("differs from Node's net.isIP on zones, which Node accepts and Go refuses", () => {
        for (const v of ["fe80::1%eth0", "::1%lo"]) {
            expect(net.isIP(v), v).toBe(6);
            expect(ipVersion(v), v).toBeUndefined();
        }
    });
});

describe("storage quantities: a bare number would be bytes, so it is refused", () => {
    it("tells every form ParseQuantity accepts (apimachinery quantity_test.go) from what it refuses: a reason, or the plain phrase", () => {
        const table: [string, bigint][] = [
            ["0", 0n],
            ["0n", 0n],
            ["0Ki", 0n],
            ["1", 1n],
            ["1Ki", 1024n],
            ["7Mi", 7n * 2n ** 20n],
            ["6Gi", 6n * 2n ** 30n],
            ["3Ei", 3n * 2n ** 60n],
            ["5n", 1n], // 5 nano-bytes round up to one byte
            ["3m", 1n],
            ["8k", 8000n],
            ["1E", 10n ** 18n], // E alone is exa, not an exponent
            ["12E", 12n * 10n ** 18n],
            ["1E-3", 1n],
            ["1e3", 1000n],
            ["1.3E+6", 1_300_000n],
            ["100.035k", 100_035n],
            ["0.5Mi", 2n ** 19n],
            ["100.035Ki", 102436n], // 102435.84 rounds up
            [".001", 1n],
            ["1.", 1n],
            ["1.G", 10n ** 9n],
            ["-1Ki", -1024n],
            ["+1Ki", 1024n],
            [".", 0n], // the scanner reads no digits as zero
            ["Gi", 0n],
            ["9Ei", 2n ** 63n - 1n], // binary suffixes are capped silently
        ];
        // Taken by the API server: accepted, or refused saying why (a narrower form than the API server's).
        for (const [v] of table) expect(storageQuantity(v), v).not.toBe(STORAGE);
        expect(table.filter(([v]) => storageQuantity(v) === undefined).map(([v]) => v)).toEqual(["7Mi", "6Gi", "3Ei", "1E"]);
        for (const v of [
            "",
            "1.1.M",
            "1+1.0M",
            "0.1mi",
            "0.1am",
            "aoeu",
            ".5i",
            "1i",
            "-3.01i",
            "-3.01e-",
            "1e4294967297",
            "1E-2147483648",
            " 1",
            "1 ",
            "10K",
            "10GB",
            "1e",
        ]) {
            expect(storageQuantity(v), v).toMatch(/^a storage quantity with a unit, such as 10Gi or 500Mi( \(Kubernetes units .* with no B\))?$/);
        }
        expect(storageQuantity("1E2147483647")).toMatch(/no sign or exponent/);
    });

    it("accepts digits, an optional fraction and a unit, a whole number of bytes from 1Mi", () => {
        accepts(storageQuantity, ["10Gi", "500Mi", "1Mi", "1.5Gi", "1536Mi", "1G", "2T", "2M", "7Ei", "010Gi", "0.5Gi"]);
    });

    it("says why a value the API server would take is still refused", () => {
        refuses(storageQuantity, ["10", "10737418240", "0", "1.5"], /a bare number is bytes/);
        refuses(storageQuantity, ["10m", "500m"], /thousandths of a byte/);
        refuses(storageQuantity, ["10K", "10KB", "10GB", "10GiB", "5Gb"], /no B/);
        refuses(storageQuantity, ["1e9", "1E9", "+10Gi", "-10Gi", "Gi", "1.Gi", ".5Gi"], /no sign or exponent/);
        refuses(storageQuantity, ["1.1Ki", "0.1Mi", "1.0000000001G"], /whole number of bytes/);
        refuses(storageQuantity, ["8Ei", "9Ei", "9223372036854775807Ki", "10E"], /below 8Ei/);
        refuses(storageQuantity, ["1Ki", "1000k", "1M"], /at least 1Mi/); // 1M is 1,000,000 bytes, under 1Mi
        refuses(storageQuantity, ["", "10 Gi", " 10Gi", "10Gi ", "ten", "10gi", "10mi"], /storage quantity/);
    });

    it("compares sizes in bytes across unit systems", () => {
        expect(storageQuantity("1049k")).toBeUndefined(); // 1,049,000 bytes: above 1Mi (1,048,576)
        expect(storageQuantity("1048k")).toMatch(/at least 1Mi/);
        expect(storageQuantity("7.99Ei")).toMatch(/whole number of bytes|below 8Ei/);
    });
});

describe("node paths: absolute, one spelling, within Linux NAME_MAX and PATH_MAX", () => {
    it("accepts canonical absolute paths", () => {
        accepts(nodePath, ["/etc/containerd/certs.d", "/var/lib/rancher/k3s/agent/etc/containerd/certs.d", "/a", "/.hidden/x_y-z.1", "/" + "a".repeat(255)]);
    });

    it("refuses relative paths, '.', '..', '//', trailing slashes and shell-unsafe characters", () => {
        refuses(
            nodePath,
            [
                "",
                "/",
                "etc/containerd",
                "./certs.d",
                "/etc/../root",
                "/etc/./x",
                "/etc/..",
                "//etc",
                "/etc//x",
                "/etc/",
                "/etc/my certs",
                "/etc/$HOME",
                "/etc/a:b",
                '/etc/"x"',
                "/etc/ü",
                "/etc\\x",
                "/etc/a\nb",
            ],
            /absolute directory path/,
        );
    });

    it("refuses a name past 255 bytes and a path past 4095", () => {
        refuses(nodePath, ["/" + "a".repeat(256), ("/" + "a".repeat(255)).repeat(16)], /NAME_MAX/);
        expect(("/" + "a".repeat(254)).repeat(16).length).toBe(4080);
        accepts(nodePath, [("/" + "a".repeat(254)).repeat(16)]);
    });
});

describe("node directories: never a system directory or inside one other software owns (issue 21)", () => {
    it("accepts the environments' defaults and directories of the program's own", () => {
        accepts(
            (p) => ownNodeDirectory(p, { certsDir: true }),
            ["/etc/containerd/certs.d", "/etc/docker/certs.d", "/var/lib/rancher/k3s/agent/etc/containerd/certs.d", "/var/lib/cluster-registry/certs.d"],
        );
        accepts(ownNodeDirectory, ["/var/lib/cluster-registry/caches", "/srv/caches", "/opt/cluster-registry", "/data", "/library", "/etcetera"]);
    });

    it("refuses what nodePath refuses, with its phrase", () => {
        for (const p of ["", "/", "etc", "/var/lib/../kubelet", "/var//lib", "/var/lib/"]) expect(ownNodeDirectory(p), p).toBe(nodePath(p));
    });

    it("refuses a directory owned by others, itself or inside, naming which", () => {
        const table: [string, string][] = [
            ["/etc", "/etc"],
            ["/etc/containerd/certs.d/x", "/etc"],
            ["/usr/local/x", "/usr"],
            ["/bin", "/bin"],
            ["/sbin/x", "/sbin"],
            ["/lib", "/lib"],
            ["/lib64/x", "/lib64"],
            ["/libx32", "/libx32"],
            ["/boot/x", "/boot"],
            ["/proc/1", "/proc"],
            ["/sys/fs", "/sys"],
            ["/dev/shm", "/dev"],
            ["/run/x", "/run"],
            ["/var/run/x", "/var/run"],
            ["/var/lib/kubelet", "/var/lib/kubelet"],
            ["/var/lib/kubelet/pods", "/var/lib/kubelet"],
            ["/var/lib/containerd/x", "/var/lib/containerd"],
        ];
        for (const [p, root] of table) {
            expect(ownNodeDirectory(p), p).toMatch(/other software owns/);
            expect(ownNodeDirectory(p), p).toMatch(new RegExp(`; this one is in ${root}$`));
        }
    });

    it("lets certsDir, and only certsDir, be containerd's hosts directory in /etc", () => {
        expect(ownNodeDirectory("/etc/containerd/certs.d", { certsDir: true })).toBeUndefined();
        expect(ownNodeDirectory("/etc/containerd/certs.d")).toMatch(/this one is in \/etc$/);
        expect(ownNodeDirectory("/etc/containerd", { certsDir: true })).toMatch(
            /in \/etc only containerd's \/etc\/containerd\/certs.d or \/etc\/docker\/certs.d\)/,
        );
    });

    it("refuses shared parents themselves, not directories inside them", () => {
        for (const p of ["/var", "/var/lib", "/tmp", "/opt", "/home", "/root", "/srv", "/mnt"])
            expect(ownNodeDirectory(p), p).toMatch(/this one is a shared parent$/);
        accepts(ownNodeDirectory, ["/var/lib/x", "/tmp/x", "/home/x"]);
    });
});

describe("registry hosts: the names containerd looks up after image references are normalised", () => {
    const accepted = [
        "docker.io",
        "quay.io",
        "ghcr.io",
        "registry.k8s.io",
        "registry.example.com:5000",
        "localhost",
        "localhost:5000",
        "myregistry:5000",
        "10.96.0.10:5000",
        "10.96.0.10",
        "[fd00::1]:5000",
        "[::1]",
    ];

    it("accepts hosts that reference parsing keeps as the domain, so containerd looks them up", () => {
        accepts(registryHost, accepted);
        for (const h of accepted) expect(parseImageReference(`${h}/team/app:1.0`)?.domain, h).toBe(h);
    });

    it("refuses Docker Hub aliases that references normalise away, and bare names read as Hub namespaces", () => {
        refuses(registryHost, ["index.docker.io", "registry-1.docker.io"], /docker\.io for Docker Hub/);
        expect(parseImageReference("index.docker.io/library/nginx:1.27")?.domain).toBe("docker.io");
        refuses(registryHost, ["myregistry", "registry"], /Docker Hub namespace/);
        expect(parseImageReference("myregistry/app:1.0")?.domain).toBe("docker.io");
    });

    it("refuses upper case: containerd matches the certs.d directory byte for byte", () => {
        refuses(registryHost, ["Docker.io", "REGISTRY.example.com:5000", "[FD00::1]:5000"], /lower case/);
        expect(parseImageReference("Registry.example.com/app:1")?.domain).toBe("Registry.example.com");
    });

    it("refuses bad ports, bare or zoned or dotted IPv6, mistyped IPs, URLs and paths", () => {
        refuses(
            registryHost,
            ["registry.example.com:0", "registry.example.com:65536", "registry.example.com:05000", "registry.example.com:", "a:b"],
            /port 1-65535/,
        );
        refuses(registryHost, ["fd00::1", "[fd00::1%eth0]", "[::ffff:1.2.3.4]:5000", "[fd00::1]:", "[]"], /registry host/);
        refuses(registryHost, ["1.2.3:5000", "10.0.0.256", "01.2.3.4"], /valid IP address/);
        refuses(registryHost, ["", "https://registry.example.com", "registry.example.com/path", "a_b.example.com", "-a.example.com", "registry.example.com."]);
    });

    it("refuses a host whose certs.d directory name (HOST_PORT_) would pass NAME_MAX", () => {
        const name = (n: number) => `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(n)}`;
        expect(registryHost(name(61))).toBeUndefined(); // 253 bytes, no port: one directory name of 253
        expect(registryHost(`${name(56)}:5000`)).toBeUndefined(); // 248 + ":5000" = 253, HOST_PORT_ = 254
        expect(registryHost(`${name(58)}:5000`)).toMatch(/255 bytes/); // HOST_PORT_ = 256
    });

    it("a cache host may not be IPv6: the node agent cannot name its certs.d directory", () => {
        for (const h of ["[fd00::1]:5000", "[::1]"]) expect(cacheHost(h), h).toMatch(/IPv6 host's certs.d directory is not supported/);
        expect(cacheHost("10.0.0.5:5000")).toBeUndefined();
    });

    it("a cache host may not be one the hosted registry answers to", () => {
        const hosted = ["registry.registry.svc.cluster.local:5000", "10.96.0.10:5000"];
        refuses((v) => cacheHost(v, hosted), hosted, /hosted registry/);
        accepts((v) => cacheHost(v, hosted), ["docker.io", "registry.registry.svc.cluster.local:5001", "10.96.0.10"]);
        expect(cacheHost("index.docker.io", hosted)).toMatch(/docker\.io for Docker Hub/);
    });
});

describe("image references: read as kubelet's ParseNormalizedNamed reads them, and pinned", () => {
    it("normalises familiar names to the domain containerd looks up (distribution normalize_test.go)", () => {
        const table: [string, ReturnType<typeof parseImageReference>][] = [
            ["nginx", { domain: "docker.io", path: "library/nginx", tag: undefined, digest: undefined }],
            ["nginx:1.27", { domain: "docker.io", path: "library/nginx", tag: "1.27", digest: undefined }],
            ["docker.io/nginx:1", { domain: "docker.io", path: "library/nginx", tag: "1", digest: undefined }],
            ["index.docker.io/nginx:1", { domain: "docker.io", path: "library/nginx", tag: "1", digest: undefined }],
            ["dmcgowan/myapp:1", { domain: "docker.io", path: "dmcgowan/myapp", tag: "1", digest: undefined }],
            ["localhost/app:1", { domain: "localhost", path: "app", tag: "1", digest: undefined }],
            ["localhost:5000/a/b/c:1", { domain: "localhost:5000", path: "a/b/c", tag: "1", digest: undefined }],
            ["Foo/bar:1", { domain: "Foo", path: "bar", tag: "1", digest: undefined }], // an upper-case first element is a domain
            ["[fd00::1]:5000/app:1", { domain: "[fd00::1]:5000", path: "app", tag: "1", digest: undefined }],
            [`registry.example.com:5000/team/app:1.2@${SHA}`, { domain: "registry.example.com:5000", path: "team/app", tag: "1.2", digest: SHA }],
            ["a/b__c/d-----e/f.g:T_1.0-x", { domain: "docker.io", path: "a/b__c/d-----e/f.g", tag: "T_1.0-x", digest: undefined }],
        ];
        for (const [v, want] of table) expect(parseImageReference(v), v).toEqual(want);
    });

    it("refuses what the reference grammar or go-digest refuses (distribution reference_test.go)", () => {
        const refused = [
            "",
            ":justtag",
            `@${SHA}`,
            "0123456789abcdef".repeat(4), // a bare 64-hex identifier
            "Uppercase:tag",
            "docker.io/Library/nginx:1",
            "aa/asdf$$^/aa",
            "a/b___c:1",
            "a/b..c:1",
            "a/-b:1",
            "a/b-:1",
            "nginx:" + "t".repeat(129),
            "nginx:-tag",
            "a/" + "b".repeat(254), // path of 256 characters
            "nginx@sha256:ffff", // too short
            "nginx@sha256:" + "F".repeat(64), // upper-case hex
            "nginx@md5:" + "0".repeat(32), // an algorithm go-digest does not know
            "nginx@sha512:" + "0".repeat(128), // parses only where sha512 is linked in; refused here
            " nginx:1",
            "nginx:1 ",
            "https://registry.example.com/app:1",
            "registry.example.com:5000:1/app",
        ];
        for (const v of refused) expect(parseImageReference(v), v).toBeUndefined();
        refuses(imageReference, refused, /kubelet can parse/);
        expect(parseImageReference("a/" + "b".repeat(253))?.path).toHaveLength(255);
    });

    it("refuses a reference that floats: no tag (kubelet reads latest) or the tag latest", () => {
        accepts(imageReference, [
            "docker.io/library/registry:2.8.3",
            "registry:3.1.0",
            `registry@${SHA}`,
            `registry:latest@${SHA}`,
            `registry:3@${SHA}`,
            "localhost:5000/app:v1.2.3",
            "docker.io/library/nginx:1.28.0-alpine",
            "app:1.2.3_build.4",
        ]);
        // A tag short of x.y.z is re-pointed at each patch release: it moves as surely as latest.
        refuses(
            imageReference,
            [
                "registry",
                "docker.io/library/registry",
                "registry:latest",
                "registry:Latest",
                "registry:3",
                "registry:3.1",
                "nginx:1.28-alpine",
                "nginx:alpine",
                "localhost:5000/app",
                "localhost:5000/app:latest",
                "localhost:5000/app:v1",
            ],
            /^a pinned image reference: a tag that is a full version x\.y\.z \(optionally with a suffix such as -alpine\), or a digest/,
        );
    });
});

describe("upstream URLs: only spellings Go's net/url and Node's WHATWG URL read alike", () => {
    it("accepts a scheme and a host with an optional port", () => {
        accepts(upstreamUrl, [
            "https://registry-1.docker.io",
            "https://quay.io",
            "http://10.0.0.1:5000",
            "https://[fd00::1]:5000",
            "https://[::ffff:1.2.3.4]",
            "https://registry.example.com:443",
            "https://xn--bcher-kva.example",
            "http://localhost:5000",
        ]);
    });

    // Each of these is a URL to Node, which cleans it up; Go refuses it or reads another host or path.
    const cleanedByNode: [string, RegExp][] = [
        ["https://registry-1.docker.io/", /trailing slash/],
        ["https://registry.example.com\\", /trailing slash/], // Node: a path "/"; Go: a backslash in the host
        ["https://registry.example.com/v2", /no path/],
        ["https://example.com?x=1", /query/],
        ["https://example.com#x", /fragment/],
        ["https://user:pw@example.com", /without credentials/],
        ["https://bücher.example", /xn-- form/], // Node punycodes it
        ["https://ExAmple.com", /lower case/], // Node lower-cases it
        ["HTTPS://example.com", /starting with https:\/\//], // containerd prefixes a server without "http" with https://
        ["https:example.com", /starting with https:\/\//],
        [" https://example.com", /starting with https:\/\//],
        ["https://example.com\n", /no spaces/],
        ["https://exa\tmple.com", /no spaces/], // Node drops tabs and newlines anywhere
        ["https://ex%61mple.com", /no spaces or escapes/], // Node decodes it
        ["https://example.com:080", /port 1-65535/], // Node reads 80
        ["https://127.1", /valid IP address/], // Node reads 127.0.0.1; Go looks the name up
        ["https://01.2.3.4", /valid IP address/], // Node reads octal
        ["https://1.2.3", /valid IP address/],
    ];

    it("refuses what Node would clean up, saying what to write instead", () => {
        for (const [v, phrase] of cleanedByNode) {
            expect(URL.canParse(v), v).toBe(true);
            expect(upstreamUrl(v), v).toMatch(phrase);
        }
    });

    it("refuses what neither reads as a registry upstream", () => {
        refuses(upstreamUrl, [
            "",
            "https://",
            "ftp://example.com",
            "https://exa mple.com",
            "https://example.com:99999",
            "https://example.com:0",
            "https://example.com:",
            "https://[fe80::1%25eth0]",
            "https://[1.2.3.4]",
            "https://fd00::1",
            "https://a_b.example",
            "https://example.com.",
        ]);
        expect(upstreamUrl("https://xn--comz2550")).toMatch(/punycode/); // Go takes it; Node refuses it
    });
});

describe("cache TTLs: time.ParseDuration's grammar and int64 range (Go 1.24), never negative", () => {
    it("reads the nanoseconds Go does", () => {
        const table: [string, bigint][] = [
            ["0", 0n],
            ["-0", 0n],
            ["168h", 604_800_000_000_000n],
            ["1.5h", 5_400_000_000_000n],
            ["72h30m", 261_000_000_000_000n],
            ["300ms", 300_000_000n],
            ["1us", 1000n],
            ["1\u00b5s", 1000n],
            ["1\u03bcs", 1000n],
            [".5h", 1_800_000_000_000n],
            ["1.h", 3_600_000_000_000n],
            ["+5s", 5_000_000_000n],
            ["0.000000001s", 1n],
            ["1.0000000001ns", 1n],
            ["2562047h47m16.854775807s", 2n ** 63n - 1n],
        ];
        for (const [v, ns] of table) expect(goDurationNanoseconds(v), v).toBe(ns);
        // Go reads the first two as negative durations; a TTL is never negative.
        for (const v of [
            "-1h",
            "-2562047h47m16.854775808s",
            "",
            "1d",
            "1w",
            "1h 30m",
            " 1h",
            "1h ",
            "9999999h",
            "2562047h47m16.854775808s",
            "1",
            "1.5",
            "h",
            ".h",
            "1e3s",
            "-",
            "1H",
            "1Ms",
        ]) {
            expect(goDurationNanoseconds(v), v).toBeUndefined();
        }
    });

    it("refuses negative, out-of-range and misspelt durations with the setting's phrase", () => {
        accepts(cacheTtl, ["0", "168h", "1.5h", "72h30m", "300ms"]);
        refuses(cacheTtl, ["-1h", "-1ns"], /^a Go duration such as 168h or 72h30m, or 0 to never expire$/);
        refuses(cacheTtl, ["", "1d", "9999999h", "1h 30m", "7 days"], /Go duration/);
    });
});

describe("passwords: bcrypt reads at most 72 bytes, so longer ones are refused, never truncated", () => {
    it("agrees with bcryptjs on which passwords it would truncate", () => {
        const values = ["a".repeat(72), "a".repeat(73), "é".repeat(36), "é".repeat(37), "\u{1f511}".repeat(18), "\u{1f511}".repeat(19), "x".repeat(71) + "é"];
        for (const v of values) expect(password(v) !== undefined, v).toBe(bcrypt.truncates(v));
    });

    it("shows why: a 73-byte password's hash accepts any 73rd byte", () => {
        const hash = bcrypt.hashSync("p".repeat(72) + "A", 4);
        expect(bcrypt.compareSync("p".repeat(72) + "B", hash)).toBe(true);
        expect(password("p".repeat(72) + "A")).toMatch(/at most 72 bytes in UTF-8.*has 73/);
    });

    it("counts characters for the minimum and bytes for the maximum, and refuses blanks", () => {
        accepts(password, ["correct horse battery", "é".repeat(12), "\u{1f511}".repeat(12), " padded pass "]);
        refuses(password, ["", "hunter2", "é".repeat(11)], /at least 12 characters/);
        expect(password("hunter2")).toMatch(/has 7\)/);
        refuses(password, [" ".repeat(12), "\t".repeat(20), "\u00a0".repeat(12)], /only blanks/);
    });
});

describe("htpasswd users: no ':' (it ends the name in htpasswd and .dockerconfigjson)", () => {
    it("accepts 1-64 of A-Z a-z 0-9 . _ @ - starting alphanumeric", () => {
        accepts(htpasswdUser, ["admin", "ci@example.com", "A.b_c-d", "a".repeat(64), "0"]);
        refuses(htpasswdUser, ["", "a:b", "-admin", ".admin", "ad min", "adm\u00efn", "a".repeat(65), "admin\n"], /user name/);
    });
});

describe("no phrase ever contains the value it refuses", () => {
    const marker = "zq9x";
    const tricky = [
        marker,
        `${marker}-secret-password`,
        `${marker.toUpperCase()}${"é".repeat(40)}`,
        `${" ".repeat(3)}${marker}`,
        `10${marker}`,
        `${marker}Gi`,
        `1.5${marker}`,
        `/etc/${marker}/..`,
        `/${marker}`.repeat(300),
        `${marker}.example.com:99999`,
        `index.docker.io/${marker}`,
        `${marker}:latest`,
        `https://user:${marker}@example.com`,
        `https://${marker}.example/`,
        `https://${marker}.ExAmple`,
        `1h${marker}`,
        `-1h${marker}`,
        `kube-system${marker}`,
        `${marker}:pw`,
        `${marker}`.repeat(20),
    ];
    const checks: [string, (v: string) => string | undefined][] = [
        ["dnsLabel", dnsLabel],
        ["serviceName", serviceName],
        ["dnsSubdomain", dnsSubdomain],
        ["namespaceToCreate", namespaceToCreate],
        ["dnsName", dnsName],
        ["ipAddress", ipAddress],
        ["storageQuantity", storageQuantity],
        ["nodePath", nodePath],
        ["ownNodeDirectory", (v) => ownNodeDirectory(v, { certsDir: true })],
        ["registryHost", registryHost],
        ["cacheHost", (v) => cacheHost(v, [v])],
        ["imageReference", imageReference],
        ["upstreamUrl", upstreamUrl],
        ["cacheTtl", cacheTtl],
        ["password", password],
        ["htpasswdUser", htpasswdUser],
    ];

    it("for every check and every tricky input", () => {
        let refusals = 0;
        for (const [name, check] of checks) {
            for (const v of tricky) {
                const phrase = check(v);
                if (phrase === undefined) continue;
                refusals++;
                expect(phrase.includes(v), `${name}(${JSON.stringify(v)})`).toBe(false);
                expect(phrase.toLowerCase().includes(marker), `${name}(${JSON.stringify(v)})`).toBe(false);
            }
        }
        expect(refusals).toBeGreaterThan(250); // of 320: most tricky inputs are refused by most checks
    });

    it("and the phrase depends on no character of the value: another marker gives the same phrase", () => {
        for (const [name, check] of checks) {
            for (const v of tricky) {
                const other = v.replaceAll(marker, "wk7y").replaceAll(marker.toUpperCase(), "WK7Y");
                expect(check(other), `${name}(${JSON.stringify(v)})`).toBe(check(v));
            }
        }
    });

    it("also for refused values that are real words", () => {
        const cases: [(v: string) => string | undefined, string][] = [
            [namespaceToCreate, "kube-system"],
            [namespaceToCreate, "default"],
            [registryHost, "index.docker.io"],
            [registryHost, "registry-1.docker.io"],
            [registryHost, "registry"],
            [imageReference, "registry:latest"],
            [password, "hunter2"],
            [storageQuantity, "12"],
            [(v) => cacheHost(v, ["10.96.0.10:5000"]), "10.96.0.10:5000"],
        ];
        for (const [check, v] of cases) expect(check(v), v).not.toContain(v);
    });
});

describe("values that look like passwords or tokens, hidden from messages wherever they were typed", () => {
    it("finds NAME:PASSWORD, well-known token prefixes and long random-looking runs", () => {
        for (const v of [
            "admin:CorrectHorseBattery",
            "admin:hunter2!xyz",
            "docker.io=bob:S3cretPassw0rd",
            "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
            "docker.io=dckr_pat_Zx81kLmQ0pRt7Yw",
            "AKIAIOSFODNN7EXAMPLE",
            "Q2xvdWRUb2tlbjEyMzQ1Njc4OTA",
        ]) {
            expect(looksLikeSecret(v), v).toBe(true);
        }
    });

    it("leaves ordinary values shown: images, hosts, ports, URLs, paths, names", () => {
        for (const v of [
            "registry:3",
            "docker.io/library/nginx:1.28.0-alpine",
            "localhost:5000/app:v1",
            "docker.io",
            "registry.example.com:5000",
            "registry.example.com=https://registry.example.com",
            "/var/lib/registry",
            "kube-system",
            "admin",
            "Registry",
            "10 GB",
        ]) {
            expect(looksLikeSecret(v), v).toBe(false);
        }
    });
});

describe("storageQuantityBytes (a cache's size, for its fill limit)", () => {
    it("is the bytes the API server reads, for every form checkStorageQuantity accepts", () => {
        expect(storageQuantityBytes("10Gi")).toBe(10n << 30n);
        expect(storageQuantityBytes("1.5Gi")).toBe(3n << 29n);
        expect(storageQuantityBytes("500M")).toBe(500_000_000n);
        expect(storageQuantityBytes("64Mi")).toBe(64n << 20n);
    });

    it("refuses what checkStorageQuantity refuses", () => {
        expect(() => storageQuantityBytes("10GB")).toThrow(/"10GB" is not a storage quantity/);
        expect(() => storageQuantityBytes("512Ki")).toThrow(/is not a storage quantity/);
    });
});
