import { describe, expect, test } from "vitest";
import { contentChecksum } from "../../../components/render/checksum";

describe("checksum", () => {
    test("changes when any part changes and does not let parts run together", () => {
        expect(contentChecksum(["a", "b"])).toBe(contentChecksum(["a", "b"]));
        expect(contentChecksum(["a", "b"])).not.toBe(contentChecksum(["a", "c"]));
        expect(contentChecksum(["ab", ""])).not.toBe(contentChecksum(["a", "b"]));
    });
});
