/** Reads certificates the way a TLS client does, with a maintained X.509 library. */
import * as x509 from "@peculiar/x509";

export interface CertFacts {
    subject: string;
    issuer: string;
    dnsNames: string[];
    ipAddresses: string[];
    isCa: boolean;
    extendedKeyUsages: string[];
    notBefore: Date;
    notAfter: Date;
}

export function certFacts(pem: string): CertFacts {
    const cert = new x509.X509Certificate(pem);
    const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
    const names = san ? san.names.toJSON() : [];
    const bc = cert.getExtension(x509.BasicConstraintsExtension);
    const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
    return {
        subject: cert.subject,
        issuer: cert.issuer,
        dnsNames: names.filter((n) => n.type === "dns").map((n) => n.value),
        ipAddresses: names.filter((n) => n.type === "ip").map((n) => n.value),
        isCa: bc?.ca ?? false,
        extendedKeyUsages: (eku?.usages ?? []).map(String),
        notBefore: cert.notBefore,
        notAfter: cert.notAfter,
    };
}
