// @peculiar/x509 (used by the fake tls provider) needs the Reflect metadata polyfill loaded first.
import "reflect-metadata";
