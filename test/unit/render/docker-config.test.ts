import { describe, expect, test } from "vitest";
import { renderDockerConfigJson } from "../../../components/render/docker-config";

describe("docker config json", () => {
    test("carries username, password and auth for each host", () => {
        expect(renderDockerConfigJson(["registry.registry.svc.cluster.local:5000", "localhost:5000"], "admin", "s3cret")).toBe(
            '{"auths":{"registry.registry.svc.cluster.local:5000":{"username":"admin","password":"s3cret","auth":"YWRtaW46czNjcmV0"},' +
                '"localhost:5000":{"username":"admin","password":"s3cret","auth":"YWRtaW46czNjcmV0"}}}',
        );
    });
});
