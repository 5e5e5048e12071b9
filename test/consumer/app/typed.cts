// A TypeScript CommonJS module: `import x = require(...)` of both entry points.
import grpcAnchor = require("grpc-anchor")
import core = require("grpc-anchor/core")

const target: string = core.Target.format(core.Target.parseUnsafe("pass:///:9080#2"))
grpcAnchor.register()
console.log(JSON.stringify({ target }))
