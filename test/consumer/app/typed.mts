// A TypeScript ES module app, type-checked with strict, module nodenext and
// skipLibCheck false, then run by Node's own type stripping.
import * as grpc from "@grpc/grpc-js"
import { createChannel, register, type Target as TargetTypes } from "grpc-anchor"
import { Balancer, Rotation, Target } from "grpc-anchor/core"
import { Result } from "effect"

register()
const parsed: Result.Result<TargetTypes.Target, TargetTypes.TargetError> = Target.parse("pass:///127.0.0.1:9#0")
if (Result.isSuccess(parsed)) throw new Error("#0 must be refused")
const message: string = parsed.failure.message

const target = Target.parseUnsafe("pass:///:9080#2,:9090")
const channel: grpc.Channel = createChannel(Target.format(target), grpc.credentials.createInsecure())
channel.close()
console.log(JSON.stringify({ message, format: Target.format(target), rotation: typeof Rotation, balancer: typeof Balancer }))
