/** components/credentials.ts: passwords given or generated, their bcrypt costs, and the htpasswd Secrets. */
import * as bcrypt from "bcryptjs";
import { describe, expect, test } from "vitest";
import { NODE_IDENTITY, PULL_IDENTITY } from "../../components/credentials";
import { FakeCloud, runProgram } from "../support/fake-cloud";
import { RESOURCE_TYPES } from "../support/resource-types";
import { ENTRY } from "../support/stacks";

const CLUSTER_IP = "10.96.44.55";
const T = RESOURCE_TYPES;

async function run(config: Record<string, string>, cloud = new FakeCloud({ clusterIP: () => CLUSTER_IP }), secretKeys: string[] = []) {
    const result = await runProgram(cloud, { config, secretKeys, entry: ENTRY });
    return { cloud, ...result };
}
const newCloud = () => new FakeCloud({ clusterIP: () => CLUSTER_IP });

describe("user passwords", () => {
    test("a given password is used as given, hashed at cost 10, and is never in a plain input", async () => {
        const password = "a-password-a-person-chose";
        const { cloud, outputs } = await run(
            { "cluster-registry:users": '["admin","ci"]', "cluster-registry:userPasswords": JSON.stringify([`ci:${password}`]) },
            newCloud(),
            ["cluster-registry:userPasswords"],
        );
        const passwords = outputs.passwords as Record<string, string>;
        expect(passwords.ci).toBe(password);
        // only admin's user password is generated (and the program's two identities')
        expect(
            cloud
                .byType(T.password)
                .map((r) => r.name)
                .filter((n) => !n.endsWith("-http-secret")),
        ).toEqual([
            "registry-credentials-admin-password",
            `registry-credentials-identity-${PULL_IDENTITY}-password`,
            `registry-credentials-identity-${NODE_IDENTITY}-password`,
        ]);
        const lines: string[] = cloud
            .byType(T.secret)
            .find((s) => s.inputs.stringData?.htpasswd)!
            .inputs.stringData.htpasswd.trim()
            .split("\n");
        const ci = lines.find((l) => l.startsWith("ci:"))!.slice(3);
        expect(bcrypt.getRounds(ci)).toBe(10);
        expect(bcrypt.compareSync(password, ci)).toBe(true);
        const admin = lines.find((l) => l.startsWith("admin:"))!.slice(6);
        expect(bcrypt.getRounds(admin)).toBe(5);
        for (const r of cloud.resources) {
            if (r.type === T.secret) continue;
            expect(JSON.stringify(r.inputs)).not.toContain(password);
        }
    });

    test("a changed password changes the htpasswd and the pod checksum; not the container", async () => {
        const cloud = newCloud();
        const base = { "cluster-registry:userPasswords": '["admin:first-password-123"]' };
        await run(base, cloud, ["cluster-registry:userPasswords"]);
        const before = cloud.one(T.deploy, "hosted").inputs.spec.template;
        await run({ "cluster-registry:userPasswords": '["admin:second-password-456"]' }, cloud, ["cluster-registry:userPasswords"]);
        const after = cloud.one(T.deploy, "hosted").inputs.spec.template;
        expect(after.metadata.annotations["cluster-registry/checksum"]).not.toBe(before.metadata.annotations["cluster-registry/checksum"]);
        // The htpasswd Secret is replaced too (a real provider gives it a new name); the container is the same.
        expect(after.spec.containers).toEqual(before.spec.containers);
    });
});
