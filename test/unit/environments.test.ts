/** components/environments.ts: what each environment's profile gives a stack that sets nothing else. */
import * as path from "node:path";
import { describe, expect, test } from "vitest";
import { ENVIRONMENT_NAMES, ENVIRONMENTS } from "../../components/environments";
import { parseConfig, RawConfig } from "../../components/stack-config";

const parseSettings = (raw: RawConfig) => parseConfig(raw).settings;

describe("environment profiles", () => {
    test.each([
        ["kind", "/etc/containerd/certs.d", "standard"],
        ["k3d", "/var/lib/rancher/k3s/agent/etc/containerd/certs.d", "local-path"],
        ["eks", "/etc/containerd/certs.d", "gp2"],
    ])("%s picks its certs.d path and storage class", (environment, certsDir, storageClass) => {
        const s = parseSettings({ environment });
        expect(s.certsDir).toBe(certsDir);
        expect(s.storageClass).toBe(storageClass);
    });

    test.each(ENVIRONMENT_NAMES)("%s: containerd's config lies beside its certs.d, where the agent mounts it read-only", (environment) => {
        const e = ENVIRONMENTS[environment];
        expect(path.posix.dirname(e.certsDir)).toBe(path.posix.dirname(e.containerdConfig));
    });
});
