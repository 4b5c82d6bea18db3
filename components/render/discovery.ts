/** KEP-1755 discovery: where tools such as Tilt and Skaffold learn which registry to push to. */
import * as YAML from "yaml";

/** KEP-1755: the `localRegistryHosting.v1` value Tilt, Skaffold and others read from kube-public. */
export function renderLocalRegistryHosting(input: { host: string; hostFromContainerRuntime: string; hostFromClusterNetwork: string; help: string }): string {
    return YAML.stringify({
        host: input.host,
        hostFromContainerRuntime: input.hostFromContainerRuntime,
        hostFromClusterNetwork: input.hostFromClusterNetwork,
        help: input.help,
    });
}
