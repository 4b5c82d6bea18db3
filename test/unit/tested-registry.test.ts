/**
 * The integration tests and the benchmark run the distribution release the program deploys: the
 * version is read from the default image's tag (test/integration/harness/distribution.ts) and
 * scripts/test-all builds that version from the Go module proxy. These fail when a stack or a
 * default would deploy a release other than the one the tests run.
 */
import { describe, expect, test } from "vitest";
import { ENVIRONMENT_NAMES } from "../../components/environments";
import { DEFAULT_REGISTRY_IMAGE, defaultFor } from "../../components/settings";
import { DISTRIBUTION_MODULE, shippedDistributionVersion } from "../integration/harness/distribution";
import { shippedStacks, stackConfig } from "../support/stacks";

const tested = shippedDistributionVersion();

describe("the registry release the tests run", () => {
    test("is the default image's tag, in every environment", () => {
        expect(tested).toMatch(/^\d+\.\d+\.\d+$/);
        for (const env of ENVIRONMENT_NAMES) expect(shippedDistributionVersion(String(defaultFor("image", env))), env).toBe(tested);
    });

    test("is the release every shipped stack deploys", () => {
        for (const stack of shippedStacks()) {
            const image = stackConfig(stack)["cluster-registry:image"] ?? DEFAULT_REGISTRY_IMAGE;
            expect(shippedDistributionVersion(image), `Pulumi.${stack}.yaml`).toBe(tested);
        }
    });

    test("is built from the Go module of its major version", () => {
        expect(DISTRIBUTION_MODULE).toContain(`/v${tested.split(".")[0]}/`);
    });

    test("cannot be told from an image without an x.y.z tag: a moving tag or a bare digest is refused", () => {
        expect(() => shippedDistributionVersion("docker.io/library/registry:3")).toThrow(/x\.y\.z/);
        expect(() => shippedDistributionVersion(`docker.io/library/registry@sha256:${"a".repeat(64)}`)).toThrow(/x\.y\.z/);
        expect(shippedDistributionVersion(`docker.io/library/registry:3.1.1@sha256:${"a".repeat(64)}`)).toBe("3.1.1");
    });
});
