// The local js-ipfs node of the tests and the demo: ipfs-core with the Kubo-compatible RPC API and the
// gateway, and nothing else. The `ipfs` CLI package would also pull optional WebRTC transports that fetch
// binaries from GitHub at install; an offline loopback node needs none of them.
//   node -r toolchain/node-polyfills.cjs toolchain/ipfs-node.mjs init     an empty repo at $IPFS_PATH
//   node -r toolchain/node-polyfills.cjs toolchain/ipfs-node.mjs daemon   serve it, offline, until SIGTERM
import { create } from 'ipfs-core'
import { HttpApi } from 'ipfs-http-server'
import { HttpGateway } from 'ipfs-http-gateway'

const repo = process.env.IPFS_PATH
const command = process.argv[2]
if (!repo || !['init', 'daemon'].includes(command)) {
  console.error('usage: IPFS_PATH=<repo> node toolchain/ipfs-node.mjs init|daemon')
  process.exit(2)
}

if (command === 'init') {
  const ipfs = await create({ repo, init: { emptyRepo: true }, start: false, offline: true, silent: true })
  await ipfs.stop()
  console.log(`initialised ${repo}`)
} else {
  const ipfs = await create({ repo, init: false, start: true, offline: true, preload: { enabled: false }, silent: true })
  const api = new HttpApi(ipfs)
  await api.start()
  const gateway = new HttpGateway(ipfs)
  await gateway.start()
  const config = await ipfs.config.getAll()
  console.log(`API ${config.Addresses.API}, gateway ${config.Addresses.Gateway}`)
  const stop = async () => {
    await Promise.all([api.stop(), gateway.stop()])
    await ipfs.stop()
    process.exit(0)
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}
