import { describe, expect, test } from "vitest";
import { ENVIRONMENTS } from "../../components/environments";
import { ConfigError } from "../../components/resolve-settings";
import { DEFAULT_REGISTRY_IMAGE } from "../../components/settings";
import { parseConfig, RawConfig } from "../../components/stack-config";

/** Settings from raw stack config, as index.ts gets them. */
function parseSettings(raw: RawConfig, secretKeys: ReadonlySet<string> = new Set()) {
    return parseConfig(raw, secretKeys).settings;
}

const SECRET = new Set(["cluster-registry:userPasswords"]);

function problemsOf(raw: RawConfig, secretKeys: ReadonlySet<string> = SECRET): string[] {
    try {
        parseSettings(raw, secretKeys);
    } catch (e) {
        if (e instanceof ConfigError) return e.problems;
        throw e;
    }
    throw new Error("expected a ConfigError");
}

describe("defaults", () => {
    test("an empty config is a kind stack with one admin user", () => {
        const s = parseSettings({});
        expect(s.environment).toBe("kind");
        expect(s).toMatchObject({
            certsDir: ENVIRONMENTS.kind.certsDir,
            storageClass: ENVIRONMENTS.kind.storageClass,
            storageSize: ENVIRONMENTS.kind.storageSize,
            cacheStorageSize: ENVIRONMENTS.kind.cacheStorageSize,
            cacheHostPath: ENVIRONMENTS.kind.cacheHostPath,
        });
        expect(s.users).toEqual([{ name: "admin", password: undefined }]);
        expect(s.port).toBe(5000);
        expect(s.nodePort).toBeUndefined();
        expect(s.image).toBe(DEFAULT_REGISTRY_IMAGE);
        expect(s.namespace).toBe("registry");
    });

    test.each([
        ["kind", "/etc/containerd/certs.d", "standard"],
        ["k3d", "/var/lib/rancher/k3s/agent/etc/containerd/certs.d", "local-path"],
        ["eks", "/etc/containerd/certs.d", "gp2"],
    ])("%s picks its certs.d path and storage class", (environment, certsDir, storageClass) => {
        const s = parseSettings({ environment });
        expect(s.certsDir).toBe(certsDir);
        expect(s.storageClass).toBe(storageClass);
    });

    test("overrides replace the environment's defaults", () => {
        const s = parseSettings({ environment: "eks", storageClass: "gp3", storageSize: "200Gi", certsDir: "/etc/docker/certs.d" });
        expect(s).toMatchObject({ storageClass: "gp3", storageSize: "200Gi", certsDir: "/etc/docker/certs.d" });
    });

    test("extra names are split into DNS names and IP addresses", () => {
        const s = parseSettings({ extraNames: JSON.stringify(["registry.example.com", "192.168.1.10", "fd00::1"]) });
        expect(s.extraDnsNames).toEqual(["registry.example.com"]);
        expect(s.extraIpAddresses).toEqual(["192.168.1.10", "fd00::1"]);
    });

    test("given passwords are matched to their users", () => {
        const s = parseSettings({ users: '["admin","ci"]', userPasswords: '["ci:a-long-password:with-colon"]' }, SECRET);
        expect(s.users).toEqual([
            { name: "admin", password: undefined },
            { name: "ci", password: "a-long-password:with-colon" },
        ]);
    });
});

describe("bad config fails with the key, the value and what is accepted", () => {
    test.each<[string, RawConfig, RegExp]>([
        ["unknown environment", { environment: "minikube" }, /cluster-registry:environment: "minikube" is not valid; expected one of kind, k3d, eks/],
        ["port out of range", { port: "70000" }, /cluster-registry:port: "70000" is not valid; expected an integer from 1 to 65535/],
        ["port not a number", { port: "http" }, /cluster-registry:port: "http" is not valid/],
        [
            "nodePort outside the NodePort range",
            { nodePort: "8080" },
            /cluster-registry:nodePort: "8080" is not valid; expected 0 \(no NodePort\) or a port from 30000 to 32767/,
        ],
        ["invalid DNS name", { extraNames: '["Bad_Name.example"]' }, /cluster-registry:extraNames: "Bad_Name.example" is not valid; expected DNS names/],
        ["namespace not a DNS label", { namespace: "My.Registry" }, /cluster-registry:namespace: "My.Registry" is not valid; expected a DNS label/],
        ["empty user name", { users: '[""]' }, /cluster-registry:users: "" is not valid; expected a user name of 1-64 characters/],
        ["user name with a colon", { users: '["a:b"]' }, /cluster-registry:users: "a:b" is not valid/],
        ["no users", { users: "[]" }, /cluster-registry:users: \[\] is not valid; expected at least one user name/],
        ["duplicate users", { users: '["ci","ci"]' }, /cluster-registry:users: "ci" is listed twice/],
        [
            "bad size",
            { storageSize: "ten gigs" },
            /cluster-registry:storageSize: "ten gigs" is not valid; expected a storage quantity with a unit, such as 10Gi/,
        ],
        ["duplicate namespaces", { pullSecretNamespaces: '["apps","apps"]' }, /cluster-registry:pullSecretNamespaces: "apps" is listed twice/],
        ["users not a list", { users: "admin" }, /cluster-registry:users: "admin" is not valid; expected a list of strings/],
        ["bcrypt cost too low", { bcryptCost: "3" }, /cluster-registry:bcryptCost: "3" is not valid; expected an integer from 4 to 14/],
        [
            "relative certs.d",
            { certsDir: "etc/containerd/certs.d" },
            /cluster-registry:certsDir: "etc\/containerd\/certs.d" is not valid; expected an absolute directory path/,
        ],
        ["unknown key", { prot: "5000" }, /cluster-registry:prot: unknown key; accepted keys are environment, namespace/],
        [
            "renewal window longer than validity",
            { certValidityHours: "100", certEarlyRenewalHours: "200" },
            /cluster-registry:certEarlyRenewalHours: "200" is not valid; expected fewer hours than certValidityHours \(100\)/,
        ],
        ["key algorithm", { keyAlgorithm: "DSA" }, /cluster-registry:keyAlgorithm: "DSA" is not valid; expected ECDSA \(P-256\) or RSA/],
        ["boolean", { createNamespace: "yes" }, /cluster-registry:createNamespace: "yes" is not valid; expected true or false/],
    ])("%s", (_, raw, message) => {
        expect(problemsOf(raw).join("\n")).toMatch(message);
    });

    test("every problem is reported at once", () => {
        expect(problemsOf({ environment: "minikube", port: "0", storageSize: "x" })).toHaveLength(3);
    });

    test("a password stored in plain text is refused, and the password is not echoed", () => {
        const problems = problemsOf({ userPasswords: '["admin:hunter2-hunter2"]' }, new Set()).join("\n");
        expect(problems).toMatch(/cluster-registry:userPasswords: is stored in plain text; set it with `pulumi config set --secret/);
        expect(problems).not.toContain("hunter2");
    });

    test("a password for an unknown user, or a short one, is refused without echoing it", () => {
        const problems = problemsOf({ userPasswords: '["nobody:hunter2-hunter2","admin:short"]' }).join("\n");
        // Entries are named by position: a mistyped entry may be all password.
        expect(problems).toMatch(/cluster-registry:userPasswords: entry 1 names no user in cluster-registry:users \(admin\); entries are NAME:PASSWORD/);
        expect(problems).toMatch(/cluster-registry:userPasswords: the password for "admin" is not valid; expected a password of at least 12 characters/);
        expect(problems).not.toContain("nobody");
        expect(problems).not.toContain("hunter2");
        expect(problems).not.toContain("short");
    });
});

const CACHE_SECRETS = new Set(["cluster-registry:cacheCredentials"]);

describe("cache config", () => {
    test("presets resolve to the upstreams' registry APIs", () => {
        const s = parseSettings({ caches: '["docker.io","quay.io","ghcr.io","registry.k8s.io"]' });
        expect(s.caches.map((c) => [c.host, c.remoteUrl, c.serviceName])).toEqual([
            ["docker.io", "https://registry-1.docker.io", "cache-docker-io"],
            ["quay.io", "https://quay.io", "cache-quay-io"],
            ["ghcr.io", "https://ghcr.io", "cache-ghcr-io"],
            ["registry.k8s.io", "https://registry.k8s.io", "cache-registry-k8s-io"],
        ]);
        expect(s.mirrorFallback).toBe("upstream");
        expect(s.cacheTtl).toBe("168h");
    });

    test("HOST=URL names any upstream, and can point a preset host elsewhere", () => {
        const s = parseSettings({ caches: '["registry.example.com:5000=https://mirror.example.com","docker.io=https://dockerhub-mirror.example.com"]' });
        expect(s.caches.map((c) => [c.host, c.remoteUrl])).toEqual([
            ["registry.example.com:5000", "https://mirror.example.com"],
            ["docker.io", "https://dockerhub-mirror.example.com"],
        ]);
    });

    test("credentials attach to their cache", () => {
        const s = parseSettings({ caches: '["docker.io"]', cacheCredentials: '["docker.io=me:tok:en"]' }, CACHE_SECRETS);
        expect(s.caches[0].credentials).toEqual({ username: "me", password: "tok:en" });
    });

    test.each<[string, RawConfig, RegExp]>([
        [
            "duplicate hosts",
            { caches: '["docker.io","docker.io=https://x.example.com"]' },
            /cluster-registry:caches: "docker.io" is listed twice; one cache serves one upstream/,
        ],
        [
            "unknown preset",
            { caches: '["dockerhub"]' },
            /cluster-registry:caches: "dockerhub" is not valid; expected a preset \(docker.io, quay.io, ghcr.io, registry.k8s.io\) or HOST=URL/,
        ],
        [
            "URL with a path",
            { caches: '["a.example.com=https://a.example.com/v2"]' },
            /expected HOST=URL where URL is an http\(s\) URL of only a host .* no path/,
        ],
        [
            "URL with credentials, which are never shown",
            { caches: '["a.example.com=https://u:Zq9@a.example.com"]' },
            /"a.example.com=https:\/\/\(credentials hidden\)@a.example.com" is not valid; expected HOST=URL where URL is .* without credentials/,
        ],
        ["not a URL", { caches: '["a.example.com=ftp://a.example.com"]' }, /expected HOST=URL where URL is an http\(s\) URL/],
        ["bad host", { caches: '["Not A Host=https://a.example.com"]' }, /expected HOST=URL where HOST is a registry host as image references name it/],
        ["credentials without a user", { caches: '["docker.io"]', cacheCredentials: '["docker.io=:token"]' }, /the entry for "docker.io" has no user/],
        ["credentials without a password", { caches: '["docker.io"]', cacheCredentials: '["docker.io=me:"]' }, /the entry for "docker.io" has no password/],
        [
            "credentials for an unlisted cache",
            { caches: '["docker.io"]', cacheCredentials: '["quay.io=me:token"]' },
            /cluster-registry:cacheCredentials: entry 1 names no cache in cluster-registry:caches; entries are HOST=USER:PASSWORD for a listed cache/,
        ],
        [
            "bad TTL",
            { cacheTtl: "a week" },
            /cluster-registry:cacheTtl: "a week" is not valid; expected a Go duration such as 168h or 72h30m, or 0 to never expire/,
        ],
        ["negative TTL", { cacheTtl: "-1h" }, /cluster-registry:cacheTtl: "-1h" is not valid; expected a Go duration/],
        ["bad fallback", { mirrorFallback: "sometimes" }, /cluster-registry:mirrorFallback: "sometimes" is not valid; expected upstream .* or none/],
        [
            "patching with no namespaces",
            { patchDefaultServiceAccounts: "true" },
            /patchDefaultServiceAccounts: is true but cluster-registry:pullSecretNamespaces is empty/,
        ],
    ])("%s is refused", (_, raw, message) => {
        expect(problemsOf(raw, CACHE_SECRETS).join("\n")).toMatch(message);
    });

    test.each([
        ["cacheCredentials", "docker.io=me:sekrit-token"],
        ["cacheCredentials", '["docker.io=me:sekrit-token", 3]'],
        ["userPasswords", "admin:sekrit-token"],
    ])("a malformed %s is refused without echoing it, with a hint that says --secret", (key, value) => {
        const problems = problemsOf({ caches: '["docker.io"]', [key]: value }, CACHE_SECRETS).join("\n");
        expect(problems).toMatch(
            new RegExp(`cluster-registry:${key}: its value is not valid; expected a list of strings \\(set it with \`pulumi config set --secret --path`),
        );
        expect(problems).not.toContain("sekrit");
    });

    test("credentials in plain text are refused and never echoed", () => {
        let message = "";
        try {
            parseConfig({ caches: '["docker.io"]', cacheCredentials: '["docker.io=me:sekrit-token"]' }, new Set());
        } catch (e) {
            message = (e as Error).message;
        }
        expect(message).toMatch(/cacheCredentials: is stored in plain text; set it with `pulumi config set --secret/);
        expect(message).not.toContain("sekrit");
    });
});

describe("settings that only make sense together", () => {
    test("a namespace that every cluster already has is not created (it exists, and destroy would delete it)", () => {
        expect(problemsOf({ namespace: "kube-system" }).join("\n")).toMatch(/cluster-registry:namespace: "kube-system" cannot be created/);
        expect(parseSettings({ namespace: "kube-system", createNamespace: "false" }).namespace).toBe("kube-system");
    });

    test("a cache may not take the hosted registry's own host: both would want its certs.d directory", () => {
        const hosted = "registry.registry.svc.cluster.local:5000";
        expect(problemsOf({ caches: JSON.stringify([`${hosted}=https://mirror.example.com`]) }).join("\n")).toMatch(
            /cluster-registry:caches: "registry.registry.svc.cluster.local:5000" is the hosted registry's own name/,
        );
        // Its push port and its extra names are its own too.
        for (const host of ["registry.registry.svc.cluster.local:5002", "10.0.0.9:5000"]) {
            const problems = problemsOf({ extraNames: '["10.0.0.9"]', caches: JSON.stringify([`${host}=https://mirror.example.com`]) }).join("\n");
            expect(problems).toContain(`"${host}" is the hosted registry's own name`);
        }
    });
});

describe("no error message contains any part of a secret, whatever the typo", () => {
    // "Zq9" marks the secret part of each entry; none of it may reach a message.
    test.each([
        ["a base64 token's padding where the = belongs", "docker.io:me:Zq9TOKEN="],
        ["a space for the =", "docker.io me:Zq9TOKEN"],
        ["no user", "docker.io=:Zq9TOKEN"],
        ["no colon", "docker.io=meZq9TOKEN"],
        ["no host", "=me:Zq9TOKEN"],
        ["an unlisted host", "quay.io=me:Zq9TOKEN"],
        ["only the token", "Zq9TOKEN"],
    ])("cacheCredentials with %s", (_, entry) => {
        const problems = problemsOf({ caches: '["docker.io"]', cacheCredentials: JSON.stringify([entry]) }, CACHE_SECRETS).join("\n");
        expect(problems).toMatch(/cluster-registry:cacheCredentials: /);
        expect(problems).not.toMatch(/Zq9|TOKEN/);
    });

    test.each([
        ["= for the colon", "admin=Zq9-long-password"],
        ["a colon inside the name", "adm:in:Zq9-long-password"],
        ["password first", "Zq9-long-password:admin"],
        ["a short password", "admin:Zq9"],
        ["a password bcrypt would cut at 72 bytes", `admin:${"Zq9".repeat(30)}`],
        ["a password of blanks", "admin:              "],
        ["no name", ":Zq9-long-password"],
    ])("userPasswords with %s", (_, entry) => {
        const problems = problemsOf({ userPasswords: JSON.stringify([entry]) }).join("\n");
        expect(problems).toMatch(/cluster-registry:userPasswords: /);
        expect(problems).not.toMatch(/Zq9|long-password/);
    });

    test("a malformed secret list in plain text is refused without echoing it", () => {
        const problems = problemsOf({ cacheCredentials: "docker.io=me:Zq9TOKEN", userPasswords: "admin:Zq9-long-password" }, new Set()).join("\n");
        expect(problems).toMatch(/cacheCredentials: is stored in plain text/);
        expect(problems).toMatch(/userPasswords: is stored in plain text/);
        expect(problems).not.toMatch(/Zq9|TOKEN|long-password/);
    });
});

describe("node paths are checked against what they reach on the node (issue 21)", () => {
    test.each<[string, RawConfig, RegExp]>([
        [
            "certsDir /etc",
            { certsDir: "/etc" },
            /cluster-registry:certsDir: "\/etc" is not valid; expected a directory of this program's own.*this one is in \/etc/,
        ],
        ["certsDir /", { certsDir: "/" }, /cluster-registry:certsDir: "\/" is not valid; expected an absolute directory path/],
        ["certsDir in /usr", { certsDir: "/usr/local/certs.d" }, /cluster-registry:certsDir: .*this one is in \/usr/],
        [
            "certsDir in /etc elsewhere",
            { certsDir: "/etc/ssl/certs.d" },
            /certsDir: .*in \/etc only containerd's \/etc\/containerd\/certs.d or \/etc\/docker\/certs.d\); this one is in \/etc/,
        ],
        ["certsDir in /lib64", { certsDir: "/lib64/x" }, /cluster-registry:certsDir: .*this one is in \/lib64/],
        ["certsDir with ..", { certsDir: "/var/lib/x/../kubelet" }, /cluster-registry:certsDir: .*without '.', '..', '\/\/'/],
        ["certsDir with //", { certsDir: "/var//lib/x" }, /cluster-registry:certsDir: .*without '.', '..', '\/\/'/],
        ["cacheHostPath /etc", { cacheHostPath: "/etc" }, /cluster-registry:cacheHostPath: "\/etc" is not valid; .*this one is in \/etc; or "" for volumes/],
        ["cacheHostPath in /etc, even certs.d", { cacheHostPath: "/etc/containerd/certs.d" }, /cluster-registry:cacheHostPath: .*this one is in \/etc/],
        ["cacheHostPath kubelet", { cacheHostPath: "/var/lib/kubelet" }, /cluster-registry:cacheHostPath: .*this one is in \/var\/lib\/kubelet/],
        ["cacheHostPath in containerd's state", { cacheHostPath: "/var/lib/containerd/caches" }, /cacheHostPath: .*this one is in \/var\/lib\/containerd/],
        ["cacheHostPath in /run", { cacheHostPath: "/run/caches" }, /cacheHostPath: .*this one is in \/run/],
        ["cacheHostPath in /proc /sys /dev /boot", { cacheHostPath: "/sys/caches" }, /cacheHostPath: .*this one is in \/sys/],
        [
            "cacheHostPath a shared parent",
            { cacheHostPath: "/var/lib" },
            /cluster-registry:cacheHostPath: "\/var\/lib" is not valid; .*this one is a shared parent/,
        ],
        ["cacheHostPath with ..", { cacheHostPath: "/var/lib/cluster-registry/../kubelet" }, /cacheHostPath: .*absolute directory path/],
    ])("%s is refused", (_, raw, message) => {
        expect(problemsOf(raw).join("\n")).toMatch(message);
    });

    test("each of the system directories is refused as certsDir and as cacheHostPath, itself and inside", () => {
        for (const root of [
            "/etc",
            "/usr",
            "/bin",
            "/sbin",
            "/lib",
            "/lib32",
            "/lib64",
            "/boot",
            "/proc",
            "/sys",
            "/dev",
            "/run",
            "/var/lib/kubelet",
            "/var/lib/containerd",
        ]) {
            for (const dir of [root, `${root}/cluster-registry`]) {
                expect(problemsOf({ certsDir: dir }).join("\n"), dir).toMatch(/certsDir: .*other software owns/);
                expect(problemsOf({ cacheHostPath: dir }).join("\n"), dir).toMatch(/cacheHostPath: .*other software owns/);
            }
        }
    });

    test("the environments' defaults, containerd's /etc/docker/certs.d and directories of our own stay valid", () => {
        for (const environment of ["kind", "k3d", "eks"]) expect(() => parseSettings({ environment }), environment).not.toThrow();
        const s = parseSettings({ certsDir: "/etc/docker/certs.d", cacheHostPath: "/var/lib/cluster-registry/caches" });
        expect(s).toMatchObject({ certsDir: "/etc/docker/certs.d", cacheHostPath: "/var/lib/cluster-registry/caches" });
        expect(parseSettings({ certsDir: "/var/lib/rancher/k3s/agent/etc/containerd/certs.d", cacheHostPath: "/srv/caches" }).cacheHostPath).toBe(
            "/srv/caches",
        );
    });

    test.each([
        ["equal to certsDir", { certsDir: "/var/lib/cr/certs.d", cacheHostPath: "/var/lib/cr/certs.d" }, "is"],
        ["inside certsDir", { certsDir: "/var/lib/cr/certs.d", cacheHostPath: "/var/lib/cr/certs.d/caches" }, "is inside"],
        ["containing certsDir", { certsDir: "/var/lib/cr/certs.d", cacheHostPath: "/var/lib/cr" }, "contains"],
    ])("cacheHostPath %s is refused", (_, raw, where) => {
        expect(problemsOf(raw).join("\n")).toMatch(
            new RegExp(
                `cluster-registry:cacheHostPath: "${raw.cacheHostPath}" is not valid; expected a directory apart from certsDir; this one ${where} certsDir \\("/var/lib/cr/certs.d"\\)`,
            ),
        );
    });

    test("a sibling of certsDir with a common prefix is not inside it", () => {
        expect(parseSettings({ certsDir: "/var/lib/cr/certs.d", cacheHostPath: "/var/lib/cr/certs.dx" }).cacheHostPath).toBe("/var/lib/cr/certs.dx");
    });

    test("an IPv6 cache host is refused at preview, with the key and why (the node agent cannot name its directory)", () => {
        const problems = problemsOf({ caches: '["[fd00::1]:5000=https://[fd00::1]:5000"]' }).join("\n");
        expect(problems).toMatch(
            /cluster-registry:caches: "\[fd00::1\]:5000=https:\/\/\[fd00::1\]:5000" is not valid; expected HOST=URL where HOST is a host name or IPv4 address .*an IPv6 host's certs.d directory is not supported on nodes/,
        );
        // The upstream itself may be IPv6: only the host containerd looks up names a directory.
        expect(parseSettings({ caches: '["mirror.example.com=https://[fd00::1]:5000"]' }).caches[0].remoteUrl).toBe("https://[fd00::1]:5000");
    });
});
