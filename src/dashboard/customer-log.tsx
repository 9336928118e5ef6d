/**
 * The customer page's transaction log and downloads (customer.tsx), and the
 * debit and invoice detail pages its references link to.
 */
import type { FC } from "hono/jsx";
import { type Entry, LOG_PAGE_SIZE, LOG_SCAN_MAX_ENTRIES } from "./customer-data";
import { accountHref, enc, UnitSelect } from "./customer-parts";
import { formatAmount, Num, When } from "./layout";

/**
 * Fields of a debit or invoice the customer is not shown: `actor` names the
 * operator's API key (an internal id).
 */
export const OPERATOR_ONLY_FIELDS: readonly string[] = ["actor"];

export const RefCell: FC<{ accountId: string; e: Entry }> = ({ accountId, e }) => {
  if (e.ref === null) return <span class="muted">—</span>;
  const base = `/app/accounts/${enc(accountId)}`;
  if (e.kind === "debit") {
    return (
      <a href={`${base}/debits/${enc(e.ref)}`} data-link="debit" data-field={`entry.${e.seq}.ref`}>
        {e.ref}
      </a>
    );
  }
  if (e.kind === "invoice" || e.kind === "invoice.reversal") {
    return (
      <a href={`${base}/invoices/${enc(e.ref)}`} data-link="invoice" data-field={`entry.${e.seq}.ref`}>
        {e.ref}
      </a>
    );
  }
  return <span data-field={`entry.${e.seq}.ref`}>{e.ref}</span>;
};

export interface LogQuery {
  unit: string;
  days: number;
  kind?: string;
  logUnit?: string;
  from?: string;
  to?: string;
}

export const Transactions: FC<{
  accountId: string;
  q: LogQuery;
  units: string[];
  log: { entries: Entry[]; next: number | null; scanCut: boolean };
  startAfter: number;
  keep: Record<string, string | undefined>;
}> = ({ accountId, q, units, log, startAfter, keep }) => (
  <>
    <form method="get" action={`${accountHref(accountId)}#transactions`} class="filters" data-form="log-filter">
      <input type="hidden" name="unit" value={q.unit} />
      <input type="hidden" name="days" value={String(q.days)} />
      <div>
        <label for="kind">Kind</label>
        <select id="kind" name="kind">
          <option value="" selected={!q.kind}>
            All
          </option>
          {[
            "grant",
            "debit",
            "hold",
            "hold.captured",
            "hold.released",
            "receipt",
            "receipt.settled",
            "invoice",
            "invoice.reversal",
            "grant.expired",
            "grant.voided",
            "grant.refunded",
            "transfer.in",
            "transfer.out",
            "grant.rolled_over",
            "rollover",
          ].map((k) => (
            <option value={k} selected={k === q.kind}>
              {k}
            </option>
          ))}
        </select>
      </div>
      <UnitSelect id="log_unit" name="log_unit" units={units} selected={q.logUnit} all />
      <div>
        <label for="from">From (UTC day)</label>
        <input id="from" name="from" type="date" value={q.from ?? ""} />
      </div>
      <div>
        <label for="to">To (UTC day, included)</label>
        <input id="to" name="to" type="date" value={q.to ?? ""} />
      </div>
      <button type="submit">Filter</button>
    </form>
    {log.entries.length === 0 ? (
      <p>No transactions match.</p>
    ) : (
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">#</th>
              <th scope="col">Recorded</th>
              <th scope="col">Kind</th>
              <th scope="col" class="num">
                Amount
              </th>
              <th scope="col" class="num">
                Held change
              </th>
              <th scope="col">Unit</th>
              <th scope="col">Type</th>
              <th scope="col">Reference</th>
              <th scope="col">Reason</th>
            </tr>
          </thead>
          <tbody>
            {log.entries.map((e) => (
              <tr>
                <td>{e.seq}</td>
                <td>
                  <When field={`entry.${e.seq}.recorded_at`} value={e.recorded_at} />
                </td>
                <td data-field={`entry.${e.seq}.kind`}>{e.kind}</td>
                <td class="num">
                  <Num field={`entry.${e.seq}.amount`} value={e.amount} />
                </td>
                <td class="num">
                  <Num field={`entry.${e.seq}.held_delta`} value={e.held_delta} />
                </td>
                <td>{e.unit}</td>
                <td>{e.credit_type ?? "—"}</td>
                <td>
                  <RefCell accountId={accountId} e={e} />
                </td>
                <td>{e.reason ?? ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    )}
    <nav class="pager" aria-label="Transaction pages">
      {startAfter > 0 ? <a href={`${accountHref(accountId, keep)}#transactions`}>First page</a> : null}
      {log.next !== null ? (
        <a
          href={`${accountHref(accountId, { ...keep, after_seq: String(log.next) })}#transactions`}
          data-link="next-page"
        >
          Next page
        </a>
      ) : null}
    </nav>
    {log.scanCut ? (
      <p class="muted">{`Searched ${formatAmount(LOG_SCAN_MAX_ENTRIES)} entries for this page; the next page continues the search.`}</p>
    ) : null}
    <p class="muted">{`Oldest first, ${LOG_PAGE_SIZE} a page.`}</p>
  </>
);

export const Downloads: FC<{
  accountId: string;
  unit: string;
  units: string[];
  monthStart: string;
  todayIso: string;
}> = ({ accountId, unit, units, monthStart, todayIso }) => (
  <>
    <h2 id="downloads">Downloads</h2>
    <p>
      <a href={`/app/accounts/${enc(accountId)}/ledger.csv`} data-link="csv" download={`ledger-${accountId}.csv`}>
        The whole ledger as CSV
      </a>{" "}
      (up to 100,000 entries a file).
    </p>
    <form method="get" action={`/app/accounts/${enc(accountId)}/statement`} class="filters" data-form="statement">
      <div>
        <label for="st_from">Statement from (UTC day)</label>
        <input id="st_from" name="from" type="date" value={monthStart} required />
      </div>
      <div>
        <label for="st_to">To (UTC day, included)</label>
        <input id="st_to" name="to" type="date" value={todayIso} required />
      </div>
      <UnitSelect id="st_unit" name="unit" units={units} selected={unit} />
      <button type="submit">Download the signed statement</button>
    </form>
    <p class="muted">
      The statement is signed (ES256); check it against <a href="/.well-known/jwks.json">the published keys</a>.
    </p>
  </>
);

export interface RefDetail {
  [member: string]: unknown;
  applied?: { grant_id: string; type: string; amount: number }[];
}

export const DetailPage: FC<{ accountId: string; kind: "debit" | "invoice"; id: string; body: RefDetail }> = ({
  accountId,
  kind,
  id,
  body,
}) => (
  <>
    <p>
      <a href={accountHref(accountId)}>Back to the account</a>
    </p>
    <dl class="kv">
      {Object.entries(body)
        .filter(([, v]) => v === null || ["string", "number", "boolean"].includes(typeof v))
        .filter(([k]) => k !== "balance" && !OPERATOR_ONLY_FIELDS.includes(k))
        .map(([k, v]) => (
          <>
            <dt>{k.replace(/_/g, " ")}</dt>
            <dd>
              {typeof v === "number" && k.endsWith("_seq") ? (
                // A position in the ledger, not an amount: no thousands separators.
                <span data-field={`${kind}.${k}`} data-value={String(v)}>
                  {String(v)}
                </span>
              ) : typeof v === "number" ? (
                <Num field={`${kind}.${k}`} value={v} />
              ) : typeof v === "string" && k.endsWith("_at") ? (
                <When field={`${kind}.${k}`} value={v} />
              ) : (
                <span data-field={`${kind}.${k}`}>{v === null ? "—" : String(v)}</span>
              )}
            </dd>
          </>
        ))}
    </dl>
    {body.applied && body.applied.length > 0 ? (
      <>
        <h2>{`Credits this ${kind} drew`}</h2>
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Grant</th>
                <th scope="col">Type</th>
                <th scope="col" class="num">
                  Amount
                </th>
              </tr>
            </thead>
            <tbody>
              {body.applied.map((a) => (
                <tr>
                  <td>{a.grant_id}</td>
                  <td>{a.type}</td>
                  <td class="num">
                    <Num field={`applied.${a.grant_id}.amount`} value={a.amount} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </>
    ) : null}
    <p class="muted">{`${kind === "debit" ? "Debit" : "Invoice"} ${id}`}</p>
  </>
);
