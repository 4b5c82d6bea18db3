/** The registry's htpasswd file: bcrypt lines with a salt that only changes when we say so. */
import * as bcrypt from "bcryptjs";

/** bcrypt takes a 16-byte salt. */
export const BCRYPT_SALT_BYTES = 16;

/**
 * Hashes a password with a given salt. A fresh random salt on every `pulumi up` would change the
 * htpasswd Secret, and so the pod-template checksum, and restart the registry for nothing; the
 * salt instead comes from a `random.RandomBytes` resource kept in state.
 */
export function bcryptHash(password: string, saltBase64: string, cost: number): string {
    const salt = Buffer.from(saltBase64, "base64");
    if (salt.length !== BCRYPT_SALT_BYTES) {
        throw new Error(`a bcrypt salt has ${BCRYPT_SALT_BYTES} bytes, got ${salt.length}`);
    }
    if (!Number.isInteger(cost) || cost < 4 || cost > 31) throw new Error(`bcrypt cost ${cost} is outside 4-31`);
    const setting = `$2b$${String(cost).padStart(2, "0")}$${bcrypt.encodeBase64(Array.from(salt), BCRYPT_SALT_BYTES)}`;
    return bcrypt.hashSync(password, setting);
}

/** One `user:hash` line per user, in the order given. */
export function renderHtpasswd(entries: ReadonlyArray<{ user: string; hash: string }>): string {
    return entries.map(({ user, hash }) => `${user}:${hash}\n`).join("");
}
