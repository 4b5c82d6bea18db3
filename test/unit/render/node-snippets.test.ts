/** components/render/node-snippets.ts: what a DaemonSet cannot write (kind, k3s, Bottlerocket), as literal text. */
import { describe, expect, test } from "vitest";
import { runWithServiceIps } from "../../support/program";

describe("node snippets", () => {
    test("snippets for kind, k3s and Bottlerocket, as literal text", async () => {
        const { outputs, secretOutputs } = await runWithServiceIps({ "cluster-registry:caches": '["docker.io"]' });
        const node = (outputs.k3sRegistriesYaml as string).match(/password: (\w+)/)![1];
        expect(node).toMatch(/^[A-Za-z0-9]{32}$/);
        // Both carry the node identity.
        expect(secretOutputs.has("k3sRegistriesYaml") && secretOutputs.has("bottlerocketSettings")).toBe(true);
        expect(outputs.kindClusterConfig).toBe(
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n" +
                "nodes:\n  - role: control-plane\n    extraMounts:\n      - hostPath: /var/tmp/cluster-registry-caches\n        containerPath: /var/lib/cluster-registry/caches\n" +
                "containerdConfigPatches:\n" +
                '  - |\n    [plugins."io.containerd.grpc.v1.cri".registry]\n    config_path = "/etc/containerd/certs.d"\n',
        );
        expect(outputs.k3sRegistriesYaml).toBe(
            "# k3s's /etc/rancher/k3s/registries.yaml, root-only (it carries the node identity), on every node:\n" +
                "#   install -m 600 -o root -g root registries.yaml /etc/rancher/k3s/registries.yaml\n" +
                "#   install -m 644 -o root -g root ca.crt /etc/rancher/k3s/cluster-registry-ca.crt\n" +
                "mirrors:\n" +
                "  registry.registry.svc.cluster.local:5000:\n    endpoint:\n      - https://10.96.0.10:5000\n" +
                "  docker.io:\n    endpoint:\n      - https://10.96.0.20:5000\n" +
                "configs:\n" +
                `  10.96.0.10:5000:\n    auth:\n      username: cluster-registry-node\n      password: ${node}\n    tls:\n      ca_file: /etc/rancher/k3s/cluster-registry-ca.crt\n` +
                `  10.96.0.20:5000:\n    auth:\n      username: cluster-registry-node\n      password: ${node}\n    tls:\n      ca_file: /etc/rancher/k3s/cluster-registry-ca.crt\n`,
        );
        const ca = Buffer.from(outputs.caCertPem as string).toString("base64");
        expect(outputs.bottlerocketSettings).toBe(
            '[[settings.container-registry.mirrors]]\nregistry = "registry.registry.svc.cluster.local:5000"\nendpoint = [ "https://10.96.0.10:5000" ]\n\n' +
                '[[settings.container-registry.mirrors]]\nregistry = "docker.io"\nendpoint = [ "https://10.96.0.20:5000" ]\n\n' +
                `[[settings.container-registry.credentials]]\nregistry = "10.96.0.10:5000"\nusername = "cluster-registry-node"\npassword = "${node}"\n\n` +
                `[[settings.container-registry.credentials]]\nregistry = "10.96.0.20:5000"\nusername = "cluster-registry-node"\npassword = "${node}"\n\n` +
                `[settings.pki.cluster-registry]\ndata = "${ca}"\ntrusted = true\n`,
        );
    });
});
