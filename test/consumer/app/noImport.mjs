// A grpc-anchor target in an app that never imports grpc-anchor: grpc-js
// knows no `pass` scheme, falls back to DNS and fails every call. The
// README must explain the message this prints.
import * as grpc from "@grpc/grpc-js"
import { callPlain, PlainClient, startPlainServer } from "./plain.mjs"

const server = await startPlainServer()
const client = new PlainClient(`pass:///127.0.0.1:${server.port}#2`, grpc.credentials.createInsecure())
const result = await callPlain(client, 4)
client.close()
server.close()
console.log(JSON.stringify(result))
