/** The Pulumi type tokens of what the program registers, by a short name the tests use. */
export const RESOURCE_TYPES = {
    ns: "kubernetes:core/v1:Namespace",
    /** The registries' namespace when keepRegistryVolume: a server-side apply the next stack takes over. */
    nsPatch: "kubernetes:core/v1:NamespacePatch",
    svc: "kubernetes:core/v1:Service",
    secret: "kubernetes:core/v1:Secret",
    cm: "kubernetes:core/v1:ConfigMap",
    pvc: "kubernetes:core/v1:PersistentVolumeClaim",
    /** The hosted registry's kept claim (keepRegistryVolume): a server-side apply the next stack takes over. */
    pvcPatch: "kubernetes:core/v1:PersistentVolumeClaimPatch",
    deploy: "kubernetes:apps/v1:Deployment",
    ds: "kubernetes:apps/v1:DaemonSet",
    saPatch: "kubernetes:core/v1:ServiceAccountPatch",
    monitor: "kubernetes:monitoring.coreos.com/v1:ServiceMonitor",
    promRule: "kubernetes:monitoring.coreos.com/v1:PrometheusRule",
    key: "tls:index/privateKey:PrivateKey",
    selfSigned: "tls:index/selfSignedCert:SelfSignedCert",
    csr: "tls:index/certRequest:CertRequest",
    signed: "tls:index/locallySignedCert:LocallySignedCert",
    password: "random:index/randomPassword:RandomPassword",
    bytes: "random:index/randomBytes:RandomBytes",
} as const;
