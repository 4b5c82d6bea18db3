/**
 * The fakes are faithful for what the program asks of them: its own certificates pass openssl with the
 * extensions Go's crypto/x509 writes, state behaves as the engine's, passwords and keys are really random,
 * and anything the fakes do not emulate fails the run instead of being ignored.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { FakeCloud, runProgram } from "../support/fake-cloud";
import { ENTRY, stackConfig } from "../support/stacks";
import { certFacts } from "../support/x509";
import { RESOURCE_TYPES } from "../support/resource-types";

const T = RESOURCE_TYPES;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "fake-cloud-test-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function write(name: string, content: string): string {
    const p = path.join(tmp, name);
    fs.writeFileSync(p, content, { mode: 0o600 });
    return p;
}
const openssl = (...args: string[]): string => execFileSync("openssl", args, { encoding: "utf8", stdio: ["pipe", "pipe", "pipe"] });

/** One `pulumi up` of the real program: the dev stack's config plus `config`. */
async function up(config: Record<string, string> = {}, cloud = new FakeCloud({ clusterIP: () => "10.96.0.50" })) {
    const result = await runProgram(cloud, { config: { ...stackConfig("dev"), ...config }, entry: ENTRY });
    return { cloud, ...result };
}

/** The PEMs the program's CA and hosted-registry certificate are made of. */
function pems(cloud: FakeCloud) {
    return {
        caCert: cloud.one(T.selfSigned).outputs.certPem as string,
        caKey: cloud.one(T.key, "ca-key").outputs.privateKeyPem as string,
        serverCert: cloud.one(T.signed, "hosted-tls-cert").outputs.certPem as string,
        serverKey: cloud.one(T.key, "hosted-tls-key").outputs.privateKeyPem as string,
        csr: cloud.one(T.csr, "hosted-tls-csr").outputs.certRequestPem as string,
    };
}

describe("FakeCloud tls, on the program's own inputs", () => {
    it("issues a CA and a server certificate openssl accepts, with the extensions Go writes", async () => {
        const { cloud } = await up({ "cluster-registry:extraNames": '["fd00::5"]' });
        const p = pems(cloud);
        const ca = write("ca.pem", p.caCert);
        const server = write("server.pem", p.serverCert);

        expect(openssl("verify", "-purpose", "sslserver", "-CAfile", ca, server).trim()).toBe(`${server}: OK`);
        const caExt = openssl("x509", "-in", ca, "-noout", "-ext", "basicConstraints,keyUsage,subjectKeyIdentifier");
        expect(caExt).toMatch(/X509v3 Basic Constraints: critical\s+CA:TRUE\s/);
        expect(caExt).toMatch(/X509v3 Key Usage: critical\s+Certificate Sign, CRL Sign\s/);
        const caSki = /Subject Key Identifier:\s+([0-9A-F:]+)/.exec(caExt)![1];

        const ext = openssl("x509", "-in", server, "-noout", "-ext", "subjectAltName,basicConstraints,keyUsage,extendedKeyUsage,authorityKeyIdentifier");
        expect(ext).toMatch(
            /X509v3 Subject Alternative Name:\s+DNS:registry, DNS:registry\.registry, .*IP Address:10\.96\.0\.50, IP Address:127\.0\.0\.1, IP Address:FD00:0:0:0:0:0:0:5\s/,
        );
        expect(ext).toMatch(/X509v3 Basic Constraints: critical\s+CA:FALSE\s/);
        expect(ext).toMatch(/X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment\s/);
        expect(ext).toMatch(/X509v3 Extended Key Usage:\s+TLS Web Server Authentication\s/);
        expect(ext).toContain(caSki); // the leaf's AKI is the CA's SKI
        expect(openssl("x509", "-in", server, "-noout", "-subject").trim()).toBe("subject=O = cluster-registry, CN = registry");
        expect(certFacts(p.serverCert).issuer).toBe(certFacts(p.caCert).subject);

        // The keys are the certificates' and in the provider's formats: SEC1, P-256.
        expect(p.serverKey).toMatch(/^-----BEGIN EC PRIVATE KEY-----\n/);
        expect(openssl("ec", "-in", write("ca.key", p.caKey), "-noout", "-text")).toMatch(/NIST CURVE: P-256/);
        expect(openssl("x509", "-in", server, "-noout", "-pubkey")).toBe(openssl("pkey", "-in", write("server.key", p.serverKey), "-pubout"));
        // The CSR carries its self-signature and the SANs the certificate took from it.
        expect(openssl("req", "-in", write("server.csr", p.csr), "-noout", "-verify", "-text")).toMatch(/DNS:registry, .*IP Address:FD00:0:0:0:0:0:0:5/);

        const facts = certFacts(p.serverCert);
        expect(facts.notAfter.getTime() - facts.notBefore.getTime()).toBe(8760 * 3600_000);
        expect(Math.abs(facts.notBefore.getTime() - Date.now())).toBeLessThan(60_000);
    });

    it("makes PKCS#1 RSA keys of 2048 bits when asked, and the chain verifies", async () => {
        const { cloud } = await up({ "cluster-registry:keyAlgorithm": "RSA" });
        const p = pems(cloud);
        expect(p.caKey).toMatch(/^-----BEGIN RSA PRIVATE KEY-----\n/);
        expect(openssl("rsa", "-in", write("rsa.key", p.caKey), "-noout", "-text")).toMatch(/Private-Key: \(2048 bit/);
        const server = write("rsa-server.pem", p.serverCert);
        expect(openssl("verify", "-CAfile", write("rsa-ca.pem", p.caCert), server).trim()).toBe(`${server}: OK`);
    });
});

describe("FakeCloud state, as the engine keeps it", () => {
    it("gives identical outputs for identical inputs and replaces only what changed", async () => {
        const cloud = new FakeCloud();
        const first = pems((await up({}, cloud)).cloud);
        const firstPassword = cloud.one(T.password, "admin-password").outputs.result;
        expect(pems((await up({}, cloud)).cloud)).toEqual(first);
        expect(cloud.one(T.password, "admin-password").outputs.result).toBe(firstPassword);

        const longer = pems((await up({ "cluster-registry:certValidityHours": "9000" }, cloud)).cloud);
        expect(longer.serverCert).not.toBe(first.serverCert);
        expect({ ...longer, serverCert: first.serverCert }).toEqual(first);
    });

    it("replaces a certificate inside its early-renewal window on the next up", async () => {
        const cloud = new FakeCloud();
        const renewing = { "cluster-registry:certValidityHours": "24", "cluster-registry:certEarlyRenewalHours": "23" };
        const first = pems((await up(renewing, cloud)).cloud);
        expect(pems((await up(renewing, cloud)).cloud)).toEqual(first);
        vi.setSystemTime(Date.now() + 2 * 3600_000); // Date only; timers run as ever
        try {
            const later = pems((await up(renewing, cloud)).cloud);
            expect(later.serverCert).not.toBe(first.serverCert);
            expect(later.caCert).toBe(first.caCert);
        } finally {
            vi.useRealTimers();
        }
    });

    it("uses real randomness: another stack gets other keys, certificates, passwords and salts", async () => {
        const a = await up();
        const b = await up();
        expect(pems(b.cloud).caKey).not.toBe(pems(a.cloud).caKey);
        expect(pems(b.cloud).serverCert).not.toBe(pems(a.cloud).serverCert);
        expect(b.cloud.one(T.password, "admin-password").outputs.result).not.toBe(a.cloud.one(T.password, "admin-password").outputs.result);
        expect(b.cloud.one(T.bytes, "admin-salt").outputs.base64).not.toBe(a.cloud.one(T.bytes, "admin-salt").outputs.base64);
        expect(a.cloud.one(T.password, "admin-password").outputs.result).toMatch(/^[A-Za-z0-9]{32}$/);
        expect(Buffer.from(a.cloud.one(T.bytes, "admin-salt").outputs.base64, "base64")).toHaveLength(a.cloud.one(T.bytes, "admin-salt").inputs.length);
    });

    it("marks outputs secret as the engine does: additionalSecretOutputs and secret inputs", async () => {
        const { cloud, secretOutputs } = await up();
        expect(cloud.one(T.signed, "hosted-tls-cert").secretInputs).toEqual(["caPrivateKeyPem"]);
        expect(secretOutputs.has("passwords")).toBe(true);
        expect(secretOutputs.has("caCertPem")).toBe(false);
    });
});

describe("FakeCloud kubernetes", () => {
    it("keeps the names the program gives, auto-names the rest the same on every run, and gives Services their ClusterIP", async () => {
        const cloud = new FakeCloud({ clusterIP: (name) => (name.endsWith("hosted-service") ? "10.96.0.50" : "10.96.7.7") });
        const { outputs } = await up({}, cloud);
        expect(outputs.clusterIP).toBe("10.96.0.50");
        expect(cloud.one(T.svc, "hosted-service").outputs.metadata.name).toBe("registry");
        const autoNamed = cloud.one(T.cm, "hosted-config").outputs.metadata.name;
        expect(autoNamed).toMatch(/^registry-hosted-config-[0-9a-f]{8}$/);
        await up({}, cloud);
        expect(cloud.one(T.cm, "hosted-config").outputs.metadata.name).toBe(autoNamed);
        expect((await up()).outputs.clusterIP).toBe("10.96.0.50");
        expect((await up({}, new FakeCloud())).outputs.clusterIP).toBe("10.96.0.10");
    });

    it("in preview leaves computed outputs unknown and inputs known", async () => {
        const { cloud, outputs } = await up({}, new FakeCloud({ preview: true }));
        expect(outputs.caCertPem).toBeUndefined();
        expect(outputs.clusterIP).toBeUndefined();
        expect(cloud.one(T.key, "ca-key").outputs.privateKeyPem).toBeUndefined();
        expect(cloud.one(T.password, "admin-password").outputs).toEqual({ length: 32, special: false });
        expect(cloud.one(T.svc, "hosted-service").outputs.metadata.name).toBe("registry");
    });
});

describe("runProgram", () => {
    const dir = path.join(tmp, "fixture");
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, "Pulumi.yaml"), "name: fixture\nruntime: nodejs\nconfig:\n  length:\n    type: integer\n    default: 20\n");
    const sdk = (pkg: string) => JSON.stringify(path.dirname(require.resolve(`${pkg}/package.json`)));
    const fixture = (name: string, body: string) => {
        const entry = path.join(dir, `${name}.ts`);
        fs.writeFileSync(entry, `import * as pulumi from ${sdk("@pulumi/pulumi")};\nimport * as random from ${sdk("@pulumi/random")};\n${body}`);
        return entry;
    };
    const passwords = fixture(
        "passwords",
        `const cfg = new pulumi.Config();
const length = cfg.requireNumber("length");
if (length < 8) throw new Error("length must be at least 8");
const pw = new random.RandomPassword("pw", { length, special: false });
export const password = pw.result;
export const passwordLength = pw.length;
export const token = cfg.requireSecret("token");
export const nested = { id: pw.id, plain: 1 };
`,
    );

    it("runs the module afresh each time with Pulumi.yaml's defaults, resolves exports and reports which are secret", async () => {
        const cloud = new FakeCloud();
        const config = { "fixture:token": "t0k" };
        const a = await runProgram(cloud, { config, secretKeys: ["fixture:token"], entry: passwords });
        expect(a.outputs.password).toMatch(/^[A-Za-z0-9]{20}$/);
        expect(a.outputs).toMatchObject({ passwordLength: 20, token: "t0k", nested: { id: "none", plain: 1 } });
        expect([...a.secretOutputs].sort()).toEqual(["password", "token"]);
        expect(cloud.resources.map((r) => r.urn)).toContain("urn:pulumi:test::fixture::random:index/randomPassword:RandomPassword::pw");

        const b = await runProgram(cloud, { config, secretKeys: ["fixture:token"], entry: passwords });
        expect(cloud.byType(T.password)).toHaveLength(1); // registered again, not served from the module cache
        expect(b.outputs.password).toBe(a.outputs.password);

        // `pulumi up --replace <urn>`: a new password, kept by the run after.
        const urn = "urn:pulumi:test::fixture::random:index/randomPassword:RandomPassword::pw";
        cloud.replaceOnNextRun(urn);
        const c = await runProgram(cloud, { config, secretKeys: ["fixture:token"], entry: passwords });
        expect(c.outputs.password).toMatch(/^[A-Za-z0-9]{20}$/);
        expect(c.outputs.password).not.toBe(a.outputs.password);
        expect((await runProgram(cloud, { config, secretKeys: ["fixture:token"], entry: passwords })).outputs.password).toBe(c.outputs.password);
        expect(() => cloud.replaceOnNextRun(`${urn}-missing`)).toThrow("the state holds no");
    });

    it("rejects with the program's error, having registered nothing", async () => {
        const cloud = new FakeCloud();
        await expect(runProgram(cloud, { config: { "fixture:length": "4", "fixture:token": "x" }, entry: passwords })).rejects.toThrow(
            "length must be at least 8",
        );
        expect(cloud.resources.filter((r) => r.type !== "pulumi:pulumi:Stack")).toEqual([]);
    });

    it("rejects with the provider's refusal when a resource asks for what the fakes do not emulate", async () => {
        const refused = fixture(
            "refused",
            `import * as tls from ${sdk("@pulumi/tls")};
const defaultCurve = new tls.PrivateKey("default-curve", { algorithm: "ECDSA" });
const key = new tls.PrivateKey("key", { algorithm: "ECDSA", ecdsaCurve: "P256" });
const other = new tls.PrivateKey("other", { algorithm: "ECDSA", ecdsaCurve: "P256" });
const camel = new tls.SelfSignedCert("camel", { privateKeyPem: key.privateKeyPem, subject: { commonName: "x" }, validityPeriodHours: 1, allowedUses: ["certSigning"] });
const ca = new tls.SelfSignedCert("ca", { privateKeyPem: key.privateKeyPem, subject: { commonName: "x" }, isCaCertificate: true, validityPeriodHours: 1, allowedUses: ["cert_signing"] });
const csr = new tls.CertRequest("csr", { privateKeyPem: other.privateKeyPem, subject: { commonName: "y" }, uris: ["spiffe://x"] });
export const pems = [defaultCurve.privateKeyPem, camel.certPem, ca.certPem, csr.certRequestPem];
`,
        );
        const cloud = new FakeCloud();
        await expect(runProgram(cloud, { config: { "fixture:token": "x" }, entry: refused })).rejects.toThrow();
        expect(cloud.errors.map((e) => e.message).sort()).toEqual([
            expect.stringMatching(/"csr": input uris is not emulated/),
            expect.stringMatching(/"default-curve": ecdsaCurve "P224 \(the provider's default\)" is not emulated/),
            expect.stringMatching(/"camel": allowed_uses\[0\] "certSigning" is not emulated/),
        ]);
    });

    it("refuses a CA key that is not the CA certificate's, as Go's x509 does", async () => {
        const mismatch = fixture(
            "mismatch",
            `import * as tls from ${sdk("@pulumi/tls")};
const key = new tls.PrivateKey("key", { algorithm: "ECDSA", ecdsaCurve: "P256" });
const other = new tls.PrivateKey("other", { algorithm: "ECDSA", ecdsaCurve: "P256" });
const ca = new tls.SelfSignedCert("ca", { privateKeyPem: key.privateKeyPem, subject: { commonName: "x" }, isCaCertificate: true, validityPeriodHours: 1, allowedUses: ["cert_signing"] });
const csr = new tls.CertRequest("csr", { privateKeyPem: other.privateKeyPem, subject: { commonName: "y" } });
export const cert = new tls.LocallySignedCert("leaf", { certRequestPem: csr.certRequestPem, caPrivateKeyPem: other.privateKeyPem, caCertPem: ca.certPem, validityPeriodHours: 1, allowedUses: ["server_auth"] }).certPem;
`,
        );
        await expect(runProgram(new FakeCloud(), { config: { "fixture:token": "x" }, entry: mismatch })).rejects.toThrow(
            /"leaf": Failed to create certificate: x509: provided PrivateKey doesn't match parent's PublicKey/,
        );
    });

    it("in preview resolves unknown exports to undefined", async () => {
        const r = await runProgram(new FakeCloud({ preview: true }), { config: { "fixture:length": "10", "fixture:token": "x" }, entry: passwords });
        expect(r.outputs.password).toBeUndefined();
        expect(r.outputs.passwordLength).toBe(10);
        expect(r.secretOutputs.has("token")).toBe(true);
    });
});

describe("the cluster outlives the state, as pulumi-kubernetes >= 4.29.0 and the engine treat it", () => {
    const dir = path.join(tmp, "kept");
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, "Pulumi.yaml"), "name: kept\nruntime: nodejs\n");
    const sdk = (pkg: string) => JSON.stringify(path.dirname(require.resolve(`${pkg}/package.json`)));
    /** A program whose body sees `k8s`, `pulumi` and the config value `mode`. */
    const program = (name: string, body: string) => {
        const entry = path.join(dir, `${name}.ts`);
        fs.writeFileSync(
            entry,
            `import * as pulumi from ${sdk("@pulumi/pulumi")};\nimport * as k8s from ${sdk("@pulumi/kubernetes")};\nconst mode = new pulumi.Config().get("mode") ?? "";\n${body}`,
        );
        return entry;
    };
    const kept = program(
        "kept",
        `const ns = new k8s.core.v1.Namespace("ns", { metadata: { name: "registry" } }, { retainOnDelete: true });
new k8s.core.v1.PersistentVolumeClaim("claim", { metadata: { namespace: "registry" }, spec: { accessModes: ["ReadWriteOnce"] } }, { retainOnDelete: true, dependsOn: [ns] });
new k8s.core.v1.ConfigMap("cm", { metadata: { namespace: "registry" } }, { dependsOn: [ns] });
`,
    );
    const patched = program(
        "patched",
        `const ns = new k8s.core.v1.NamespacePatch("ns", { metadata: { name: "registry", labels: { mine: "yes" } } }, { retainOnDelete: true });
new k8s.core.v1.PersistentVolumeClaimPatch("claim", { metadata: { name: "data", namespace: "registry" }, spec: { accessModes: ["ReadWriteOnce"], storageClassName: mode || undefined } }, { dependsOn: [ns] });
`,
    );

    it("a retained Namespace and claim stay in the cluster after destroy, and the next stack's create fails with AlreadyExists", async () => {
        const cloud = new FakeCloud();
        await runProgram(cloud, { config: {}, entry: kept });
        const claim = cloud.one(T.pvc).outputs.metadata.name;
        const { retained, deleted } = cloud.destroy();
        expect(retained).toHaveLength(2);
        expect(deleted).toHaveLength(1);
        expect(cloud.clusterKeys()).toEqual([`core/v1:Namespace//registry`, `core/v1:PersistentVolumeClaim/registry/${claim}`]);
        await expect(runProgram(cloud, { config: {}, entry: kept })).rejects.toThrow(/"ns": namespaces "registry" already exists/);
    });

    it("a Patch creates what is missing, merges into what exists, leaves it on delete, and refuses a claim's immutable change", async () => {
        const cloud = new FakeCloud();
        await runProgram(cloud, { config: {}, entry: kept });
        cloud.destroy();
        await runProgram(cloud, { config: {}, entry: patched });
        expect(cloud.clusterObject("core/v1:Namespace", "", "registry")?.metadata.labels).toEqual({ mine: "yes" });
        expect(cloud.clusterObject("core/v1:PersistentVolumeClaim", "registry", "data")?.spec.accessModes).toEqual(["ReadWriteOnce"]);
        expect(cloud.steps.map((s) => s.op)).toEqual(["create", "create"]);
        // The claim Patch has no retainOnDelete: its delete leaves the claim (it only gives up its fields).
        cloud.destroy();
        expect(cloud.clusterObject("core/v1:PersistentVolumeClaim", "registry", "data")).toBeDefined();
        await runProgram(cloud, { config: {}, entry: patched });
        const classed = new FakeCloud();
        await runProgram(classed, { config: { "kept:mode": "standard" }, entry: patched });
        await expect(runProgram(classed, { config: { "kept:mode": "premium" }, entry: patched })).rejects.toThrow(/spec is immutable after creation/);
    });

    it("a dropped resource is deleted at the end of the run (a Namespace with what is in it), or forgotten with retainOnDelete", async () => {
        const cloud = new FakeCloud();
        await runProgram(cloud, { config: {}, entry: kept });
        const claim = cloud.one(T.pvc).outputs.metadata.name;
        await runProgram(cloud, { config: {}, entry: program("empty", "export const nothing = 1;\n") });
        expect(cloud.steps.map((s) => [s.type, s.op]).sort()).toEqual([
            [T.cm, "delete"],
            [T.ns, "forget"],
            [T.pvc, "forget"],
        ]);
        expect(cloud.clusterKeys()).toEqual([`core/v1:Namespace//registry`, `core/v1:PersistentVolumeClaim/registry/${claim}`]);
        const unkept = program(
            "unkept",
            `new k8s.core.v1.Namespace("ns", { metadata: { name: "other" } });\nnew k8s.core.v1.ConfigMap("cm", { metadata: { namespace: "other" } });\n`,
        );
        const other = new FakeCloud();
        await runProgram(other, { config: {}, entry: unkept });
        other.destroy();
        expect(other.clusterKeys()).toEqual([]);
    });

    it("an alias moves a resource's state to its new URN, across a type, and ignoreChanges keeps the provider-given name", async () => {
        const cloud = new FakeCloud();
        await runProgram(cloud, { config: {}, entry: kept });
        const before = cloud.one(T.pvc);
        const moved = program(
            "moved",
            `new k8s.core.v1.PersistentVolumeClaimPatch("claim", { metadata: { name: "fixed", namespace: "registry" }, spec: { accessModes: ["ReadWriteOnce"] } },
    { retainOnDelete: true, aliases: [{ type: "kubernetes:core/v1:PersistentVolumeClaim" }], ignoreChanges: ["metadata.name"] });
new k8s.core.v1.NamespacePatch("ns-patch", { metadata: { name: "registry" } }, { retainOnDelete: true });
`,
        );
        await runProgram(cloud, { config: {}, entry: moved });
        const after = cloud.one("kubernetes:core/v1:PersistentVolumeClaimPatch");
        expect(after.aliases).toEqual([before.urn]);
        expect(after.outputs.metadata.name).toBe(before.outputs.metadata.name);
        expect(cloud.steps.find((s) => s.urn === after.urn)).toEqual({ urn: after.urn, type: after.type, op: "update", from: before.urn });
        expect(cloud.steps.filter((s) => s.op === "delete" || s.op === "replace").map((s) => s.type)).toEqual([T.cm]);
    });
});

describe("server-side apply's field ownership of labels", () => {
    const dir = path.join(tmp, "owners");
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, "Pulumi.yaml"), "name: owners\nruntime: nodejs\n");
    const k8s = JSON.stringify(path.dirname(require.resolve("@pulumi/kubernetes/package.json")));
    const pulumiSdk = JSON.stringify(path.dirname(require.resolve("@pulumi/pulumi/package.json")));
    const entry = path.join(dir, "index.ts");
    fs.writeFileSync(
        entry,
        `import * as pulumi from ${pulumiSdk};
import * as k8s from ${k8s};
const cfg = new pulumi.Config();
const annotations: Record<string, string> = {};
if (cfg.get("manager")) annotations["pulumi.com/patchFieldManager"] = cfg.get("manager")!;
if (cfg.get("force")) annotations["pulumi.com/patchForce"] = "true";
new k8s.core.v1.NamespacePatch("ns", { metadata: { name: "shared", annotations, labels: { level: cfg.require("level") } } }, { retainOnDelete: true });
`,
    );
    const run = (cloud: FakeCloud, config: Record<string, string>) =>
        runProgram(cloud, { config: Object.fromEntries(Object.entries(config).map(([k, v]) => [`owners:${k}`, v])), entry });

    it("a label another manager applied with another value is a conflict, unless forced; a manager may change its own", async () => {
        const cloud = new FakeCloud();
        await run(cloud, { level: "restricted" });
        await run(cloud, { level: "privileged" }); // the same resource, the same manager
        cloud.destroy(); // kept, its labels still owned by the destroyed stack's manager
        await expect(run(cloud, { level: "restricted" })).rejects.toThrow(
            /field conflict.*conflict with "pulumi-kubernetes-[0-9a-f]{8}": \.metadata\.labels\.level/,
        );
        await run(cloud, { level: "privileged" }); // the same value: shared, no conflict
        await run(cloud, { level: "restricted", force: "true" });
        expect(cloud.clusterObject("core/v1:Namespace", "", "shared")?.metadata.labels).toEqual({ level: "restricted" });
    });

    it("a fixed field manager (pulumi.com/patchFieldManager) owns the same fields from one stack to the next", async () => {
        const cloud = new FakeCloud();
        await run(cloud, { level: "restricted", manager: "ours" });
        cloud.destroy();
        await run(cloud, { level: "privileged", manager: "ours" });
        expect(cloud.clusterObject("core/v1:Namespace", "", "shared")?.metadata.labels).toEqual({ level: "privileged" });
    });

    it("removing the label (kubectl label ... level-) clears every manager's claim to it", async () => {
        const cloud = new FakeCloud();
        await run(cloud, { level: "restricted" });
        cloud.destroy();
        cloud.removeLabel("core/v1:Namespace", "", "shared", "level");
        await run(cloud, { level: "privileged" });
        expect(cloud.clusterObject("core/v1:Namespace", "", "shared")?.metadata.labels).toEqual({ level: "privileged" });
    });
});
