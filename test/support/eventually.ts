/**
 * The one polling wait of the test helpers (vitest-free: the benchmarks use
 * the etcd harness too). test/support/etcd.ts and test/support/grpc.ts
 * re-export it.
 */

/**
 * Polls `check` until it returns true: every `intervalMs` (default 25), for
 * at most `timeoutMs` (default 10 s); throws naming `what` when it never
 * does. Only a check started within `timeoutMs` counts, so the bound can
 * stand for "within N ms" in a test.
 *
 * @example
 * ```ts
 * await eventually("both serving", () => seen.has("a") && seen.has("b"))
 * await eventually("the record to expire", async () => (await get(key)) === "", { timeoutMs: 3_000, intervalMs: 100 })
 * ```
 */
export const eventually = async (
  what: string,
  check: () => boolean | Promise<boolean>,
  options?: { readonly timeoutMs?: number; readonly intervalMs?: number }
): Promise<void> => {
  const timeoutMs = options?.timeoutMs ?? 10_000
  const intervalMs = options?.intervalMs ?? 25
  const deadline = Date.now() + timeoutMs
  while (Date.now() <= deadline) {
    if (await check()) return
    await new Promise<void>((resolve) => setTimeout(resolve, intervalMs))
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`)
}
