/**
 * The balance's `awaiting_payment` list (src/account/awaiting.ts keeps the
 * records). Every balance lists the account's open grants awaiting payment,
 * including the balances inside other operations' responses, which are built
 * from lots alone: so each AccountLedger publishes its open records here.
 */
import { iso } from "../ledger";
import type { AwaitingGrant } from "../ledger/awaiting";

/** One item of a balance's `awaiting_payment` list. */
export interface AwaitingItem {
  grant_id: string;
  amount: number;
  type: string;
  created_at: string;
  topup: boolean;
}

/**
 * The open records of each account whose Durable Object runs in this
 * isolate, so that every balance (including those inside other operations'
 * responses, built from lots alone) can list them. One DO per account id, so
 * one entry per account; the DO sets it on wake and on every change.
 */
const openByAccount = new Map<string, ReadonlyMap<string, AwaitingGrant>>();

/** Called by the account's AwaitingDesk on wake and after every change of its open records. */
export function publishAwaiting(accountId: string, open: ReadonlyMap<string, AwaitingGrant>): void {
  if (open.size === 0) openByAccount.delete(accountId);
  else openByAccount.set(accountId, open);
}

/** The balance's `awaiting_payment` of `unit`: the first `max` open records in creation order. */
export function awaitingList(
  accountId: string,
  unit: string,
  max: number,
  records: Iterable<AwaitingGrant> = openByAccount.get(accountId)?.values() ?? [],
): { awaiting_payment: AwaitingItem[]; awaiting_payment_more: boolean } {
  const items: AwaitingItem[] = [];
  let more = false;
  for (const r of records) {
    if (r.command.unit !== unit) continue;
    if (items.length === max) {
      more = true;
      break;
    }
    items.push({
      grant_id: r.grantId,
      amount: r.command.amount,
      type: r.command.type,
      created_at: iso(r.createdAtMs),
      topup: r.topup,
    });
  }
  return { awaiting_payment: items, awaiting_payment_more: more };
}
