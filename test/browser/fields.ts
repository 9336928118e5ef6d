/**
 * What each `data-field` on a page must read, worked out from the API's own
 * answers (never from the page): `expected(field, facts)` gives the raw value
 * the element's `data-value` must hold (the API's value as served) and the
 * text it must show (`YYYY-MM-DD HH:MM UTC` for a date, `1,234` for an
 * amount, the string itself otherwise), or undefined when the name is one
 * this suite does not know, so that a new field is never silently unchecked.
 */
import type { FieldOnPage } from "./pages";
import { expectedAmount, expectedDate } from "./pages";

type Json = Record<string, any>;

const DATE_MEMBERS = new Set([
  "expires_at",
  "effective_at",
  "created_at",
  "recorded_at",
  "voided_at",
  "closed_at",
  "next_period_at",
  "started_at",
  "at",
]);

export interface Expected {
  /** The API's value as served ("" for null). */
  raw: string;
  /** The text shown. */
  text: string;
}

/** How the dashboard shows one member of an API object. */
export function shown(member: string, value: unknown): Expected {
  const raw = value === null || value === undefined ? "" : String(value);
  if (DATE_MEMBERS.has(member)) return { raw, text: expectedDate(value as string | null) };
  if (typeof value === "number" || value === null || value === undefined) {
    return { raw, text: expectedAmount(value as number | null) };
  }
  return { raw, text: String(value) };
}

/** The API's answers for one account, as the admin reads them. */
export interface AccountFacts {
  /** GET …/balance?unit=<unit> per unit. */
  balances: Record<string, Json>;
  /** GET …/ledger, every entry. */
  entries: Json[];
  /** Per UTC day (YYYY-MM-DD) of the usage window, the unit's consumed credits; and `total`. */
  usage: Record<string, number>;
  /** GET …/grants, every lot (the operator's account page lists them). */
  lots?: Json[];
  /** The signed-in API key as POST /v1/api-keys served it (the operator's pages show it). */
  key?: Json;
}

/** Text members that a page may show as "" or "—" when the API's value is null. */
const TEXT_MEMBERS = new Set(["reason", "ref", "actor", "grant_id", "credit_type"]);

const member = (obj: Json | undefined, m: string | undefined): Expected | undefined =>
  obj && m !== undefined && m in obj ? shown(m, obj[m]) : undefined;

/** The expected raw value and text of `field`, or undefined when the name matches no rule. */
export function expected(field: string, facts: AccountFacts): Expected | undefined {
  const parts = field.split(".");
  const [head, a, b, c] = parts;
  const balances = Object.values(facts.balances);
  const listed = (list: "expiring" | "pending" | "awaiting_payment", gid: string | undefined) =>
    balances.flatMap((bal) => bal[list] as Json[]).find((x) => x.grant_id === gid);
  switch (head) {
    case "balance": {
      const bal = a === undefined ? undefined : facts.balances[a];
      if (parts.length === 3 && (b === "available" || b === "held")) return member(bal, b);
      if (parts.length === 4 && b === "by_type") return member(bal?.by_type, c);
      return undefined;
    }
    case "expiring":
      return parts.length === 3 ? member(listed("expiring", a), b) : undefined;
    case "pending":
      return parts.length === 3 ? member(listed("pending", a), b) : undefined;
    case "awaiting":
      return parts.length === 3 ? member(listed("awaiting_payment", a), b) : undefined;
    case "entry":
      return parts.length === 3
        ? member(
            facts.entries.find((e) => String(e.seq) === a),
            b,
          )
        : undefined;
    case "lot":
      return parts.length === 3
        ? member(
            facts.lots?.find((l) => l.grant_id === a),
            b,
          )
        : undefined;
    case "key":
      return parts.length === 2 ? member(facts.key, a) : undefined;
    case "usage":
      return parts.length === 3 && b === "consumed" && a !== undefined && a in facts.usage
        ? shown("consumed", facts.usage[a])
        : undefined;
    default:
      return undefined;
  }
}

/** Every field on the page against the API: the fields that matched no rule, and those that disagree. */
export function compareFields(
  onPage: readonly FieldOnPage[],
  facts: AccountFacts,
): { unknown: string[]; wrong: { field: string; page: FieldOnPage; api: Expected }[] } {
  const unknown: string[] = [];
  const wrong: { field: string; page: FieldOnPage; api: Expected }[] = [];
  for (const f of onPage) {
    const want = expected(f.field, facts);
    if (!want) {
      unknown.push(f.field);
      continue;
    }
    const nullText = want.raw === "" && TEXT_MEMBERS.has(f.field.split(".").at(-1) ?? "") && ["", "—"].includes(f.text);
    const textOk = f.text === want.text || nullText;
    if (!textOk || (f.value !== null && f.value !== want.raw)) wrong.push({ field: f.field, page: f, api: want });
  }
  return { unknown, wrong };
}
