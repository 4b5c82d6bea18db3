import { describe } from "vitest";
import { isCI, missingForIntegration } from "./harness/tools";

/** `describe` that skips with one line saying what is missing, except in CI where it must run. */
export function describeIntegration(name: string, fn: () => void): void {
    const missing = missingForIntegration();
    if (missing && isCI()) throw new Error(`CI must run the integration tests, but: ${missing}`);
    if (missing) {
        console.warn(missing);
        describe.skip(name, fn);
    } else describe(name, fn);
}
