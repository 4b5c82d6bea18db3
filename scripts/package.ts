// Builds the component library as an npm package and packs it.
// Usage: npm run package [-- OUT_DIR]   (default dist/; prints the tarball's path)
//
// The repository's own package.json stays the stack project's: the Pulumi CLI runs what its `main`
// names (index.ts). The package is built beside it, in OUT_DIR/package/: components/ compiled to
// JavaScript with .d.ts declarations, every non-TypeScript file under components/ (the node agent's
// shell files, read from __dirname at run time) copied as it is, and a package.json whose entry is
// the library (components/index.ts), never the stack program.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

const ROOT = path.resolve(__dirname, "..");
const SOURCES = path.join(ROOT, "components");
/** Supplied by the consumer's program: one copy of each in a program, or resources and providers split. */
export const PEER_DEPENDENCIES = ["@pulumi/pulumi", "@pulumi/kubernetes"];

interface RootManifest {
    name: string;
    version: string;
    description: string;
    engines: Record<string, string>;
    dependencies: Record<string, string>;
}

/** Every file under `dir` that tsc does not build, relative to it: a walk, so a new shell file ships too. */
export function assetFiles(dir: string): string[] {
    return (fs.readdirSync(dir, { recursive: true, withFileTypes: true }) as fs.Dirent[])
        .filter((e) => e.isFile() && !e.name.endsWith(".ts"))
        .map((e) => path.relative(dir, path.join(e.parentPath ?? e.path, e.name)))
        .sort();
}

/** The package's manifest, derived from the repository's: same name, version and pins. */
export function packageManifest(root: RootManifest): Record<string, unknown> {
    const dependencies: Record<string, string> = {};
    const peerDependencies: Record<string, string> = {};
    for (const [name, version] of Object.entries(root.dependencies)) {
        // The repository pins exact versions; a consumer's own copy of a peer satisfies any later minor.
        if (PEER_DEPENDENCIES.includes(name)) peerDependencies[name] = `^${version}`;
        else dependencies[name] = version;
    }
    return {
        name: root.name,
        version: root.version,
        description: root.description,
        engines: root.engines,
        main: "index.js",
        types: "index.d.ts",
        // Only the entry: deep imports (the stack's config parser, internals) are not part of the API.
        exports: { ".": { types: "./index.d.ts", default: "./index.js" }, "./package.json": "./package.json" },
        dependencies,
        peerDependencies,
    };
}

/** Builds OUT/package/ and packs it into OUT/; returns the tarball's absolute path. */
export function buildPackage(out: string): string {
    const pkgDir = path.join(out, "package");
    fs.rmSync(pkgDir, { recursive: true, force: true });
    fs.mkdirSync(pkgDir, { recursive: true });
    const tsc = path.join(ROOT, "node_modules", ".bin", "tsc");
    execFileSync(tsc, ["-p", path.join(ROOT, "tsconfig.lib.json"), "--outDir", pkgDir], { stdio: "inherit" });
    for (const rel of assetFiles(SOURCES)) {
        fs.mkdirSync(path.dirname(path.join(pkgDir, rel)), { recursive: true });
        fs.copyFileSync(path.join(SOURCES, rel), path.join(pkgDir, rel));
    }
    const root = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as RootManifest;
    fs.writeFileSync(path.join(pkgDir, "package.json"), `${JSON.stringify(packageManifest(root), null, 4)}\n`);
    for (const doc of ["README.md", "CHANGELOG.md"]) fs.copyFileSync(path.join(ROOT, doc), path.join(pkgDir, doc));
    const packed = execFileSync("npm", ["pack", "--json", "--pack-destination", out], { cwd: pkgDir, encoding: "utf8" });
    const [{ filename }] = JSON.parse(packed) as Array<{ filename: string }>;
    return path.join(out, filename);
}

if (require.main === module) {
    console.log(buildPackage(path.resolve(process.argv[2] ?? path.join(ROOT, "dist"))));
}
