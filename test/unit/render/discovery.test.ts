/** components/render/discovery.ts: the KEP-1755 ConfigMap tools read, as literal text. */
import { describe, expect, test } from "vitest";
import { renderLocalRegistryHosting } from "../../../components/render/discovery";
import { runWithServiceIps } from "../../support/program";

describe("local-registry-hosting", () => {
    test("renders the KEP's fields in its order, as YAML", () => {
        expect(
            renderLocalRegistryHosting({
                host: "localhost:5000",
                hostFromContainerRuntime: "r.ns.svc.cluster.local:5000",
                hostFromClusterNetwork: "r.ns.svc.cluster.local:5002",
                help: "https://example.com/kep",
            }),
        ).toBe(
            "host: localhost:5000\nhostFromContainerRuntime: r.ns.svc.cluster.local:5000\nhostFromClusterNetwork: r.ns.svc.cluster.local:5002\nhelp: https://example.com/kep\n",
        );
    });

    test("the local-registry-hosting ConfigMap tells tools where to push and what to reference", async () => {
        const { cloud } = await runWithServiceIps({});
        const cm = cloud.one("kubernetes:core/v1:ConfigMap", "local-registry-hosting").inputs;
        expect(cm.metadata).toMatchObject({ name: "local-registry-hosting", namespace: "kube-public" });
        expect(cm.data["localRegistryHosting.v1"]).toBe(
            "host: localhost:5000\n" +
                "hostFromContainerRuntime: registry.registry.svc.cluster.local:5000\n" +
                "hostFromClusterNetwork: registry.registry.svc.cluster.local:5002\n" +
                "help: https://github.com/kubernetes/enhancements/tree/master/keps/sig-cluster-lifecycle/generic/1755-communicating-a-local-registry\n",
        );
        expect(
            (await runWithServiceIps({ "cluster-registry:localRegistryHosting": "false" })).cloud.byType("kubernetes:core/v1:ConfigMap").map((c) => c.name),
        ).not.toContain("registry-local-registry-hosting");
    });

    test("with a NodePort, tools are told to push to it on localhost (where kind and k3d publish it)", async () => {
        const { cloud } = await runWithServiceIps({ "cluster-registry:nodePort": "30500" });
        expect(cloud.one("kubernetes:core/v1:ConfigMap", "local-registry-hosting").inputs.data["localRegistryHosting.v1"]).toMatch(/^host: localhost:30500\n/);
    });
});
