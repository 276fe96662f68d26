/** An OS and CPU architecture in OCI's words (`GOOS`/`GOARCH` values), such as linux and amd64. */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

// Node's process.arch names next to Go's GOARCH names, which OCI image
// configs and indexes use. Node's ppc64 is big endian only on AIX, so on
// Linux it is ppc64le.
const GOARCH_BY_NODE_ARCH: Record<string, string> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ia32: '386',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
  mips: 'mips',
  mipsel: 'mipsle',
};

/** Returns this machine's platform: linux and the GOARCH name of `process.arch`. */
export function machinePlatform(): Platform {
  return { os: 'linux', architecture: GOARCH_BY_NODE_ARCH[process.arch] ?? process.arch };
}

/**
 * Returns whether an image for `platform` runs on `machine`. The variant
 * (`v8` for arm64, `v7` for arm) is not compared.
 * TODO: compare the variant once 32-bit arm machines are supported.
 */
export function platformMatches(platform: Platform, machine: Platform = machinePlatform()): boolean {
  return platform.os === machine.os && platform.architecture === machine.architecture;
}

/** Formats a platform as docker does: `linux/arm64`, `linux/arm/v7`. */
export function formatPlatform(platform: Platform): string {
  const base = `${platform.os}/${platform.architecture}`;
  return platform.variant ? `${base}/${platform.variant}` : base;
}
