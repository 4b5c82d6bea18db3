/** The private CA and the server certificates it signs for each registry. */
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";

export type KeyAlgorithm = "ECDSA" | "RSA";

/** Key parameters per algorithm: P-256 and 2048-bit RSA are what every Go and OpenSSL client takes. */
const KEY_PARAMETERS: Record<KeyAlgorithm, { ecdsaCurve?: string; rsaBits?: number }> = {
    ECDSA: { ecdsaCurve: "P256" },
    RSA: { rsaBits: 2048 },
};

/**
 * The CA is re-issued at most this long (a month) before it expires, on an ordinary `pulumi up`; at
 * most half its validity, so a short-lived CA is not renewed at every run.
 */
export const CA_EARLY_RENEWAL_HOURS = 720;

// Every value below is given: the defaults are the settings' (SETTINGS, applied by ClusterRegistry).
export interface CertificateAuthorityArgs {
    /** Subject common name of the CA. */
    commonName: string;
    /** Key algorithm of the CA key. */
    keyAlgorithm: KeyAlgorithm;
    /** Validity of the CA certificate in hours. */
    validityHours: number;
}

/** A self-signed CA that may sign certificates and CRLs and nothing else. */
export class CertificateAuthority extends pulumi.ComponentResource {
    /** The CA certificate, PEM: what nodes and clients trust. */
    public readonly certPem: pulumi.Output<string>;
    /** The CA key, PEM (secret). */
    public readonly privateKeyPem: pulumi.Output<string>;
    /** Key algorithm, for the certificates it signs. */
    public readonly keyAlgorithm: KeyAlgorithm;
    /** When the CA certificate expires (RFC 3339, the provider's `validityEndTime`). */
    public readonly expiresAt: pulumi.Output<string>;

    constructor(name: string, args: CertificateAuthorityArgs, opts?: pulumi.ComponentResourceOptions) {
        super("cluster-registry:index:CertificateAuthority", name, {}, opts);
        const { commonName, validityHours } = args;
        this.keyAlgorithm = args.keyAlgorithm;

        const key = new tls.PrivateKey(`${name}-key`, { algorithm: this.keyAlgorithm, ...KEY_PARAMETERS[this.keyAlgorithm] }, { parent: this });
        const cert = new tls.SelfSignedCert(
            `${name}-cert`,
            {
                privateKeyPem: key.privateKeyPem,
                subject: { commonName, organization: "cluster-registry" },
                isCaCertificate: true,
                validityPeriodHours: validityHours,
                earlyRenewalHours: Math.min(CA_EARLY_RENEWAL_HOURS, Math.floor(validityHours / 2)),
                allowedUses: ["cert_signing", "crl_signing"],
                setSubjectKeyId: true,
            },
            { parent: this },
        );

        this.certPem = cert.certPem;
        this.privateKeyPem = pulumi.secret(key.privateKeyPem);
        this.expiresAt = cert.validityEndTime;
        this.registerOutputs({ certPem: this.certPem, expiresAt: this.expiresAt });
    }
}

export interface ServerCertificateArgs {
    /** The CA that signs it. */
    ca: CertificateAuthority;
    /** DNS SANs; the first is also the subject common name. */
    dnsNames: pulumi.Input<pulumi.Input<string>[]>;
    /** IP SANs (the Service's ClusterIP among them). */
    ipAddresses: pulumi.Input<pulumi.Input<string>[]>;
    /** Validity in hours. */
    validityHours: number;
    /** Hours before expiry at which `pulumi up` re-issues it. */
    earlyRenewalHours: number;
}

/** A TLS server certificate signed by the CA, with a SAN for every name the server is reached by. */
export class ServerCertificate extends pulumi.ComponentResource {
    /** Certificate PEM. */
    public readonly certPem: pulumi.Output<string>;
    /** Private key PEM (secret). */
    public readonly privateKeyPem: pulumi.Output<string>;
    /** When it expires (RFC 3339, the provider's `validityEndTime`); re-issued by a `pulumi up` inside `earlyRenewalHours` of it. */
    public readonly expiresAt: pulumi.Output<string>;

    constructor(name: string, args: ServerCertificateArgs, opts?: pulumi.ComponentResourceOptions) {
        super("cluster-registry:index:ServerCertificate", name, {}, opts);
        const { validityHours, earlyRenewalHours } = args;
        const algorithm = args.ca.keyAlgorithm;

        const key = new tls.PrivateKey(`${name}-key`, { algorithm, ...KEY_PARAMETERS[algorithm] }, { parent: this });
        const csr = new tls.CertRequest(
            `${name}-csr`,
            {
                privateKeyPem: key.privateKeyPem,
                subject: { commonName: pulumi.output(args.dnsNames).apply((names) => names[0]), organization: "cluster-registry" },
                dnsNames: args.dnsNames,
                ipAddresses: args.ipAddresses,
            },
            { parent: this },
        );
        const cert = new tls.LocallySignedCert(
            `${name}-cert`,
            {
                certRequestPem: csr.certRequestPem,
                caPrivateKeyPem: args.ca.privateKeyPem,
                caCertPem: args.ca.certPem,
                validityPeriodHours: validityHours,
                earlyRenewalHours,
                allowedUses: ["digital_signature", "key_encipherment", "server_auth"],
            },
            { parent: this },
        );

        this.certPem = cert.certPem;
        this.privateKeyPem = pulumi.secret(key.privateKeyPem);
        this.expiresAt = cert.validityEndTime;
        this.registerOutputs({ certPem: this.certPem, expiresAt: this.expiresAt });
    }
}
