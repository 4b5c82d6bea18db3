import { describe, expect, test } from "vitest";
import { renderHostsToml } from "../../../components/render/hosts-toml";

describe("hosts.toml", () => {
    test("has the server, a host table on the ClusterIP and the CA in both places", () => {
        expect(
            renderHostsToml({
                owner: "cluster-registry (registry.registry)",
                server: "https://registry.registry.svc.cluster.local:5000",
                endpoint: "https://10.96.0.10:5000",
                capabilities: ["pull", "resolve"],
                ca: "ca.crt",
                serverIsOurs: true,
            }),
        ).toBe(
            "# Written by cluster-registry (registry.registry). Removed, and any earlier file restored, when it is uninstalled.\n" +
                'server = "https://registry.registry.svc.cluster.local:5000"\n' +
                'ca = "ca.crt"\n' +
                "\n" +
                '[host."https://10.96.0.10:5000"]\n' +
                'capabilities = [ "pull", "resolve" ]\n' +
                'ca = "ca.crt"\n',
        );
    });

    test("the node identity goes in a header table of the endpoint only, never of the upstream server", () => {
        expect(
            renderHostsToml({
                owner: "o",
                server: "https://registry-1.docker.io",
                endpoint: "https://10.96.0.20:5000",
                capabilities: ["pull", "resolve"],
                ca: "ca.crt",
                serverIsOurs: false,
                header: { Authorization: "Basic bm9kZTpwdw==" },
            }),
        ).toBe(
            "# Written by o. Removed, and any earlier file restored, when it is uninstalled.\n" +
                'server = "https://registry-1.docker.io"\n\n' +
                '[host."https://10.96.0.20:5000"]\ncapabilities = [ "pull", "resolve" ]\nca = "ca.crt"\n\n' +
                '[host."https://10.96.0.20:5000".header]\nAuthorization = "Basic bm9kZTpwdw=="\n',
        );
    });
});

describe("hosts.toml whose server is ours", () => {
    test("the node identity's header goes on server too, so containerd's last try (server) answers 404 and a missing image reads as not found", () => {
        expect(
            renderHostsToml({
                owner: "o",
                server: "https://10.96.0.10:5000",
                endpoint: "https://10.96.0.10:5000",
                capabilities: ["pull", "resolve"],
                ca: "ca.crt",
                serverIsOurs: true,
                header: { Authorization: "Basic bm9kZTpwdw==" },
            }),
        ).toBe(
            "# Written by o. Removed, and any earlier file restored, when it is uninstalled.\n" +
                'server = "https://10.96.0.10:5000"\nca = "ca.crt"\n\n[header]\nAuthorization = "Basic bm9kZTpwdw=="\n\n' +
                '[host."https://10.96.0.10:5000"]\ncapabilities = [ "pull", "resolve" ]\nca = "ca.crt"\n\n' +
                '[host."https://10.96.0.10:5000".header]\nAuthorization = "Basic bm9kZTpwdw=="\n',
        );
    });
});

describe("hosts.toml for a mirror", () => {
    test("fail-open: the upstream is the fallback and keeps the system roots", () => {
        expect(
            renderHostsToml({
                owner: "o",
                server: "https://registry-1.docker.io",
                endpoint: "https://10.96.0.20:5000",
                capabilities: ["pull", "resolve"],
                ca: "ca.crt",
                serverIsOurs: false,
            }),
        ).toBe(
            "# Written by o. Removed, and any earlier file restored, when it is uninstalled.\n" +
                'server = "https://registry-1.docker.io"\n\n[host."https://10.96.0.20:5000"]\ncapabilities = [ "pull", "resolve" ]\nca = "ca.crt"\n',
        );
    });
});
