/**
 * A reply's JSON body as tests and benchmarks read it: whatever the route answered, indexed freely, since the
 * assertions that follow check its shape. The one place the linter's no-explicit-any is waived for it.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see above: typing every route's answer here would only restate the assertions
export type JsonBody = any;
