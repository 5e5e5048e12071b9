/**
 * The clients the benchmarks compare, each over the same backend ports:
 * plain grpc-js round_robin (one connection per address), grpc-anchor, and a
 * naive pool of N round_robin clients with distinct channel options rotated
 * by the caller. Every variant gets its own subchannel pool so variants
 * never share connections.
 */
import * as grpc from "@grpc/grpc-js"
import { EchoClient, type Echo } from "../../packages/cli/src/echo/echo.js"

export interface Variant {
  readonly name: string
  readonly make: () => { readonly pick: () => Echo; readonly close: () => void }
}

const insecure = grpc.credentials.createInsecure()
const roundRobinConfig = JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] })
const ipv4 = (ports: ReadonlyArray<number>) => `ipv4:${ports.map((p) => `127.0.0.1:${p}`).join(",")}`

const single = (name: string, target: string, options: grpc.ChannelOptions): Variant => ({
  name,
  make: () => {
    const client = new EchoClient(target, insecure, { ...options, "grpc.use_local_subchannel_pool": 1 }) as unknown as Echo
    return { pick: () => client, close: () => client.close() }
  }
})

export const roundRobin = (ports: ReadonlyArray<number>): Variant =>
  single("grpc-js round_robin", ipv4(ports), { "grpc.service_config": roundRobinConfig })

export const anchored = (ports: ReadonlyArray<number>, count: number): Variant =>
  single(`grpc-anchor #${count}`, `pass:///${ports.map((p) => `127.0.0.1:${p}#${count}`).join(",")}`, {})

export const naivePool = (ports: ReadonlyArray<number>, count: number): Variant => ({
  name: `naive pool of ${count} clients`,
  make: () => {
    const clients = Array.from({ length: count }, (_, i) =>
      new EchoClient(ipv4(ports), insecure, {
        "grpc.service_config": roundRobinConfig,
        "grpc.use_local_subchannel_pool": 1,
        // A distinct option per client, so each gets its own connections.
        "naive_pool.index": i
      }) as unknown as Echo
    )
    let next = 0
    return { pick: () => clients[next++ % clients.length]!, close: () => clients.forEach((c) => c.close()) }
  }
})
