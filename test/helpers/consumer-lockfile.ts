// Writes the package-lock.json of a fresh consumer project out of nexure's own lockfile, so that
// `npm ci --offline` can install it with no registry at all: every package it lists has the same
// version and integrity as in nexure's lockfile, so its tarball is in the npm cache that
// `npm ci` filled for nexure itself. The tree is the one npm would build: each dependency is
// found the way Node finds it (the nearest node_modules up the path), and the consumer's own
// `fastify` is another release than the repository's (the aliased dev dependency
// `fastify-5-older`), placed at node_modules/fastify with its own nested dependencies.
// Entries get a `resolved` tarball URL on the configured registry where nexure's lockfile has
// none (npm's omit-lockfile-registry-resolved): without it npm would look the version up in the
// package's registry document, which an offline cache need not hold in the form npm asks for.
// nexure comes from its packed tarball, with the dependencies its packed package.json declares:
// npm ci re-checks every edge against that tree, so a dependency nexure declares that the tree
// cannot satisfy offline (say, fastify back in `dependencies` at a range the consumer's fastify
// is outside of) fails the install instead of passing quietly.

export interface LockEntry {
  name?: string
  version?: string
  resolved?: string
  integrity?: string
  dependencies?: Record<string, string>
  optionalDependencies?: Record<string, string>
  peerDependencies?: Record<string, string>
  peerDependenciesMeta?: Record<string, { optional?: boolean }>
  dev?: boolean
  optional?: boolean
  devOptional?: boolean
  peer?: boolean
  [key: string]: unknown
}

export interface Lockfile {
  name: string
  version: string
  lockfileVersion: number
  requires: boolean
  packages: Record<string, LockEntry>
}

export interface PackedManifest {
  name: string
  version: string
  license?: string
  engines?: Record<string, string>
  dependencies?: Record<string, string>
  peerDependencies?: Record<string, string>
  peerDependenciesMeta?: Record<string, { optional?: boolean }>
}

export interface ConsumerLockOptions {
  /** The consumer's name in its package.json. */
  name: string
  /** nexure's tarball, relative to the consumer project, with its npm integrity. */
  tarball: { file: string, integrity: string, manifest: PackedManifest }
  /** The consumer's other dependencies: name → path of the package in nexure's lockfile. */
  dependencies: Record<string, string>
  /** The registry tarballs come from (`npm config get registry`). */
  registry: string
}

/** The path in `packages` where Node, starting at `from`, finds `name`; undefined if nowhere. */
export function resolveInLock (packages: Record<string, LockEntry>, from: string, name: string): string | undefined {
  let base = from
  for (;;) {
    const candidate = `${base === '' ? '' : `${base}/`}node_modules/${name}`
    if (packages[candidate] !== undefined) return candidate
    if (base === '') return undefined
    const at = base.lastIndexOf('node_modules/')
    base = at <= 0 ? '' : base.slice(0, at - 1)
  }
}

function edges (entry: LockEntry): Array<[string, boolean]> {
  const optionalPeers = entry.peerDependenciesMeta ?? {}
  return [
    ...Object.keys(entry.dependencies ?? {}).map((name): [string, boolean] => [name, false]),
    ...Object.keys(entry.optionalDependencies ?? {}).map((name): [string, boolean] => [name, true]),
    ...Object.keys(entry.peerDependencies ?? {}).map((name): [string, boolean] => [name, optionalPeers[name]?.optional === true])
  ]
}

/** The name a package is published under (an aliased entry carries it in `name`). */
function packageName (repoPath: string, entry: LockEntry): string {
  if (entry.name !== undefined) return entry.name
  const at = repoPath.lastIndexOf('node_modules/')
  return repoPath.slice(at + 'node_modules/'.length)
}

function cleaned (repoPath: string, entry: LockEntry, registry: string): LockEntry {
  // The consumer depends on all of it at run time: nexure's dev/peer flags do not apply.
  const { name: _alias, dev: _dev, devOptional: _devOptional, peer: _peer, optional: _optional, ...rest } = entry
  if (rest.resolved === undefined && rest.version !== undefined) {
    const name = packageName(repoPath, entry)
    const base = name.slice(name.lastIndexOf('/') + 1)
    rest.resolved = `${registry.replace(/\/?$/, '/')}${name}/-/${base}-${rest.version}.tgz`
  }
  return rest
}

export function consumerLockfile (repo: Lockfile, options: ConsumerLockOptions): Lockfile {
  const { tarball } = options
  const nexure = tarball.manifest
  const rootDependencies: Record<string, string> = { [nexure.name]: `file:${tarball.file}` }
  const packages: Record<string, LockEntry> = {}
  // The consumer's path of each package taken from nexure's lockfile.
  const placed = new Map<string, string>()
  const queue: Array<[repoPath: string, entry: LockEntry]> = []

  const place = (repoPath: string, consumerPath: string): void => {
    const known = placed.get(repoPath)
    if (known !== undefined) return
    const taken = packages[consumerPath]
    if (taken !== undefined) throw new Error(`${consumerPath} would hold both ${String(taken.version)} and ${repoPath}`)
    const entry = repo.packages[repoPath]
    if (entry === undefined) throw new Error(`${repoPath} is not in nexure's package-lock.json: run npm ci`)
    placed.set(repoPath, consumerPath)
    packages[consumerPath] = cleaned(repoPath, entry, options.registry)
    queue.push([repoPath, entry])
  }

  // A package's own nested node_modules move with it.
  const moves: Array<[from: string, to: string]> = []
  const consumerPathOf = (repoPath: string): string => {
    for (const [from, to] of moves) {
      if (repoPath === from || repoPath.startsWith(`${from}/`)) return to + repoPath.slice(from.length)
    }
    return repoPath
  }

  for (const [name, repoPath] of Object.entries(options.dependencies)) {
    const entry = repo.packages[repoPath]
    if (entry?.version === undefined) throw new Error(`${repoPath} is not in nexure's package-lock.json: run npm ci`)
    rootDependencies[name] = entry.version
    const consumerPath = `node_modules/${name}`
    if (repoPath !== consumerPath) moves.push([repoPath, consumerPath])
    place(repoPath, consumerPath)
  }

  // nexure itself: the packed manifest's dependencies, found from the repository's root (where
  // nexure's own node_modules are), and its peers, which the consumer provides.
  packages[`node_modules/${nexure.name}`] = {
    version: nexure.version,
    resolved: `file:${tarball.file}`,
    integrity: tarball.integrity,
    license: nexure.license,
    dependencies: nexure.dependencies,
    peerDependencies: nexure.peerDependencies,
    // Optional peers (the AWS SDK for s3Storage) the consumer does not install.
    peerDependenciesMeta: nexure.peerDependenciesMeta,
    engines: nexure.engines
  }
  for (const name of Object.keys(nexure.dependencies ?? {})) {
    if (name in options.dependencies) continue // the consumer's copy: npm ci checks its range
    const found = resolveInLock(repo.packages, '', name)
    if (found === undefined) throw new Error(`nexure depends on ${name}, which is not in its package-lock.json`)
    place(found, consumerPathOf(found))
  }

  while (queue.length > 0) {
    const [repoPath, entry] = queue.shift()!
    for (const [name, optional] of edges(entry)) {
      if (name in options.dependencies) continue
      const found = resolveInLock(repo.packages, repoPath, name)
      if (found === undefined) {
        if (optional) continue
        throw new Error(`${repoPath} needs ${name}, which is not in nexure's package-lock.json`)
      }
      place(found, consumerPathOf(found))
    }
  }

  return {
    name: options.name,
    version: '1.0.0',
    lockfileVersion: 3,
    requires: true,
    packages: { '': { name: options.name, version: '1.0.0', dependencies: rootDependencies }, ...packages }
  }
}
