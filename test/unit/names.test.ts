/** components/names.ts: the DNS names a registry Service answers to. */
import { describe, expect, test } from "vitest";
import { serviceDnsNames } from "../../components/names";

describe("serviceDnsNames", () => {
    // Shortest first, the fully qualified name last: push hosts and certificates take that one by position.
    test("are the four names cluster DNS gives a Service, shortest first", () => {
        expect(serviceDnsNames("registry", "tools", "corp.local")).toEqual([
            "registry",
            "registry.tools",
            "registry.tools.svc",
            "registry.tools.svc.corp.local",
        ]);
    });
});
