/**
 * components/resolve-settings.ts: ClusterRegistryArgs resolved, each value and each combination of values
 * checked, every problem named by its key. (Stack config's own parsing is in stack-config.test.ts.)
 */
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, test } from "vitest";
import { ENVIRONMENT_NAMES } from "../../components/environments";
import { ConfigError, resolveSettings } from "../../components/resolve-settings";
import { ClusterRegistryArgs } from "../../components/settings";

/** Problems named as a stack's config names them. */
const PREFIX = "cluster-registry:";

function settingsOf(args: ClusterRegistryArgs) {
    return resolveSettings(args, PREFIX);
}

function problemsOf(args: ClusterRegistryArgs): string[] {
    try {
        settingsOf(args);
    } catch (e) {
        if (e instanceof ConfigError) return e.problems;
        throw e;
    }
    throw new Error("expected a ConfigError");
}

describe("how problems reach the user", () => {
    test("as one RunError, which Pulumi prints without a stack trace, each problem once", () => {
        let error: unknown;
        try {
            settingsOf({ port: 0, storageSize: "50" });
        } catch (e) {
            error = e;
        }
        expect(error).toBeInstanceOf(ConfigError);
        expect(pulumi.RunError.isInstance(error)).toBe(true);
        const message = (error as ConfigError).message;
        expect(message.match(/cluster-registry:port:/g)).toHaveLength(1);
        expect(message.match(/cluster-registry:storageSize:/g)).toHaveLength(1);
    });
});

describe("problems named for a library user (ClusterRegistry's arguments)", () => {
    const libraryProblems = (args: ClusterRegistryArgs) => {
        try {
            resolveSettings(args, "ClusterRegistry r: ");
        } catch (e) {
            if (e instanceof ConfigError) return e.problems;
            throw e;
        }
        throw new Error("expected a ConfigError");
    };

    test("a password typed as a user name is hidden, and the hint is pulumi.secret in its own field, not a stack key", () => {
        const problems = libraryProblems({ users: ["admin:CorrectHorseBattery"] }).join("\n");
        expect(problems).not.toContain("CorrectHorseBattery");
        expect(problems).toMatch(
            /^ClusterRegistry r: users: a value that looks like a password or token \(not shown\).*pulumi\.secret\(\.\.\.\) in its own field/,
        );
        expect(problems).not.toContain("cluster-registry:");
    });

    test("a claim with createNamespace left true names the arguments", () => {
        expect(libraryProblems({ registryVolumeClaim: "kept" })[0]).toMatch(
            /^ClusterRegistry r: registryVolumeClaim: .*ClusterRegistry r: createNamespace is true/,
        );
    });
});

describe("settings that only make sense together", () => {
    test("a namespace that every cluster already has is not created (it exists, and destroy would delete it)", () => {
        expect(problemsOf({ namespace: "kube-system" }).join("\n")).toMatch(/cluster-registry:namespace: "kube-system" cannot be created/);
        expect(settingsOf({ namespace: "kube-system", createNamespace: false }).namespace).toBe("kube-system");
    });

    test("a cache may not take the hosted registry's own host: both would want its certs.d directory", () => {
        const hosted = "registry.registry.svc.cluster.local:5000";
        expect(problemsOf({ caches: [`${hosted}=https://mirror.example.com`] }).join("\n")).toMatch(
            /cluster-registry:caches: "registry.registry.svc.cluster.local:5000" is the hosted registry's own name/,
        );
        // Its push port and its extra names are its own too.
        for (const host of ["registry.registry.svc.cluster.local:5002", "10.0.0.9:5000"]) {
            const problems = problemsOf({ extraNames: ["10.0.0.9"], caches: [`${host}=https://mirror.example.com`] }).join("\n");
            expect(problems).toContain(`"${host}" is the hosted registry's own name`);
        }
    });
});

describe("node paths are checked against what they reach on the node (issue 21)", () => {
    test.each<[string, ClusterRegistryArgs, RegExp]>([
        [
            "certsDir /etc",
            { certsDir: "/etc" },
            /cluster-registry:certsDir: "\/etc" is not valid; expected a directory of this program's own.*this one is in \/etc/,
        ],
        ["certsDir /", { certsDir: "/" }, /cluster-registry:certsDir: "\/" is not valid; expected an absolute directory path/],
        ["certsDir in /usr", { certsDir: "/usr/local/certs.d" }, /cluster-registry:certsDir: .*this one is in \/usr/],
        [
            "certsDir in /etc elsewhere",
            { certsDir: "/etc/ssl/certs.d" },
            /certsDir: .*in \/etc only containerd's \/etc\/containerd\/certs.d or \/etc\/docker\/certs.d\); this one is in \/etc/,
        ],
        ["certsDir in /lib64", { certsDir: "/lib64/x" }, /cluster-registry:certsDir: .*this one is in \/lib64/],
        ["certsDir with ..", { certsDir: "/var/lib/x/../kubelet" }, /cluster-registry:certsDir: .*without '.', '..', '\/\/'/],
        ["certsDir with //", { certsDir: "/var//lib/x" }, /cluster-registry:certsDir: .*without '.', '..', '\/\/'/],
        ["cacheHostPath /etc", { cacheHostPath: "/etc" }, /cluster-registry:cacheHostPath: "\/etc" is not valid; .*this one is in \/etc; or "" for volumes/],
        ["cacheHostPath in /etc, even certs.d", { cacheHostPath: "/etc/containerd/certs.d" }, /cluster-registry:cacheHostPath: .*this one is in \/etc/],
        ["cacheHostPath kubelet", { cacheHostPath: "/var/lib/kubelet" }, /cluster-registry:cacheHostPath: .*this one is in \/var\/lib\/kubelet/],
        ["cacheHostPath in containerd's state", { cacheHostPath: "/var/lib/containerd/caches" }, /cacheHostPath: .*this one is in \/var\/lib\/containerd/],
        ["cacheHostPath in /run", { cacheHostPath: "/run/caches" }, /cacheHostPath: .*this one is in \/run/],
        ["cacheHostPath in /proc /sys /dev /boot", { cacheHostPath: "/sys/caches" }, /cacheHostPath: .*this one is in \/sys/],
        [
            "cacheHostPath a shared parent",
            { cacheHostPath: "/var/lib" },
            /cluster-registry:cacheHostPath: "\/var\/lib" is not valid; .*this one is a shared parent/,
        ],
        ["cacheHostPath with ..", { cacheHostPath: "/var/lib/cluster-registry/../kubelet" }, /cacheHostPath: .*absolute directory path/],
    ])("%s is refused", (_, raw, message) => {
        expect(problemsOf(raw).join("\n")).toMatch(message);
    });

    test("each of the system directories is refused as certsDir and as cacheHostPath, itself and inside", () => {
        for (const root of [
            "/etc",
            "/usr",
            "/bin",
            "/sbin",
            "/lib",
            "/lib32",
            "/lib64",
            "/boot",
            "/proc",
            "/sys",
            "/dev",
            "/run",
            "/var/lib/kubelet",
            "/var/lib/containerd",
        ]) {
            for (const dir of [root, `${root}/cluster-registry`]) {
                expect(problemsOf({ certsDir: dir }).join("\n"), dir).toMatch(/certsDir: .*other software owns/);
                expect(problemsOf({ cacheHostPath: dir }).join("\n"), dir).toMatch(/cacheHostPath: .*other software owns/);
            }
        }
    });

    test("the environments' defaults, containerd's /etc/docker/certs.d and directories of our own stay valid", () => {
        for (const environment of ENVIRONMENT_NAMES) expect(() => settingsOf({ environment }), environment).not.toThrow();
        const s = settingsOf({ certsDir: "/etc/docker/certs.d", cacheHostPath: "/var/lib/cluster-registry/caches" });
        expect(s).toMatchObject({ certsDir: "/etc/docker/certs.d", cacheHostPath: "/var/lib/cluster-registry/caches" });
        expect(settingsOf({ certsDir: "/var/lib/rancher/k3s/agent/etc/containerd/certs.d", cacheHostPath: "/srv/caches" }).cacheHostPath).toBe("/srv/caches");
    });

    test.each([
        ["equal to certsDir", { certsDir: "/var/lib/cr/certs.d", cacheHostPath: "/var/lib/cr/certs.d" }, "is"],
        ["inside certsDir", { certsDir: "/var/lib/cr/certs.d", cacheHostPath: "/var/lib/cr/certs.d/caches" }, "is inside"],
        ["containing certsDir", { certsDir: "/var/lib/cr/certs.d", cacheHostPath: "/var/lib/cr" }, "contains"],
    ])("cacheHostPath %s is refused", (_, raw, where) => {
        expect(problemsOf(raw).join("\n")).toMatch(
            new RegExp(
                `cluster-registry:cacheHostPath: "${raw.cacheHostPath}" is not valid; expected a directory apart from certsDir; this one ${where} certsDir \\("/var/lib/cr/certs.d"\\)`,
            ),
        );
    });

    test("a sibling of certsDir with a common prefix is not inside it", () => {
        expect(settingsOf({ certsDir: "/var/lib/cr/certs.d", cacheHostPath: "/var/lib/cr/certs.dx" }).cacheHostPath).toBe("/var/lib/cr/certs.dx");
    });

    test("an IPv6 cache host is refused at preview, with the key and why (the node agent cannot name its directory)", () => {
        const problems = problemsOf({ caches: ["[fd00::1]:5000=https://[fd00::1]:5000"] }).join("\n");
        expect(problems).toMatch(
            /cluster-registry:caches: "\[fd00::1\]:5000=https:\/\/\[fd00::1\]:5000" is not valid; expected HOST=URL where HOST is a host name or IPv4 address .*an IPv6 host's certs.d directory is not supported on nodes/,
        );
        // The upstream itself may be IPv6: only the host containerd looks up names a directory.
        expect(settingsOf({ caches: ["mirror.example.com=https://[fd00::1]:5000"] }).caches[0].remoteUrl).toBe("https://[fd00::1]:5000");
    });
});
