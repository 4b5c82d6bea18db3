/** Names that other things depend on: a Service's DNS names, and labels every object shares. */

/** Every DNS name a registry Service answers to from inside the cluster, shortest first. */
export function serviceDnsNames(service: string, namespace: string, clusterDomain: string): string[] {
    return [service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.${clusterDomain}`];
}
