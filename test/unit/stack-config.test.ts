import { describe, expect, test } from "vitest";
import { ConfigError, DEFAULT_REGISTRY_IMAGE, parseSettings, RawConfig } from "../../components/config";
import { ENVIRONMENTS } from "../../components/environments";

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
        expect(s.profile).toEqual(ENVIRONMENTS.kind);
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
        expect(s.profile.certsDir).toBe(certsDir);
        expect(s.profile.storageClass).toBe(storageClass);
    });

    test("overrides replace the environment's defaults", () => {
        const s = parseSettings({ environment: "eks", storageClass: "gp3", storageSize: "200Gi", certsDir: "/etc/docker/certs.d" });
        expect(s.profile).toMatchObject({ storageClass: "gp3", storageSize: "200Gi", certsDir: "/etc/docker/certs.d" });
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
        ["empty user name", { users: '[""]' }, /cluster-registry:users: "" is not valid; expected names of 1-64 characters/],
        ["user name with a colon", { users: '["a:b"]' }, /cluster-registry:users: "a:b" is not valid/],
        ["no users", { users: "[]" }, /cluster-registry:users: "\[\]" is not valid; expected at least one user name/],
        ["duplicate users", { users: '["ci","ci"]' }, /cluster-registry:users: "ci" is listed twice/],
        ["bad size", { storageSize: "ten gigs" }, /cluster-registry:storageSize: "ten gigs" is not valid; expected a storage quantity such as 10Gi/],
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
        expect(problems).toMatch(/names user "nobody", which is not in cluster-registry:users/);
        expect(problems).toMatch(/the password for "admin" has 5 characters; give at least 12/);
        expect(problems).not.toContain("hunter2");
        expect(problems).not.toContain("short");
    });
});
