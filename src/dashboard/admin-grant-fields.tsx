/**
 * The terms a grant form carries, shared by the account page's grant form
 * (admin-account.tsx) and the bulk grant form (admin-bulk.tsx): the fields
 * as posted, and the inputs for type, unit, reason and incident. `id`
 * prefixes each input's id, so two forms on a page keep their labels apart.
 */
import type { Child } from "hono/jsx";
import { field, type Operator } from "./admin-frame";
import { NOTE_MAX_CHARS, REASON_CODES } from "./admin-rules";

/** A grant's terms as the form posted them (text, judged by the API). */
export interface GrantTerms {
  type: string;
  amount: string;
  unit: string;
  reason_code: string;
  note: string;
  incident_id: string;
}

export const EMPTY_TERMS: GrantTerms = {
  type: "",
  amount: "",
  unit: "credits",
  reason_code: "",
  note: "",
  incident_id: "",
};

export function termsOf(form: FormData): GrantTerms {
  return {
    type: field(form, "type"),
    amount: field(form, "amount"),
    unit: field(form, "unit") || "credits",
    reason_code: field(form, "reason_code"),
    note: field(form, "note"),
    incident_id: field(form, "incident_id"),
  };
}

/** The credit types this operator may grant. */
export function TypeSelect(props: { id: string; op: Operator; type: string }): Child {
  return (
    <p>
      <label for={`${props.id}-type`}>Credit type</label>
      <select id={`${props.id}-type`} name="type" required>
        {props.op.can.grantTypes.map((t) => (
          <option value={t} selected={props.type === t}>
            {t}
          </option>
        ))}
      </select>
    </p>
  );
}

/** The unit, the reason and the incident link, after the amount. */
export function TermsTail(props: { id: string; v: GrantTerms }): Child {
  const { id, v } = props;
  return (
    <>
      <p>
        <label for={`${id}-unit`}>Unit</label>
        <input id={`${id}-unit`} name="unit" value={v.unit || "credits"} maxlength={32} />
      </p>
      <ReasonFields id={id} code={v.reason_code} note={v.note} />
      <p>
        <label for={`${id}-incident`}>Incident id (optional)</label>
        <input id={`${id}-incident`} name="incident_id" maxlength={256} value={v.incident_id} />
      </p>
    </>
  );
}

/**
 * The reason-code select and note every action form carries; `id` keeps labels
 * unique per row. The code and the note become the entry's `reason`, which the
 * customer's view shows in its transaction log: the label says so.
 */
export function ReasonFields(props: { id: string; code?: string; note?: string }): Child {
  return (
    <>
      <p>
        <label for={`${props.id}-reason`}>Reason code</label>
        <select id={`${props.id}-reason`} name="reason_code" required>
          <option value="">Choose a reason…</option>
          {REASON_CODES.map(([code, label]) => (
            <option value={code} selected={props.code === code}>
              {label}
            </option>
          ))}
        </select>
      </p>
      <p>
        <label for={`${props.id}-note`}>Note (optional; shown to the customer)</label>
        <input id={`${props.id}-note`} name="note" maxlength={NOTE_MAX_CHARS} value={props.note ?? ""} />
      </p>
    </>
  );
}
