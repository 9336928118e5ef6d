/**
 * Reads that may lag the primary by a little (the revenue, liability,
 * credits and campaign reports, and the dashboards' panels built on them) go through a D1 session: with read replication on,
 * D1 serves a session's queries from the nearest replica
 * ("first-unconstrained": the first query may go anywhere, later ones in the
 * session see at least what it saw), so a month-end close never slows the
 * primary the gate's history ships to. Without replication a session reads
 * the primary, exactly as before.
 */

/** What a report needs of D1: statements and batches, nothing that writes the schema. */
export type D1Reader = Pick<D1Database, "prepare" | "batch">;

/** A replica-friendly reader of DB for one request. */
export function replicaReader(env: { DB: D1Database }): D1Reader {
  return typeof env.DB.withSession === "function" ? env.DB.withSession("first-unconstrained") : env.DB;
}
