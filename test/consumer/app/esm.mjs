// An ES module app: import by name, a pass:/// target with 2 connections.
import * as grpc from "@grpc/grpc-js"
import { register, Target } from "grpc-anchor"
import { callMany, EchoClient, startServer } from "./service.mjs"

register()
const server = await startServer("esm")
const target = `pass:///${server.address}#2`
const client = new EchoClient(target, grpc.credentials.createInsecure())
const answers = await callMany(client, 40)
const connections = server.connections()
client.close()
await server.close()
console.log(JSON.stringify({ format: Target.format(Target.parseUnsafe(target)), answers, connections }))
