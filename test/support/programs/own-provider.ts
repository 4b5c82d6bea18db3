// A program of a user's own, as pulumi-eks users write theirs: it makes a Kubernetes provider for
// a cluster it creates and adds the registry to that cluster in the same `pulumi up`.
import * as k8s from "@pulumi/kubernetes";
import { ClusterRegistry } from "../../../components";

export const OWN_PROVIDER_NAME = "my-cluster";

const provider = new k8s.Provider(OWN_PROVIDER_NAME, { kubeconfig: "{}" });
const registry = new ClusterRegistry("shared-registry", { environment: "eks", namespace: "platform-registry", caches: ["docker.io"] }, { provider });

export const host = registry.host;
