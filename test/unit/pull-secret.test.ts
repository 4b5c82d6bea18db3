/** components/pull-secret.ts and the default ServiceAccounts that name it. */
import { describe, expect, test } from "vitest";
import { runWithServiceIps } from "../support/program";

describe("the pull secret", () => {
    test("default ServiceAccounts of listed namespaces get the pull secret when asked", async () => {
        const { cloud } = await runWithServiceIps({
            "cluster-registry:pullSecretNamespaces": '["apps","ci"]',
            "cluster-registry:patchDefaultServiceAccounts": "true",
        });
        const patches = cloud.byType("kubernetes:core/v1:ServiceAccountPatch").map((p) => p.inputs);
        expect(patches.map((p) => [p.metadata.namespace, p.metadata.name, p.imagePullSecrets])).toEqual([
            ["apps", "default", [{ name: "registry-pull" }]],
            ["ci", "default", [{ name: "registry-pull" }]],
        ]);
        expect(
            (await runWithServiceIps({ "cluster-registry:pullSecretNamespaces": '["apps"]' })).cloud.byType("kubernetes:core/v1:ServiceAccountPatch"),
        ).toEqual([]);
    });
});
