/**
 * scripts/up pins the kube context per stack (issue 20, part 5): run against stand-ins for pulumi
 * and kubectl that record every call, with no terminal on stdin (as in CI and other scripts).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { ROOT } from "../../support/stacks";

const SCRIPT = path.join(ROOT, "scripts/up");
// The stack config is the file `pinned`; `up` records its arguments and the context it would use.
const PULUMI = `#!/usr/bin/env bash
echo "pulumi $*" >>"$FAKE/calls"
case "$1 $2" in
"stack select") ;;
"config get") [ -f "$FAKE/pinned" ] && cat "$FAKE/pinned" || exit 1 ;;
"config set") printf '%s\\n' "$4" >"$FAKE/pinned" ;;
"up --stack") shift && echo "UP $* -> $(cat "$FAKE/pinned")" ;;
*) exit 1 ;;
esac
`;
const KUBECTL = `#!/usr/bin/env bash
echo "kubectl $*" >>"$FAKE/calls"
case "$*" in
"config current-context") cat "$FAKE/current" ;;
"config get-contexts -o name") printf 'kind-kind\\nprod-eks\\n' ;;
*) exit 1 ;;
esac
`;

describe("./scripts/up and the kube context", () => {
    let fake = "";
    beforeEach(() => {
        fake = fs.mkdtempSync(path.join(os.tmpdir(), "up-"));
        fs.writeFileSync(path.join(fake, "pulumi"), PULUMI, { mode: 0o755 });
        fs.writeFileSync(path.join(fake, "kubectl"), KUBECTL, { mode: 0o755 });
        fs.writeFileSync(path.join(fake, "current"), "prod-eks\n");
    });
    afterEach(() => fs.rmSync(fake, { recursive: true, force: true }));

    const up = (args: string[], env: Record<string, string> = {}) => {
        const run = spawnSync(SCRIPT, args, {
            env: {
                ...process.env,
                ...env,
                FAKE: fake,
                PATH: `${fake}:${process.env.PATH}`,
                PULUMI_BACKEND_URL: "file:///nowhere",
                CLUSTER_REGISTRY_CONTEXT: env.CLUSTER_REGISTRY_CONTEXT ?? "",
            },
            stdio: ["pipe", "pipe", "pipe"],
            encoding: "utf8",
        });
        const calls = fs.existsSync(path.join(fake, "calls")) ? fs.readFileSync(path.join(fake, "calls"), "utf8") : "";
        return { ...run, calls, ups: calls.split("\n").filter((l) => l.startsWith("pulumi up")) };
    };
    const pin = (context: string) => fs.writeFileSync(path.join(fake, "pinned"), `${context}\n`);

    test("a first up with no context named refuses to pin whatever is current, and deploys nothing", () => {
        const run = up(["dev"]);
        expect(run.status).toBe(1);
        expect(run.stderr).toContain("stack dev has no pinned kube context: pass --context NAME (the current one is prod-eks)");
        expect(run.ups).toEqual([]);
        expect(run.calls).not.toContain("config set");
    });

    test("a first up with --context pins it in the stack config, then runs pulumi up with the other flags", () => {
        const run = up(["dev", "--context", "kind-kind", "--yes"]);
        expect(run.status, run.stderr).toBe(0);
        expect(run.calls).toContain("pulumi config set kubernetes:context kind-kind --stack dev");
        expect(run.stdout).toContain("UP --stack dev --yes -> kind-kind");
    });

    test("CLUSTER_REGISTRY_CONTEXT names it as --context does; a context the kubeconfig lacks is refused", () => {
        expect(up(["k3d"], { CLUSTER_REGISTRY_CONTEXT: "kind-kind" }).stdout).toContain("UP --stack k3d -> kind-kind");
        for (const f of ["pinned", "calls"]) fs.rmSync(path.join(fake, f));
        const run = up(["dev", "--context", "kind-typo"]);
        expect(run.status).toBe(1);
        expect(run.stderr).toContain("kube context kind-typo is not in your kubeconfig");
        expect(run.ups).toEqual([]);
    });

    test("a pinned stack goes to its context when another one is current, and says so", () => {
        pin("kind-kind");
        const run = up([]);
        expect(run.status, run.stderr).toBe(0);
        expect(run.stdout).toContain("stack dev deploys to its pinned kube context kind-kind (the current context, prod-eks, is not used)");
        expect(run.stdout).toContain("UP --stack dev -> kind-kind");
        expect(run.calls).not.toContain("config set");
    });

    test("a pinned stack refuses a different --context instead of following it", () => {
        pin("kind-kind");
        const run = up(["dev", "--context", "prod-eks"]);
        expect(run.status).toBe(1);
        expect(run.stderr).toContain("stack dev is pinned to kube context kind-kind, not prod-eks");
        expect(run.stderr).toContain("pulumi config set kubernetes:context prod-eks --stack dev");
        expect(run.ups).toEqual([]);
    });
});
