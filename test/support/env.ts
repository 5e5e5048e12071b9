/**
 * Environment variables for the length of one body, e.g. the ETCD_* variables
 * the etcd resolver reads when a channel is opened.
 */

/**
 * Sets `vars` (a value of undefined removes the variable) while `body` runs,
 * then puts back what was there before, also when `body` throws.
 *
 * @example
 * ```ts
 * await withEnv({ ETCD_USERNAME: "svc", ETCD_PASSWORD: password, ETCD_ENDPOINTS: undefined }, () => call(client))
 * ```
 */
export const withEnv = async <A>(
  vars: Readonly<Record<string, string | undefined>>,
  body: () => A | Promise<A>
): Promise<A> => {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]))
  const apply = (values: Readonly<Record<string, string | undefined>>) => {
    for (const [k, v] of Object.entries(values)) {
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    }
  }
  apply(vars)
  try {
    return await body()
  } finally {
    apply(saved)
  }
}
