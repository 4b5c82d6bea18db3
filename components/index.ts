/**
 * The library entry: everything a Pulumi program needs to add the registry to a cluster it makes
 * itself, e.g. `new ClusterRegistry("registry", { environment: "eks" }, { provider })`.
 */
export { ClusterRegistry } from "./cluster-registry";
export { ConfigError, resolveSettings } from "./resolve-settings";
export { SETTINGS, DEFAULT_REGISTRY_IMAGE } from "./settings";
export type { CacheArgs, ClusterRegistryArgs, KeyAlgorithm, MirrorFallback, RegistryUserArgs, Settings } from "./settings";
export { ENVIRONMENTS, ENVIRONMENT_NAMES } from "./environments";
export type { EnvironmentName } from "./environments";
export { UPSTREAM_PRESETS } from "./upstreams";
