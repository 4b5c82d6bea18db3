/** components/pki.ts: the CA and the server certificates, as real X.509 from the program's own inputs. */
import { describe, expect, test } from "vitest";
import { FakeCloud, runProgram } from "../support/fake-cloud";
import { RESOURCE_TYPES } from "../support/resource-types";
import { ENTRY, shippedStacks, stackConfig } from "../support/stacks";
import { certFacts } from "../support/x509";

const CLUSTER_IP = "10.96.44.55";
const T = RESOURCE_TYPES;

async function run(config: Record<string, string>, cloud = new FakeCloud({ clusterIP: () => CLUSTER_IP }), secretKeys: string[] = []) {
    const result = await runProgram(cloud, { config, secretKeys, entry: ENTRY });
    return { cloud, ...result };
}

describe.each(shippedStacks())("stack %s", (stack) => {
    const config = stackConfig(stack);

    test("the server certificate is signed by the CA and names every way to the registry, the ClusterIP included", async () => {
        const { cloud, outputs } = await run(config);
        const server = certFacts(cloud.one(T.signed, "hosted-tls-cert").outputs.certPem);
        const ca = certFacts(outputs.caCertPem as string);
        expect(ca.isCa).toBe(true);
        expect(server.isCa).toBe(false);
        expect(server.issuer).toBe(ca.subject);
        expect(server.dnsNames).toEqual(["registry", "registry.registry", "registry.registry.svc", "registry.registry.svc.cluster.local", "localhost"]);
        expect(server.ipAddresses).toEqual([CLUSTER_IP, "127.0.0.1"]);
        expect(server.extendedKeyUsages).toContain("1.3.6.1.5.5.7.3.1"); // serverAuth
        expect(outputs.host).toBe("registry.registry.svc.cluster.local:5000");
        expect(outputs.clusterIP).toBe(CLUSTER_IP);
    });

    test("the CA key is ECDSA P-256 and may only sign", async () => {
        const { cloud } = await run(config);
        const caCert = cloud.one(T.selfSigned);
        expect(caCert.inputs.isCaCertificate).toBe(true);
        expect(caCert.inputs.allowedUses).toEqual(["cert_signing", "crl_signing"]);
        for (const key of cloud.byType(T.key)) expect(key.inputs).toMatchObject({ algorithm: "ECDSA", ecdsaCurve: "P256" });
    });
});

describe("key algorithm", () => {
    test("RSA keys when asked", async () => {
        const { cloud } = await run({ "cluster-registry:keyAlgorithm": "RSA" });
        for (const key of cloud.byType(T.key)) expect(key.inputs).toMatchObject({ algorithm: "RSA", rsaBits: 2048 });
    });

    test("the CA is renewed a month before it expires, or at half its validity if that is sooner", async () => {
        const renewal = async (hours: string) =>
            (
                await run({
                    "cluster-registry:caValidityHours": hours,
                    "cluster-registry:certValidityHours": "24",
                    "cluster-registry:certEarlyRenewalHours": "1",
                })
            ).cloud.one(T.selfSigned).inputs.earlyRenewalHours;
        expect(await renewal("87600")).toBe(720);
        expect(await renewal("1000")).toBe(500);
    });
});
