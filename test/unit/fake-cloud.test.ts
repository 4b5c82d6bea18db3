import "reflect-metadata";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as x509 from "@peculiar/x509";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import * as tls from "@pulumi/tls";
import bcrypt from "bcryptjs";
import { afterAll, describe, expect, it } from "vitest";
import { FakeCloud, runProgram, settle } from "../support/fake-cloud";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "fake-cloud-test-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function write(name: string, content: string): string {
    const p = path.join(tmp, name);
    fs.writeFileSync(p, content, { mode: 0o600 });
    return p;
}
function openssl(...args: string[]): string {
    return execFileSync("openssl", args, { encoding: "utf8", stdio: ["pipe", "pipe", "pipe"] });
}

/** Value of an Output (undefined when unknown) plus its known/secret flags. */
async function look<T>(o: pulumi.Output<T>): Promise<{ value: T | undefined; known: boolean; secret: boolean }> {
    const impl = o as any;
    const [value, known, secret] = await Promise.all([impl.promise(), impl.isKnown, impl.isSecret]);
    return { value, known, secret };
}
async function val<T>(o: pulumi.Output<T>): Promise<T> {
    const { value, known } = await look(o);
    if (!known) throw new Error("output is unknown");
    return value as T;
}

/** Runs an inline program against the fake, like one `pulumi up` (or preview). */
async function run<T>(cloud: FakeCloud, program: () => T): Promise<T> {
    cloud.newRun();
    await cloud.install("fake-test", "dev");
    const res = program();
    await settle(cloud);
    return res;
}

interface PkiOpts {
    serverValidity?: number;
}
function pki(opts: PkiOpts = {}) {
    const caKey = new tls.PrivateKey("ca-key", { algorithm: "ECDSA", ecdsaCurve: "P256" });
    const caCert = new tls.SelfSignedCert("ca-cert", {
        privateKeyPem: caKey.privateKeyPem,
        subject: { commonName: "Test Registry CA", organization: "Fake Cloud Tests" },
        isCaCertificate: true,
        validityPeriodHours: 24 * 365,
        allowedUses: ["cert_signing", "crl_signing"],
    });
    const serverKey = new tls.PrivateKey("server-key", { algorithm: "ECDSA", ecdsaCurve: "P256" });
    const csr = new tls.CertRequest("server-csr", {
        privateKeyPem: serverKey.privateKeyPem,
        subject: { commonName: "reg.example", organization: "Fake Cloud Tests" },
        dnsNames: ["reg.example"],
        ipAddresses: ["127.0.0.1"],
    });
    const serverCert = new tls.LocallySignedCert("server-cert", {
        certRequestPem: csr.certRequestPem,
        caPrivateKeyPem: caKey.privateKeyPem,
        caCertPem: caCert.certPem,
        validityPeriodHours: opts.serverValidity ?? 12,
        allowedUses: ["digital_signature", "key_encipherment", "server_auth"],
    });
    const password = new random.RandomPassword("registry-password", { length: 24, special: false });
    return { caKey, caCert, serverKey, csr, serverCert, password };
}

async function materialize(p: ReturnType<typeof pki>) {
    return {
        caKey: await val(p.caKey.privateKeyPem),
        caPub: await val(p.caKey.publicKeyPem),
        caCert: await val(p.caCert.certPem),
        serverKey: await val(p.serverKey.privateKeyPem),
        serverCert: await val(p.serverCert.certPem),
        csr: await val(p.csr.certRequestPem),
        password: await val(p.password.result),
        bcryptHash: await val(p.password.bcryptHash),
    };
}

describe("FakeCloud tls", () => {
    it("issues a CA and a server certificate that openssl accepts, built from the program's inputs", async () => {
        const cloud = new FakeCloud();
        const p = await run(cloud, () => pki());
        const m = await materialize(p);
        expect(cloud.errors).toEqual([]);

        const caPem = write("ca.pem", m.caCert);
        const serverPem = write("server.pem", m.serverCert);
        const serverKeyPem = write("server.key", m.serverKey);
        const caKeyPem = write("ca.key", m.caKey);

        expect(openssl("verify", "-CAfile", caPem, serverPem).trim()).toBe(`${serverPem}: OK`);
        expect(openssl("verify", "-purpose", "sslserver", "-CAfile", caPem, serverPem).trim()).toBe(`${serverPem}: OK`);

        const caExt = openssl("x509", "-in", caPem, "-noout", "-ext", "basicConstraints,keyUsage,subjectKeyIdentifier");
        expect(caExt).toMatch(/X509v3 Basic Constraints: critical\s+CA:TRUE\s/);
        expect(caExt).toMatch(/X509v3 Key Usage: critical\s+Certificate Sign, CRL Sign\s/);
        const caSki = /Subject Key Identifier:\s+([0-9A-F:]+)/.exec(caExt)![1];

        const srvExt = openssl("x509", "-in", serverPem, "-noout", "-ext", "subjectAltName,basicConstraints,keyUsage,extendedKeyUsage,authorityKeyIdentifier");
        expect(srvExt).toMatch(/X509v3 Subject Alternative Name:\s+DNS:reg\.example, IP Address:127\.0\.0\.1\s/);
        expect(srvExt).toMatch(/X509v3 Basic Constraints: critical\s+CA:FALSE\s/);
        expect(srvExt).toMatch(/X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment\s/);
        expect(srvExt).toMatch(/X509v3 Extended Key Usage:\s+TLS Web Server Authentication\s/);
        expect(srvExt).toContain(caSki); // AKI of the leaf = SKI of the CA

        // Subject from the CSR, issuer = CA subject.
        expect(openssl("x509", "-in", serverPem, "-noout", "-subject").trim()).toBe("subject=O = Fake Cloud Tests, CN = reg.example");
        expect(openssl("x509", "-in", serverPem, "-noout", "-issuer").replace("issuer=", "")).toBe(
            openssl("x509", "-in", caPem, "-noout", "-subject").replace("subject=", ""),
        );

        // Keys match certificates.
        const pub = (args: string[]) => openssl(...args);
        expect(pub(["x509", "-in", serverPem, "-noout", "-pubkey"])).toBe(pub(["pkey", "-in", serverKeyPem, "-pubout"]));
        expect(pub(["x509", "-in", caPem, "-noout", "-pubkey"])).toBe(pub(["pkey", "-in", caKeyPem, "-pubout"]));
        expect(pub(["pkey", "-in", caKeyPem, "-pubout"])).toBe(m.caPub);

        // Formats as the real provider: SEC1 for ECDSA, PKCS#8 variant alongside.
        expect(m.caKey).toMatch(/^-----BEGIN EC PRIVATE KEY-----\n/);
        expect(await val(p.caKey.privateKeyPemPkcs8)).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
        expect(openssl("ec", "-in", caKeyPem, "-noout", "-text")).toMatch(/NIST CURVE: P-256/);

        // CSR carries the SAN request and a valid self-signature.
        const csrPem = write("server.csr", m.csr);
        expect(openssl("req", "-in", csrPem, "-noout", "-verify", "-text")).toMatch(/DNS:reg\.example, IP Address:127\.0\.0\.1/);

        // Validity: notAfter - notBefore = validityPeriodHours; outputs agree with the certificate.
        const cert = new x509.X509Certificate(m.serverCert);
        expect(cert.notAfter.getTime() - cert.notBefore.getTime()).toBe(12 * 3600_000);
        expect(Math.abs(cert.notBefore.getTime() - Date.now())).toBeLessThan(60_000);
        expect(Date.parse(await val(p.serverCert.validityEndTime))).toBeGreaterThan(cert.notAfter.getTime() - 1000);
        expect(await val(p.serverCert.readyForRenewal)).toBe(false);
        expect(await val(p.serverCert.caKeyAlgorithm)).toBe("ECDSA");
        expect(await val(p.caCert.keyAlgorithm)).toBe("ECDSA");
        const san = cert.getExtension(x509.SubjectAlternativeNameExtension)!;
        expect(san.names.items.map((n) => `${n.type}:${n.value}`)).toEqual(["dns:reg.example", "ip:127.0.0.1"]);
        expect(new x509.X509Certificate(m.caCert).getExtension(x509.BasicConstraintsExtension)!.ca).toBe(true);
    });

    it("records resources with unwrapped inputs, secret input keys and secret outputs like the engine", async () => {
        const cloud = new FakeCloud();
        const p = await run(cloud, () => pki());
        // In registration order, which follows dependency resolution, not program order.
        expect(cloud.resources.map((r) => r.name).sort()).toEqual(["ca-cert", "ca-key", "registry-password", "server-cert", "server-csr", "server-key"]);
        const order = cloud.resources.map((r) => r.name);
        expect(order.indexOf("ca-key")).toBeLessThan(order.indexOf("ca-cert"));
        expect(order.indexOf("server-csr")).toBeLessThan(order.indexOf("server-cert"));
        const caCert = cloud.one("tls:index/selfSignedCert:SelfSignedCert");
        expect(caCert.urn).toBe("urn:pulumi:dev::fake-test::tls:index/selfSignedCert:SelfSignedCert::ca-cert");
        expect(caCert.inputs.privateKeyPem).toMatch(/^-----BEGIN EC PRIVATE KEY-----/);
        expect(caCert.inputs.allowedUses).toEqual(["cert_signing", "crl_signing"]);
        expect(caCert.secretInputs).toEqual(["privateKeyPem"]);
        expect(caCert.outputs.certPem).toMatch(/^-----BEGIN CERTIFICATE-----/);
        expect(cloud.one("tls:index/locallySignedCert:LocallySignedCert", "server-cert").secretInputs).toEqual(["caPrivateKeyPem"]);

        expect((await look(p.caKey.privateKeyPem)).secret).toBe(true);
        expect((await look(p.caKey.publicKeyPem)).secret).toBe(false);
        expect((await look(p.caCert.certPem)).secret).toBe(false);
        expect((await look(p.password.result)).secret).toBe(true);
        expect((await look(p.password.bcryptHash)).secret).toBe(true);
        expect(cloud.one("random:index/randomPassword:RandomPassword").secretOutputs).toEqual(expect.arrayContaining(["result", "bcryptHash"]));

        expect(() => cloud.one("tls:index/privateKey:PrivateKey")).toThrow(/found 2[\s\S]*ca-key[\s\S]*server-key/);
        expect(() => cloud.one("kubernetes:core/v1:Service")).toThrow(/No resource of that type/);
    });

    it("keeps state across runs: identical inputs give identical outputs; changed inputs replace", async () => {
        const cloud = new FakeCloud();
        const first = await materialize(await run(cloud, () => pki()));
        const second = await materialize(await run(cloud, () => pki()));
        expect(second).toEqual(first);
        expect(cloud.resources).toHaveLength(6); // records are per run

        const third = await materialize(await run(cloud, () => pki({ serverValidity: 48 })));
        expect(third.serverCert).not.toBe(first.serverCert);
        expect(third.caCert).toBe(first.caCert);
        expect(third.serverKey).toBe(first.serverKey);
        const cert = new x509.X509Certificate(third.serverCert);
        expect(cert.notAfter.getTime() - cert.notBefore.getTime()).toBe(48 * 3600_000);
    });

    it("uses real randomness: another FakeCloud gives other keys, certificates and passwords", async () => {
        const a = await materialize(await run(new FakeCloud(), () => pki()));
        const b = await materialize(await run(new FakeCloud(), () => pki()));
        expect(b.caKey).not.toBe(a.caKey);
        expect(b.serverCert).not.toBe(a.serverCert);
        expect(b.password).not.toBe(a.password);
    });

    it("supports RSA and ED25519 keys with OpenSSH encodings ssh-keygen agrees with", async () => {
        const cloud = new FakeCloud();
        const keys = await run(cloud, () => ({
            rsa: new tls.PrivateKey("rsa", { algorithm: "RSA", rsaBits: 2048 }),
            ed: new tls.PrivateKey("ed", { algorithm: "ED25519" }),
            p384: new tls.PrivateKey("p384", { algorithm: "ECDSA", ecdsaCurve: "P384" }),
        }));
        expect(await val(keys.rsa.privateKeyPem)).toMatch(/^-----BEGIN RSA PRIVATE KEY-----/);
        expect(await val(keys.ed.privateKeyPem)).toMatch(/^-----BEGIN PRIVATE KEY-----/);
        for (const k of [keys.rsa, keys.ed, keys.p384]) {
            const f = write(`ssh-${Math.random()}`, await val(k.privateKeyOpenssh));
            const derived = execFileSync("ssh-keygen", ["-y", "-f", f], { encoding: "utf8" }).trim();
            expect(derived).toBe((await val(k.publicKeyOpenssh)).trim());
            const fp = execFileSync("ssh-keygen", ["-l", "-E", "sha256", "-f", f], { encoding: "utf8" });
            expect(fp).toContain(await val(k.publicKeyFingerprintSha256));
        }
        // ED25519 CA + RSA leaf, signed across algorithms.
        const chain = await run(cloud, () => {
            const ca = new tls.SelfSignedCert("ed-ca", {
                privateKeyPem: keys.ed.privateKeyPem,
                subject: { commonName: "ed ca" },
                isCaCertificate: true,
                validityPeriodHours: 1,
                allowedUses: ["cert_signing"],
            });
            const csr = new tls.CertRequest("rsa-csr", { privateKeyPem: keys.rsa.privateKeyPem, dnsNames: ["a.example"] });
            return new tls.LocallySignedCert("rsa-leaf", {
                certRequestPem: csr.certRequestPem,
                caPrivateKeyPem: keys.ed.privateKeyPem,
                caCertPem: ca.certPem,
                validityPeriodHours: 1,
                allowedUses: ["client_auth"],
            }).certPem.apply((leaf) => ca.certPem.apply((caPem) => ({ leaf, caPem })));
        });
        const { leaf, caPem } = await val(chain);
        const caF = write("ed-ca.pem", caPem);
        const leafF = write("rsa-leaf.pem", leaf);
        expect(openssl("verify", "-CAfile", caF, leafF).trim()).toBe(`${leafF}: OK`);
        // Empty subject => SAN is critical (Go's rule).
        expect(openssl("x509", "-in", leafF, "-noout", "-ext", "subjectAltName")).toMatch(/critical\s+DNS:a\.example/);
    });

    it("fails like the provider on bad inputs", async () => {
        const cloud = new FakeCloud();
        const failures: unknown[] = [];
        await cloud.expectFailures(() =>
            run(cloud, () => {
                const key = new tls.PrivateKey("k", { algorithm: "ECDSA", ecdsaCurve: "P256" });
                const other = new tls.PrivateKey("other", { algorithm: "ECDSA", ecdsaCurve: "P256" });
                const camel = new tls.SelfSignedCert("camel", {
                    privateKeyPem: key.privateKeyPem,
                    subject: { commonName: "x" },
                    validityPeriodHours: 1,
                    allowedUses: ["certSigning"],
                });
                const ca = new tls.SelfSignedCert("ca", {
                    privateKeyPem: key.privateKeyPem,
                    subject: { commonName: "x" },
                    isCaCertificate: true,
                    validityPeriodHours: 1,
                    allowedUses: ["cert_signing"],
                });
                const csr = new tls.CertRequest("csr", { privateKeyPem: other.privateKeyPem });
                const wrongKey = new tls.LocallySignedCert("wrong-ca-key", {
                    certRequestPem: csr.certRequestPem,
                    caPrivateKeyPem: other.privateKeyPem,
                    caCertPem: ca.certPem,
                    validityPeriodHours: 1,
                    allowedUses: ["server_auth"],
                });
                for (const r of [camel, wrongKey]) {
                    for (const o of [r.urn, r.id, r.certPem]) (o as any).promise().catch((e: unknown) => failures.push(e));
                }
            }),
        );
        expect(cloud.errors.map((e) => e.message)).toEqual([
            expect.stringMatching(/camel.*allowed_uses\[0\].*got: "certSigning".*"cert_signing"/),
            expect.stringMatching(/wrong-ca-key.*doesn't match parent's PublicKey/),
        ]);
        expect(failures.length).toBeGreaterThan(0);
    });
});

describe("FakeCloud random", () => {
    it("honours length, character classes, minimums and overrideSpecial; bcrypt hash is real", async () => {
        const cloud = new FakeCloud();
        const r = await run(cloud, () => ({
            pw: new random.RandomPassword("pw", { length: 32, special: false }),
            only: new random.RandomString("only", {
                length: 40,
                upper: false,
                lower: false,
                numeric: false,
                overrideSpecial: "_-",
            }),
            mins: new random.RandomString("mins", {
                length: 8,
                upper: false,
                lower: true,
                special: false,
                minUpper: 3,
                minNumeric: 2,
            }),
            bytes: new random.RandomBytes("bytes", { length: 16 }),
        }));
        const pw = await val(r.pw.result);
        expect(pw).toMatch(/^[A-Za-z0-9]{32}$/);
        expect(bcrypt.compareSync(pw, await val(r.pw.bcryptHash))).toBe(true);
        expect(await val(r.pw.bcryptHash)).toMatch(/^\$2a\$10\$/);
        expect(await val(r.only.result)).toMatch(/^[_-]{40}$/);
        const mins = await val(r.mins.result);
        expect(mins).toHaveLength(8);
        expect(mins.replace(/[^A-Z]/g, "").length).toBeGreaterThanOrEqual(3); // mins apply even when upper=false
        expect(mins.replace(/[^0-9]/g, "").length).toBeGreaterThanOrEqual(2);
        expect(await val(r.only.id)).toBe(await val(r.only.result));
        const b64 = await val(r.bytes.base64);
        expect(Buffer.from(b64, "base64").toString("hex")).toBe(await val(r.bytes.hex));
        expect(await val(r.bytes.hex)).toMatch(/^[0-9a-f]{32}$/);
        expect((await look(r.bytes.hex)).secret).toBe(true);
        expect((await look(r.only.result)).secret).toBe(false);
    });
});

describe("FakeCloud kubernetes", () => {
    it("auto-names deterministically, echoes namespaces and allocates Service cluster IPs", async () => {
        const cloud = new FakeCloud({ clusterIP: (name) => (name === "registry" ? "10.96.0.50" : "10.96.7.7") });
        const mk = () => ({
            svc: new k8s.core.v1.Service("registry", {
                metadata: { namespace: "registry" },
                spec: { selector: { app: "registry" }, ports: [{ port: 5000 }] },
            }),
            fixed: new k8s.core.v1.Service("fixed", {
                metadata: { name: "fixed", namespace: "registry" },
                spec: { clusterIP: "10.96.0.99", ports: [{ port: 80 }] },
            }),
            cm: new k8s.core.v1.ConfigMap("cfg", { metadata: { namespace: "registry" }, data: { a: "b" } }),
            secret: new k8s.core.v1.Secret("s", { metadata: { name: "s" }, stringData: { p: "q" } }),
        });
        const r = await run(cloud, mk);
        const svcName = await val(r.svc.metadata.name);
        expect(svcName).toMatch(/^registry-[0-9a-f]{8}$/);
        expect(await val(r.svc.spec.clusterIP)).toBe("10.96.0.50");
        expect(await val(r.svc.spec.clusterIPs)).toEqual(["10.96.0.50"]);
        expect(await val(r.fixed.spec.clusterIP)).toBe("10.96.0.99");
        expect(await val(r.svc.metadata.namespace)).toBe("registry");
        expect(await val(r.svc.id)).toBe(`registry/${svcName}`);
        expect(await val(r.cm.metadata.name)).toMatch(/^cfg-[0-9a-f]{8}$/);
        expect((await look(r.secret.stringData)).secret).toBe(true);
        expect(cloud.one("kubernetes:core/v1:Service", "registry").outputs.status).toEqual({ loadBalancer: {} });

        const again = await run(cloud, mk);
        expect(await val(again.svc.metadata.name)).toBe(svcName);
        expect(await val(again.svc.spec.clusterIP)).toBe("10.96.0.50");

        const dflt = new FakeCloud();
        const d = await run(dflt, mk);
        expect(await val(d.svc.spec.clusterIP)).toMatch(/^10\.96\.\d+\.\d+$/);
    });
});

describe("FakeCloud preview", () => {
    it("returns computed outputs as unknown so apply callbacks do not run", async () => {
        const cloud = new FakeCloud({ preview: true });
        let applied = false;
        const r = await run(cloud, () => {
            const p = pki();
            p.serverCert.certPem.apply(() => (applied = true));
            const svc = new k8s.core.v1.Service("registry", { spec: { ports: [{ port: 5000 }] } });
            return { ...p, svc };
        });
        for (const o of [r.caKey.privateKeyPem, r.caCert.certPem, r.csr.certRequestPem, r.serverCert.certPem, r.password.result, r.svc.spec.clusterIP]) {
            expect((await look(o as pulumi.Output<unknown>)).known).toBe(false);
        }
        expect(applied).toBe(false);
        expect((await look(r.password.length)).value).toBe(24); // inputs stay known
        expect(await val(r.svc.metadata.name)).toMatch(/^registry-[0-9a-f]{8}$/); // the provider names in preview too
        expect(cloud.one("tls:index/privateKey:PrivateKey", "ca-key").outputs.privateKeyPem).toBeUndefined();
        expect(cloud.one("tls:index/selfSignedCert:SelfSignedCert").inputs.privateKeyPem).toBeUndefined();
        expect(cloud.resources).toHaveLength(7);
    });
});

describe("FakeCloud preview against existing state", () => {
    it("shows unchanged resources with their stored outputs and replacements as unknown", async () => {
        const cloud = new FakeCloud();
        const up = await materialize(await run(cloud, () => pki()));
        cloud.preview = true;
        const p = await run(cloud, () => pki({ serverValidity: 99 }));
        expect(await val(p.caCert.certPem)).toBe(up.caCert);
        expect(await val(p.password.result)).toBe(up.password);
        expect((await look(p.serverCert.certPem)).known).toBe(false);
        cloud.preview = false;
        const again = await materialize(await run(cloud, () => pki()));
        expect(again).toEqual(up); // the preview did not touch state
    });

    it("replaces a certificate inside its early-renewal window, as the provider's plan does", async () => {
        const cloud = new FakeCloud();
        const mk = () => {
            const key = new tls.PrivateKey("k", { algorithm: "ECDSA", ecdsaCurve: "P256" });
            return new tls.SelfSignedCert("c", {
                privateKeyPem: key.privateKeyPem,
                subject: { commonName: "short" },
                validityPeriodHours: 1,
                earlyRenewalHours: 1,
                allowedUses: ["server_auth"],
            }).certPem;
        };
        const a = await val(await run(cloud, mk));
        const b = await val(await run(cloud, mk));
        expect(b).not.toBe(a);
    });
});

describe("runProgram", () => {
    const pulumiDir = path.dirname(require.resolve("@pulumi/pulumi/package.json"));
    const randomDir = path.dirname(require.resolve("@pulumi/random/package.json"));
    const entry = write(
        "program.ts",
        `import * as pulumi from ${JSON.stringify(pulumiDir)};
import * as random from ${JSON.stringify(randomDir)};
const cfg = new pulumi.Config();
const length = cfg.requireNumber("length");
if (length < 8) throw new Error("length must be at least 8");
const pw = new random.RandomPassword("pw", { length, special: false });
export const password = pw.result;
export const passwordLength = pw.length;
export const token = cfg.requireSecret("token");
export const nested = { id: pw.id, plain: 1 };
export const plain = "hello";
`,
    );

    it("runs the module fresh each time, resolves exports and reports which are secret", async () => {
        const cloud = new FakeCloud();
        const config = { "fixture:length": "20", "fixture:token": "t0k" };
        const a = await runProgram(cloud, { config, secretKeys: ["fixture:token"], project: "fixture", entry });
        expect(a.outputs.password).toMatch(/^[A-Za-z0-9]{20}$/);
        expect(a.outputs).toMatchObject({ passwordLength: 20, token: "t0k", nested: { id: "none", plain: 1 }, plain: "hello" });
        expect([...a.secretOutputs].sort()).toEqual(["password", "token"]);
        expect(cloud.resources.map((r) => r.urn)).toEqual(["urn:pulumi:test::fixture::random:index/randomPassword:RandomPassword::pw"]);

        const b = await runProgram(cloud, { config, secretKeys: ["fixture:token"], project: "fixture", entry });
        expect(cloud.resources).toHaveLength(1); // re-evaluated, not served from the module cache
        expect(b.outputs.password).toBe(a.outputs.password);
    });

    it("rejects with the program's error and registers nothing on bad config", async () => {
        const cloud = new FakeCloud();
        await expect(runProgram(cloud, { config: { "fixture:length": "4", "fixture:token": "x" }, project: "fixture", entry })).rejects.toThrow(
            "length must be at least 8",
        );
        expect(cloud.resources).toEqual([]);
    });

    it("in preview resolves unknown exports to undefined", async () => {
        const cloud = new FakeCloud({ preview: true });
        const r = await runProgram(cloud, { config: { "fixture:length": "10", "fixture:token": "x" }, project: "fixture", entry });
        expect(r.outputs.password).toBeUndefined();
        expect(r.outputs.passwordLength).toBe(10);
        expect(r.secretOutputs.has("token")).toBe(true);
    });
});
