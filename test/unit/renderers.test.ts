import * as bcrypt from "bcryptjs";
import { describe, expect, test } from "vitest";
import { contentChecksum } from "../../components/render/checksum";
import { renderDockerConfigJson } from "../../components/render/docker-config";
import { renderHostsToml } from "../../components/render/hosts-toml";
import { bcryptHash, renderHtpasswd } from "../../components/render/htpasswd";
import { renderNodeScript } from "../../components/render/node-script";
import { renderRegistryConfig } from "../../components/render/registry-config";

const SALT = Buffer.from("00112233445566778899aabbccddeeff", "hex").toString("base64");

describe("htpasswd", () => {
    test("the same password and salt give the same line, which verifies", () => {
        const a = bcryptHash("correct horse battery staple", SALT, 5);
        const b = bcryptHash("correct horse battery staple", SALT, 5);
        expect(a).toBe(b);
        expect(a).toMatch(/^\$2b\$05\$/);
        expect(bcrypt.compareSync("correct horse battery staple", a)).toBe(true);
        expect(bcrypt.compareSync("wrong", a)).toBe(false);
    });

    test("the salt decides the hash", () => {
        const other = Buffer.alloc(16, 7).toString("base64");
        expect(bcryptHash("pw", SALT, 5)).not.toBe(bcryptHash("pw", other, 5));
    });

    test("the cost is the one asked for", () => {
        expect(bcrypt.getRounds(bcryptHash("pw", SALT, 10))).toBe(10);
    });

    test("a salt of the wrong size is refused", () => {
        expect(() => bcryptHash("pw", Buffer.alloc(8).toString("base64"), 5)).toThrow(/16 bytes/);
    });

    test("renders one user:hash line per user", () => {
        expect(
            renderHtpasswd([
                { user: "admin", hash: "$2b$05$abc" },
                { user: "ci", hash: "$2b$05$def" },
            ]),
        ).toBe("admin:$2b$05$abc\nci:$2b$05$def\n");
    });
});

describe("docker config json", () => {
    test("carries username, password and auth for each host", () => {
        expect(renderDockerConfigJson(["registry.registry.svc.cluster.local:5000", "localhost:5000"], "admin", "s3cret")).toBe(
            '{"auths":{"registry.registry.svc.cluster.local:5000":{"username":"admin","password":"s3cret","auth":"YWRtaW46czNjcmV0"},' +
                '"localhost:5000":{"username":"admin","password":"s3cret","auth":"YWRtaW46czNjcmV0"}}}',
        );
    });
});

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
});

describe("registry config", () => {
    test("hosted: TLS, htpasswd, delete enabled, no proxy", () => {
        expect(
            renderRegistryConfig({
                port: 5000,
                storageRoot: "/var/lib/registry",
                tls: { certificate: "/etc/registry/tls/tls.crt", key: "/etc/registry/tls/tls.key" },
                htpasswd: { realm: "cluster-registry", path: "/etc/registry/auth/htpasswd" },
            }),
        ).toBe(`version: "0.1"
log:
  level: info
  formatter: text
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: :5000
  tls:
    certificate: /etc/registry/tls/tls.crt
    key: /etc/registry/tls/tls.key
  headers:
    X-Content-Type-Options:
      - nosniff
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
auth:
  htpasswd:
    realm: cluster-registry
    path: /etc/registry/auth/htpasswd
`);
    });

    test("cache: proxy section with TTL and no auth", () => {
        const text = renderRegistryConfig({
            port: 5000,
            storageRoot: "/var/lib/registry",
            tls: { certificate: "/c", key: "/k" },
            proxy: { remoteUrl: "https://registry-1.docker.io", ttl: "168h" },
        });
        expect(text).toContain("proxy:\n  remoteurl: https://registry-1.docker.io\n  ttl: 168h\n");
        expect(text).not.toContain("auth:");
    });
});

describe("node script", () => {
    test("embeds each file verbatim in a quoted heredoc, sorted, and lists them", () => {
        const script = renderNodeScript("registry.registry", [
            { path: "b.example:5000/hosts.toml", content: 'server = "$NOT_EXPANDED"\n' },
            { path: "a.example/ca.crt", content: "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----" },
        ]);
        expect(script.startsWith("#!/bin/sh\n")).toBe(true);
        expect(script).toContain('STATE="$CERTS_DIR/.cluster-registry.registry.registry"');
        expect(script).toContain("  cat <<'CLUSTER_REGISTRY_EOF'\na.example/ca.crt\nb.example:5000/hosts.toml\nCLUSTER_REGISTRY_EOF\n");
        expect(script).toContain(
            "    mkdir -p 'a.example'\n    mkdir -p 'b.example:5000'\n" +
                "    cat > 'a.example/ca.crt' <<'CLUSTER_REGISTRY_EOF'\n-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\nCLUSTER_REGISTRY_EOF\n" +
                "    cat > 'b.example:5000/hosts.toml' <<'CLUSTER_REGISTRY_EOF'\nserver = \"$NOT_EXPANDED\"\nCLUSTER_REGISTRY_EOF\n",
        );
    });

    test.each([["../etc/passwd"], ["/etc/containerd/x/hosts.toml"], ["host/../../x"], ["host/sub/dir"], ["host name/hosts.toml"], ["host/$(reboot)"]])(
        "refuses the unsafe path %s",
        (path) => {
            expect(() => renderNodeScript("o", [{ path, content: "x" }])).toThrow(/unsafe node file path/);
        },
    );

    test("refuses content that would end its heredoc early", () => {
        expect(() => renderNodeScript("o", [{ path: "h/hosts.toml", content: "a\nCLUSTER_REGISTRY_EOF\nrm -rf /\n" }])).toThrow(/contains the line/);
    });
});

describe("checksum", () => {
    test("changes when any part changes and does not let parts run together", () => {
        expect(contentChecksum(["a", "b"])).toBe(contentChecksum(["a", "b"]));
        expect(contentChecksum(["a", "b"])).not.toBe(contentChecksum(["a", "c"]));
        expect(contentChecksum(["ab", ""])).not.toBe(contentChecksum(["a", "b"]));
    });
});
