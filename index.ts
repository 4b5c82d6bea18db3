// Reads and validates the stack's config, builds the registry, exports what users build on.
import { ClusterRegistry } from "./components/cluster-registry";
import { parseSettings, readRawConfig } from "./components/config";

const { raw, secretKeys } = readRawConfig();
// Throws before any resource is registered, naming every bad key at once.
const settings = parseSettings(raw, secretKeys);
const registry = new ClusterRegistry("registry", settings);

export const environment = settings.environment;
export const host = registry.host;
export const pushEndpoint = registry.pushEndpoint;
export const pushHelp = registry.pushHelp;
export const clusterIP = registry.clusterIP;
export const caCertPem = registry.caCertPem;
export const users = registry.users;
export const passwords = registry.passwords;
export const dockerConfigJson = registry.dockerConfigJson;
export const pullSecretName = registry.pullSecretName;
export const certsDir = registry.certsDir;
export const caches = registry.caches;
export const kindClusterConfig = registry.kindClusterConfig;
export const k3sRegistriesYaml = registry.k3sRegistriesYaml;
export const bottlerocketSettings = registry.bottlerocketSettings;
