/**
 * TLS: each of the N connections does its own handshake and checks the
 * server name of its own address; a user's grpc.ssl_target_name_override
 * applies to all; an untrusted server gets no call. Certificates are made
 * at test time.
 */
import * as grpc from "@grpc/grpc-js"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { STATS_KEY } from "../../src/adapters/grpc/internal/keys.js"
import { makeSink } from "../../src/adapters/grpc/internal/stats.js"
import { call, EchoClient, startEchoServer, type Echo, type EchoServer } from "../../packages/cli/src/echo/echo.js"
import { register } from "../../src/main/index.js"
import { makeCertificates } from "../support/certs.js"
import { callMany, cleanupAfterEach, eventually, tally } from "../support/grpc.js"

register()

const certs = makeCertificates()
afterAll(() => certs.cleanup())
const ca = certs.authority("test-ca")
const otherCa = certs.authority("other-ca")
const localhostCert = ca.issue("localhost", ["DNS:localhost"])
const ipCert = ca.issue("ip", ["IP:127.0.0.1"])
const untrusted = otherCa.issue("untrusted", ["IP:127.0.0.1", "DNS:localhost"])

const defer = cleanupAfterEach()

const tlsServer = async (name: string, pair: { key: Buffer; cert: Buffer }, host = "127.0.0.1"): Promise<EchoServer> => {
  const server = await startEchoServer({
    name,
    host,
    credentials: grpc.ServerCredentials.createSsl(null, [{ private_key: pair.key, cert_chain: pair.cert }])
  })
  defer(() => server.close({ force: true }))
  return server
}

const tlsClient = (target: string, options: grpc.ChannelOptions = {}) => {
  const sink = makeSink(target)
  const client = new EchoClient(target, grpc.credentials.createSsl(ca.cert), { ...options, [STATS_KEY]: sink }) as unknown as Echo
  defer(() => client.close())
  const states = () => sink.read().connections.map((c) => `${c.address}#${c.index}:${c.state}`)
  return { client, sink, states }
}

describe("TLS per connection", () => {
  it("verifies each address's own name: localhost on A's 2 connections, 127.0.0.1 on B's", async () => {
    const a = await tlsServer("a", localhostCert)
    const b = await tlsServer("b", ipCert)
    const { client, sink } = tlsClient(`pass:///localhost:${a.port}#2,127.0.0.1:${b.port}#1`)
    await eventually("3 READY connections", () => {
      client.getChannel().getConnectivityState(true)
      const c = sink.read().connections
      return c.length === 3 && c.every((x) => x.state === "READY")
    })
    const answers = await callMany(client, 90, 4)
    expect(tally(answers)).toEqual({ a: 60, b: 30 })
    expect(a.observer.connections().length).toBe(2)
    expect(b.observer.connections().length).toBe(1)
  })

  it("gives no call to a server whose certificate does not match its address or is not trusted", async () => {
    const good = await tlsServer("good", ipCert)
    const wrongName = await tlsServer("wrong-name", localhostCert) // reached as 127.0.0.1, cert says localhost
    const stranger = await tlsServer("stranger", untrusted)
    const { client, states } = tlsClient(
      `pass:///127.0.0.1:${good.port},127.0.0.1:${wrongName.port},127.0.0.1:${stranger.port}`
    )
    await eventually("the good connection READY", () => {
      client.getChannel().getConnectivityState(true)
      return states().some((s) => s.endsWith(`${good.port}#0:READY`))
    })
    const answers = await callMany(client, 60, 4)
    expect(tally(answers)).toEqual({ good: 60 })
    expect(states().filter((s) => s.endsWith(":READY"))).toEqual([`127.0.0.1:${good.port}#0:READY`])
  })

  it("applies a user's grpc.ssl_target_name_override to every connection", async () => {
    const a = await tlsServer("a", localhostCert)
    const b = await tlsServer("b", localhostCert)
    const target = `pass:///127.0.0.1:${a.port},127.0.0.1:${b.port}`
    const overridden = tlsClient(target, { "grpc.ssl_target_name_override": "localhost" })
    await eventually("2 READY connections", () => {
      overridden.client.getChannel().getConnectivityState(true)
      return overridden.states().filter((s) => s.endsWith(":READY")).length === 2
    })
    expect(tally(await callMany(overridden.client, 20, 2))).toEqual({ a: 10, b: 10 })
    // Without the override each connection checks 127.0.0.1, which these certificates do not name.
    const plain = tlsClient(target)
    const error = await call(plain.client, { deadlineMs: 3_000 }).then(
      () => undefined,
      (e: grpc.ServiceError) => e
    )
    expect(error?.code).toBe(grpc.status.UNAVAILABLE)
  })
})

describe("mutual TLS", () => {
  it("serves clients presenting a certificate from the trusted CA on every connection, and refuses others", async () => {
    const server = await startEchoServer({
      name: "m",
      credentials: grpc.ServerCredentials.createSsl(ca.cert, [{ private_key: ipCert.key, cert_chain: ipCert.cert }], true)
    })
    defer(() => server.close({ force: true }))
    const clientPair = ca.issue("client", ["DNS:client.test"], "client")
    const target = `pass:///127.0.0.1:${server.port}#3`
    const withCert = new EchoClient(target, grpc.credentials.createSsl(ca.cert, clientPair.key, clientPair.cert)) as unknown as Echo
    defer(() => withCert.close())
    await eventually("3 connections with client certificates", async () => {
      await callMany(withCert, 3, 3)
      return server.observer.connections().length === 3
    })
    expect(tally(await callMany(withCert, 30, 3))).toEqual({ m: 30 })

    const callsBefore = server.observer.totalCalls()
    const strangerPair = otherCa.issue("stranger-client", ["DNS:stranger.test"], "client")
    for (const credentials of [
      grpc.credentials.createSsl(ca.cert), // no client certificate
      grpc.credentials.createSsl(ca.cert, strangerPair.key, strangerPair.cert) // one the server does not trust
    ]) {
      const refused = new EchoClient(target, credentials, { "grpc.use_local_subchannel_pool": 1 }) as unknown as Echo
      defer(() => refused.close())
      const error = await call(refused, { deadlineMs: 3_000 }).then(
        () => undefined,
        (e: grpc.ServiceError) => e
      )
      expect(error?.code).toBe(grpc.status.UNAVAILABLE)
    }
    // Refused clients never got a call through.
    expect(server.observer.totalCalls()).toBe(callsBefore)
  })
})
