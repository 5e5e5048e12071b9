// For the README's quick starts as the consumer test runs them: the client
// class their `EchoClient` and `BillingClient` stand for, on the echo
// service of the test's servers (packages/cli/src/echo/echo.ts).
import * as grpc from "@grpc/grpc-js"

const identity = (buffer) => buffer
export const EchoClient = grpc.makeGenericClientConstructor(
  {
    echo: {
      path: "/grpc_anchor.demo.Echo/Echo",
      requestStream: false,
      responseStream: false,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity
    }
  },
  "Echo"
)

/** Makes `count` calls, 6 at a time (waiting for the channel to be ready); how many each server answered. */
export const callMany = async (client, count) => {
  const answers = {}
  for (let i = 0; i < count; i += 6) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(6, count - i) }, () =>
        new Promise((resolve, reject) =>
          client.echo(Buffer.alloc(0), new grpc.Metadata({ waitForReady: true }), { deadline: Date.now() + 15_000 }, (error, reply) =>
            error ? reject(error) : resolve(reply.toString())
          )
        )
      )
    )
    for (const name of batch) answers[name] = (answers[name] ?? 0) + 1
  }
  return answers
}
