import { describe, expect, test } from "vitest";
import { ENVIRONMENTS } from "../../components/environments";
import { ConfigError, isStackConfig } from "../../components/resolve-settings";
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
        ["unknown key, nothing close", { colour: "5000" }, /cluster-registry:colour: unknown key; accepted keys are environment, namespace/],
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

describe("messages that say what is wrong, once, and never echo a secret (issue 20)", () => {
    test("an upper-case namespace is one problem, saying upper case, not a derived name being too long", () => {
        const problems = problemsOf({ namespace: "Registry" });
        expect(problems).toEqual([
            expect.stringMatching(/^cluster-registry:namespace: "Registry" is not valid; expected a DNS label.*\(this one has upper-case letters\)$/),
        ]);
    });

    test("a namespace too long to derive the agent's from still says too long, once", () => {
        const problems = problemsOf({ namespace: "a".repeat(60) });
        expect(problems).toEqual([expect.stringMatching(/^cluster-registry:nodeAgentNamespace: "a+-node-agent", made from namespace, is too long/)]);
    });

    test("HOST=USER without a password says the password is missing", () => {
        const problems = problemsOf({ caches: '["docker.io"]', cacheCredentials: '["docker.io=bob"]' }, CACHE_SECRETS);
        expect(problems).toEqual(['cluster-registry:cacheCredentials: the entry for "docker.io" has no password; entries are HOST=USER:PASSWORD']);
    });

    test.each<[string, RawConfig, string, RegExp]>([
        [
            "a password typed into users",
            { users: '["admin:CorrectHorseBattery"]' },
            "CorrectHorseBattery",
            /passwords belong in cluster-registry:userPasswords/,
        ],
        [
            "a token typed into caches",
            { caches: '["ghp_Ab3dEfGh1jKlMn0pQrStUvWxYz0123456789"]' },
            "Ab3dEfGh1jKlMn",
            /passwords belong in cluster-registry:cacheCredentials/,
        ],
        [
            "a token typed into caches as HOST=TOKEN",
            { caches: '["docker.io=dckr_pat_Zx81kLmQ0pRt7Yw"]' },
            "Zx81kLmQ0pRt7Yw",
            /cluster-registry:caches is stored/,
        ],
        ["a random-looking token as a namespace", { namespace: "Q2xvdWRUb2tlbjEyMzQ1Njc4OTA" }, "Q2xvdWRUb2tl", /cluster-registry:namespace is stored/],
    ])("%s is hidden, and the message says to use --secret", (_, raw, secret, where) => {
        const message = problemsOf(raw, CACHE_SECRETS).join("\n");
        expect(message).not.toContain(secret);
        expect(message).toMatch(/a value that looks like a password or token \(not shown\) is not valid/);
        expect(message).toContain("pulumi config set --secret");
        expect(message).toMatch(where);
    });

    test("ordinary values are still shown as typed", () => {
        expect(problemsOf({ users: '["admin user"]' }).join()).toContain('"admin user" is not valid');
        expect(problemsOf({ image: "registry:3" }).join()).toContain('"registry:3" is not valid');
    });

    test.each(["image", "cacheCoalescerImage"])("a moving tag for %s is refused at preview, saying what is accepted", (key) => {
        for (const image of ["registry:3", "nginx:latest", "docker.io/library/nginx"]) {
            expect(problemsOf({ [key]: image }).join(), image).toMatch(
                new RegExp(`^cluster-registry:${key}: "${image}" is not valid; expected a pinned image reference: a tag that is a full version x\\.y\\.z`),
            );
        }
        expect(parseSettings({ [key]: "docker.io/library/nginx:1.28.0-alpine" })[key as "image"]).toBe("docker.io/library/nginx:1.28.0-alpine");
    });

    test("registryVolumeClaim with the default createNamespace is refused: a kept claim lives in an existing namespace", () => {
        expect(problemsOf({ registryVolumeClaim: "kept" })).toEqual([
            expect.stringMatching(
                /^cluster-registry:registryVolumeClaim: names an existing claim.*cluster-registry:createNamespace is true \(the default\).*set createNamespace to false$/,
            ),
        ]);
        expect(parseSettings({ registryVolumeClaim: "kept", createNamespace: "false" }).registryVolumeClaim).toBe("kept");
    });

    test.each([
        ["storageclass", "storageClass"],
        ["StorageClass", "storageClass"],
        ["namspace", "namespace"],
        ["cacheCoalescerImge", "cacheCoalescerImage"],
    ])("a typo %s suggests %s, and lists no other key", (typo, meant) => {
        expect(problemsOf({ [typo]: "x" })).toEqual([`cluster-registry:${typo}: unknown key; did you mean cluster-registry:${meant}?`]);
    });
});

describe("who the messages are for", () => {
    test("args made from stack config are marked, so problems found while deploying name cluster-registry:KEY; a library's args are not", () => {
        expect(isStackConfig(parseConfig({}).args)).toBe(true);
        expect(isStackConfig({ namespace: "registry" })).toBe(false);
    });
});
