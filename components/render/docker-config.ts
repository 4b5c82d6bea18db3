/** `.dockerconfigjson`, the format of `kubernetes.io/dockerconfigjson` Secrets and of skopeo's authfile. */

/**
 * Credentials for each registry host. `auth` (base64 of user:password) is what skopeo and
 * containerd read; `username` and `password` are what kubelet reads.
 */
export function renderDockerConfigJson(hosts: readonly string[], username: string, password: string): string {
    const auth = Buffer.from(`${username}:${password}`).toString("base64");
    const auths: Record<string, { username: string; password: string; auth: string }> = {};
    for (const host of hosts) auths[host] = { username, password, auth };
    return JSON.stringify({ auths });
}
