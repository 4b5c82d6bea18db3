import * as bcrypt from "bcryptjs";
import { describe, expect, test } from "vitest";
import { bcryptHash, renderHtpasswd } from "../../../components/render/htpasswd";

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
