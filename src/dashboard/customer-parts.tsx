/**
 * The parts of the customer's account page (customer.tsx): balance cards,
 * the usage chart, what expires, metered use, upcoming and awaiting grants,
 * allowances and departments. Pure rendering of what the page read.
 */
import type { FC } from "hono/jsx";
import { type Balance, CHILDREN_SHOWN, type DayUsage, USAGE_SCAN_MAX_ENTRIES } from "./customer-data";
import { ErrorNotice, formatAmount, Num, When } from "./layout";

const TYPES = ["promotional", "compensatory", "purchased"] as const;

export const enc = encodeURIComponent;
export const accountHref = (id: string, q: Record<string, string | undefined> = {}): string => {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== "") params.set(k, v);
  const s = params.toString();
  return `/app/accounts/${enc(id)}${s ? `?${s}` : ""}`;
};

/** A unit picker; `all` adds an "All" choice (the empty value) first. */
export const UnitSelect: FC<{
  id: string;
  name: string;
  units: string[];
  selected: string | undefined;
  all?: boolean;
}> = ({ id, name, units, selected, all }) => (
  <div>
    <label for={id}>Unit</label>
    <select id={id} name={name}>
      {all ? (
        <option value="" selected={!selected}>
          All
        </option>
      ) : null}
      {units.map((u) => (
        <option value={u} selected={u === selected}>
          {u}
        </option>
      ))}
    </select>
  </div>
);

export const BalanceCard: FC<{ b: Balance }> = ({ b }) => (
  <section class="card" aria-label={`Balance in ${b.unit}`}>
    <div class="muted">{b.unit} available</div>
    <div class="big">
      <Num field={`balance.${b.unit}.available`} value={b.available} />
    </div>
    <div>
      Held: <Num field={`balance.${b.unit}.held`} value={b.held} />
    </div>
    <table>
      <caption class="muted">By type (available + held)</caption>
      <tbody>
        {TYPES.map((t) => (
          <tr>
            <th scope="row">{t}</th>
            <td class="num">
              <Num field={`balance.${b.unit}.by_type.${t}`} value={b.by_type[t] ?? 0} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
    {b.rollup ? (
      <p>
        With departments: <Num field={`rollup.${b.unit}.available`} value={b.rollup.available} /> available,{" "}
        <Num field={`rollup.${b.unit}.held`} value={b.rollup.held} /> held over{" "}
        <Num field={`rollup.${b.unit}.accounts`} value={b.rollup.accounts} /> accounts.
      </p>
    ) : null}
  </section>
);

export /** An inline SVG bar chart of usage per day; the numbers are in the table beside it. */
const UsageChart: FC<{ days: DayUsage[]; unit: string }> = ({ days, unit }) => {
  const w = 600;
  const h = 160;
  const max = Math.max(1, ...days.map((d) => d.consumed));
  const bw = w / Math.max(1, days.length);
  const total = days.reduce((s, d) => s + d.consumed, 0);
  return (
    <figure>
      <svg
        class="chart"
        viewBox={`0 0 ${w} ${h + 20}`}
        role="img"
        aria-label={`Credits used per day in ${unit}, ${days[0]?.day ?? ""} to ${days.at(-1)?.day ?? ""}: ${formatAmount(total)} in all`}
      >
        <line x1="0" y1={String(h)} x2={String(w)} y2={String(h)} stroke="#4a4a4a" stroke-width="1" />
        {days.map((d, i) => {
          const bh = d.consumed > 0 ? Math.max(1, Math.round((d.consumed / max) * (h - 10))) : 0;
          return (
            <rect
              class="bar"
              x={(i * bw + bw * 0.1).toFixed(1)}
              y={String(h - bh)}
              width={(bw * 0.8).toFixed(1)}
              height={String(bh)}
            >
              <title>{`${d.day}: ${formatAmount(d.consumed)}`}</title>
            </rect>
          );
        })}
        <text x="0" y={String(h + 16)} font-size="12" fill="#1a1a1a">
          {days[0]?.day ?? ""}
        </text>
        <text x={String(w)} y={String(h + 16)} font-size="12" fill="#1a1a1a" text-anchor="end">
          {days.at(-1)?.day ?? ""}
        </text>
      </svg>
      <figcaption>
        Used in {unit} over these {days.length} days: <Num field="usage.total.consumed" value={total} /> (the largest
        day: {formatAmount(max === 1 && total === 0 ? 0 : max)}).
      </figcaption>
      <details>
        <summary>Usage per day as a table</summary>
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Day (UTC)</th>
                <th scope="col" class="num">
                  Used
                </th>
              </tr>
            </thead>
            <tbody>
              {days.map((d) => (
                <tr>
                  <td>{d.day}</td>
                  <td class="num">
                    <Num field={`usage.${d.day}.consumed`} value={d.consumed} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </details>
    </figure>
  );
};

interface Dated {
  grant_id: string;
  amount: number;
  unit: string;
}

export const ExpiringTable: FC<{ expiring: (Dated & { expires_at: string })[] }> = ({ expiring }) => (
  <>
    {expiring.length === 0 ? (
      <p>Nothing you hold has an expiry date.</p>
    ) : (
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">Expires</th>
              <th scope="col" class="num">
                Amount
              </th>
              <th scope="col">Unit</th>
              <th scope="col">Grant</th>
            </tr>
          </thead>
          <tbody>
            {expiring.map((x) => (
              <tr>
                <td>
                  <When field={`expiring.${x.grant_id}.expires_at`} value={x.expires_at} />
                </td>
                <td class="num">
                  <Num field={`expiring.${x.grant_id}.amount`} value={x.amount} />
                </td>
                <td>{x.unit}</td>
                <td>{x.grant_id}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    )}
  </>
);

export const MeterTable: FC<{
  unit: string;
  meters: { meter: string; quantity: number; amount: number }[];
  partial: boolean;
}> = ({ unit, meters, partial }) => (
  <>
    {meters.length === 0 ? (
      <p>No metered use in {unit} in this period.</p>
    ) : (
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">Meter</th>
              <th scope="col" class="num">
                Quantity
              </th>
              <th scope="col" class="num">
                Credits used
              </th>
            </tr>
          </thead>
          <tbody>
            {meters.map((m) => (
              <tr>
                <td>{m.meter}</td>
                <td class="num">
                  <Num field={`meter.${m.meter}.quantity`} value={m.quantity} />
                </td>
                <td class="num">
                  <Num field={`meter.${m.meter}.amount`} value={m.amount} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    )}
    {partial ? (
      <p class="muted">{`Counted from the first ${formatAmount(USAGE_SCAN_MAX_ENTRIES)} entries of the period only.`}</p>
    ) : null}
  </>
);

export interface Recurring {
  recurring_id: string;
  amount: number;
  unit: string;
  type: string;
  interval: string;
  status: string;
  periods_issued: number;
  next_period_at: string | null;
}

export interface Child {
  account_id: string;
  name: string | null;
}

type Read<T> = { ok: true; body: T } | { ok: false; sentence: string };

export const Upcoming: FC<{
  pending: (Dated & { effective_at: string })[];
  awaiting: (Dated & { type: string; topup?: boolean; created_at: string })[];
  recurring: Read<{ recurring_grants: Recurring[] }>;
}> = ({ pending, awaiting, recurring }) => (
  <>
    <h3>Not yet effective</h3>
    {pending.length === 0 ? (
      <p>No grants waiting for their start date.</p>
    ) : (
      <ul>
        {pending.map((p) => (
          <li>
            <Num field={`pending.${p.grant_id}.amount`} value={p.amount} /> {p.unit} from{" "}
            <When field={`pending.${p.grant_id}.effective_at`} value={p.effective_at} /> ({p.grant_id})
          </li>
        ))}
      </ul>
    )}
    <h3>Awaiting payment</h3>
    {awaiting.length === 0 ? (
      <p>No grants awaiting payment.</p>
    ) : (
      <ul>
        {awaiting.map((a) => (
          <li>
            <Num field={`awaiting.${a.grant_id}.amount`} value={a.amount} /> {a.unit} ({a.type}
            {a.topup ? ", automatic top-up" : ""}), requested{" "}
            <When field={`awaiting.${a.grant_id}.created_at`} value={a.created_at} /> ({a.grant_id})
          </li>
        ))}
      </ul>
    )}
    <h3>Recurring allowances</h3>
    {!recurring.ok ? (
      <ErrorNotice message={recurring.sentence} />
    ) : recurring.body.recurring_grants.filter((r) => r.status === "active").length === 0 ? (
      <p>No recurring allowances.</p>
    ) : (
      <ul>
        {recurring.body.recurring_grants
          .filter((r) => r.status === "active")
          .map((r) => (
            <li>
              <Num field={`recurring.${r.recurring_id}.amount`} value={r.amount} /> {r.unit} ({r.type}) every{" "}
              {r.interval}; next on{" "}
              <When field={`recurring.${r.recurring_id}.next_period_at`} value={r.next_period_at} />;{" "}
              <Num field={`recurring.${r.recurring_id}.periods_issued`} value={r.periods_issued} /> issued so far (
              {r.recurring_id})
            </li>
          ))}
      </ul>
    )}
  </>
);

export const Departments: FC<{
  unit: string;
  list: { children: Child[]; next_cursor: string | null };
  balances: (Read<Balance> | undefined)[];
}> = ({ unit, list, balances }) => (
  <>
    <h2 id="departments">Departments</h2>
    <div class="table-wrap">
      <table>
        <thead>
          <tr>
            <th scope="col">Department</th>
            <th scope="col" class="num">{`Available (${unit})`}</th>
            <th scope="col" class="num">
              Held
            </th>
          </tr>
        </thead>
        <tbody>
          {list.children.map((ch, i) => {
            const b = balances[i];
            return (
              <tr>
                <td>
                  <a href={accountHref(ch.account_id)}>{ch.name ? `${ch.name} (${ch.account_id})` : ch.account_id}</a>
                </td>
                {b?.ok ? (
                  <>
                    <td class="num">
                      <Num field={`child.${ch.account_id}.available`} value={b.body.available} />
                    </td>
                    <td class="num">
                      <Num field={`child.${ch.account_id}.held`} value={b.body.held} />
                    </td>
                  </>
                ) : (
                  <td colspan={2}>{b && !b.ok ? b.sentence : "—"}</td>
                )}
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
    {list.next_cursor ? <p class="muted">{`Only the first ${CHILDREN_SHOWN} departments are listed.`}</p> : null}
  </>
);
