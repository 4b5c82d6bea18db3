// The Pulumi program: the stack's config as ClusterRegistry's args, one ClusterRegistry, its outputs.
import { ClusterRegistry } from "./components";
import { DECLARED_SECRET_KEYS, parseConfig, readRawConfig } from "./components/stack-config";

// Throws before any resource is registered, naming every bad key at once.
const { args, settings } = parseConfig(readRawConfig(), DECLARED_SECRET_KEYS);
const registry = new ClusterRegistry("registry", args);

export const environment = settings.environment;
export const host = registry.host;
export const pushEndpoint = registry.pushEndpoint;
export const pushHost = registry.pushHost;
export const pushHelp = registry.pushHelp;
export const clusterIP = registry.clusterIP;
export const caCertPem = registry.caCertPem;
export const users = registry.users;
export const passwords = registry.passwords;
export const dockerConfigJson = registry.dockerConfigJson;
export const pushDockerConfigJson = registry.pushDockerConfigJson;
export const pullSecretName = registry.pullSecretName;
export const certsDir = registry.certsDir;
export const caches = registry.caches;
export const kindClusterConfig = registry.kindClusterConfig;
export const k3sRegistriesYaml = registry.k3sRegistriesYaml;
export const bottlerocketSettings = registry.bottlerocketSettings;
export const certificateExpiry = registry.certificateExpiry;
