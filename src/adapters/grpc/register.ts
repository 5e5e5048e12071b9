/**
 * One idempotent `register()` that installs grpc-anchor's resolvers and
 * policy into the app's own @grpc/grpc-js.
 *
 * @since 0.1.0
 */
import * as AnchorRoundRobin from "./AnchorRoundRobin.js"
import * as EtcdResolver from "./EtcdResolver.js"
import * as PassResolver from "./PassResolver.js"

const setups: ReadonlyArray<() => void> = [AnchorRoundRobin.setup, PassResolver.setup, EtcdResolver.setup]
let registered = false

/**
 * Registers the `pass` and `etcd` resolvers and the `anchor_round_robin` policy.
 * Calling it again does nothing.
 *
 * @category registration
 * @since 0.1.0
 */
export const registerAll = (): void => {
  if (registered) return
  registered = true
  for (const setup of setups) setup()
}
