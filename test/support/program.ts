/** The program (index.ts) run once under the fake cloud, with fixed ClusterIPs so tests can name them. */
import { FakeCloud, runProgram } from "./fake-cloud";
import { ENTRY } from "./stacks";

/** ClusterIPs by Service: the hosted registry's and two caches'; every other Service gets 10.96.0.99. */
export const SERVICE_IPS: Readonly<Record<string, string>> = {
    "registry-hosted-service": "10.96.0.10",
    "registry-cache-docker-io-service": "10.96.0.20",
    "registry-cache-quay-io-service": "10.96.0.21",
};

/** A cloud that hands out SERVICE_IPS. */
export function cloudWithServiceIps(): FakeCloud {
    return new FakeCloud({ clusterIP: (name) => SERVICE_IPS[name] ?? "10.96.0.99" });
}

/** Runs the program with `config` (the secret lists held encrypted, as `--secret` would). */
export async function runWithServiceIps(config: Record<string, string>, cloud = cloudWithServiceIps()) {
    const secretKeys = ["cluster-registry:cacheCredentials", "cluster-registry:userPasswords"];
    const { outputs, secretOutputs } = await runProgram(cloud, { config, secretKeys, entry: ENTRY });
    return { cloud, outputs, secretOutputs };
}

/** The file the node agent writes at a path, looked up through its Secret's manifest. */
export function nodeFileOf(cloud: FakeCloud, path: string): string {
    const data: Record<string, string> = cloud.one("kubernetes:core/v1:Secret", "node-config-files").inputs.stringData;
    const line = data.manifest.split("\n").find((l) => l.endsWith(` ${path}`));
    if (line === undefined) throw new Error(`the node agent writes no ${path}`);
    return data[line.split(" ")[0]];
}
