/** What the client and the verifier both need to reach the gate. */

/**
 * The global fetch behind a plain function: stored bare on an object and
 * called as its method, it would get that object as `this`, which Workers
 * reject ("Illegal invocation").
 */
export const globalFetch: typeof fetch = (input, init) => fetch(input, init);

/** `https://gate.example.com/` and `https://gate.example.com` name the same gate; paths are appended after `/`. */
export const trimTrailingSlashes = (url: string): string => url.replace(/\/+$/, "");
