/**
 * Conversions between units: the pure rule a converting draw follows. A rate
 * says 1 `from` = numerator/denominator `to`. Every rounding favours the
 * house, so no sequence of conversions creates value:
 * - what `x` of `from` is worth in `to` is rounded DOWN (valueIn),
 * - what it takes of `from` to cover `y` of `to` is rounded UP (costIn).
 * No Cloudflare imports, no I/O; BigInt inside, so a product past 2^53 is exact.
 */
import { type DrawCommand, type DrawPlan, type LotSource, planDebit, planReserve } from "./draw";
import type { HoldAllocation } from "./holds";
import { LotBook } from "./lot-book";
import { spendable } from "./lots";
import type { Policy } from "./policy";
import { type Applied, assert, err, type LedgerError, type Lot, ok, type Result } from "./types";

export interface ConversionRate {
  numerator: number;
  denominator: number;
}

/** A unit a draw may convert from, with its rate into the draw's unit; tried in list order. */
export interface ConversionSource {
  unit: string;
  rate: ConversionRate;
}

/** At most this many units a draw converts from (the policy's `convert_from` is capped to it). */
export const CONVERT_FROM_MAX = 16;

const big = (n: number) => BigInt(n);

const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * What `fromAmount` of `from` is worth in `to`: floor(fromAmount · n / d),
 * capped at Number.MAX_SAFE_INTEGER (still rounded down: a cap never adds value).
 * @example valueIn(1_000, { numerator: 3, denominator: 1_000 }) // 3
 */
export function valueIn(fromAmount: number, rate: ConversionRate): number {
  const worth = (big(fromAmount) * big(rate.numerator)) / big(rate.denominator);
  return Number(worth > SAFE ? SAFE : worth);
}

/**
 * The least `from` that is worth at least `toAmount` of `to`: ceil(toAmount · d / n).
 * Exact whenever the answer is a safe integer (a draw asks only for what a unit
 * holds, so planConversion's answers always are).
 * @example costIn(1, { numerator: 3, denominator: 1_000 }) // 334 (333 would be worth 0.999)
 */
export function costIn(toAmount: number, rate: ConversionRate): number {
  const num = big(toAmount) * big(rate.denominator);
  const n = big(rate.numerator);
  return Number((num + n - 1n) / n);
}

/** One unit's part of a converting draw: `from` taken to cover `covers` of the draw's unit. */
export interface ConversionLeg {
  unit: string;
  rate: ConversionRate;
  /** Taken from this unit's lots (rounded up). */
  take: number;
  /** What it covers in the draw's unit (never more than `take` is worth). */
  covers: number;
}

/**
 * How a draw of `amount` in `unit` is covered: first the unit's own live
 * lots, then each source in order, each leg taking the least of its unit
 * that covers what it can. All or nothing: short, it takes nothing and says
 * what was available (own + what every source could cover), in `unit`.
 */
export function planConversion(
  lots: Iterable<Lot>,
  unit: string,
  amount: number,
  sources: readonly ConversionSource[],
  nowMs: number,
): Result<{ own: number; legs: ConversionLeg[] }, LedgerError> {
  const free = new Map<string, number>();
  for (const lot of lots) free.set(lot.unit, (free.get(lot.unit) ?? 0) + spendable(lot, nowMs));
  const own = Math.min(free.get(unit) ?? 0, amount);
  let short = amount - own;
  let available = free.get(unit) ?? 0;
  const legs: ConversionLeg[] = [];
  const seen = new Set<string>([unit]);
  for (const source of sources.slice(0, CONVERT_FROM_MAX)) {
    // Dimensions with no rate never mix; a unit listed twice is drawn once.
    if (seen.has(source.unit)) continue;
    seen.add(source.unit);
    const has = free.get(source.unit) ?? 0;
    const worth = valueIn(has, source.rate);
    available += worth;
    if (short === 0 || worth === 0) continue;
    const covers = Math.min(worth, short);
    legs.push({ unit: source.unit, rate: source.rate, take: costIn(covers, source.rate), covers });
    short -= covers;
  }
  if (short > 0) return err({ code: "insufficient_credits", available, requested: amount });
  return ok({ own, legs });
}

/** The sources a policy allows, in its `convert_from` order: units listed there that have a rate. */
export function sourcesFor(
  convertFrom: readonly string[] | undefined,
  rates: ReadonlyMap<string, ConversionRate>,
): ConversionSource[] {
  const out: ConversionSource[] = [];
  for (const unit of (convertFrom ?? []).slice(0, CONVERT_FROM_MAX)) {
    const rate = rates.get(unit);
    if (rate) out.push({ unit, rate });
  }
  return out;
}

/** What a converting debit drew from one other unit: the lots touched there, in that unit. */
export interface ConvertedLeg extends ConversionLeg {
  applied: Applied[];
}

export interface ConvertingPlan extends DrawPlan {
  /** Only the draw unit's own lots; the other units' are in `converted`. */
  applied: Applied[];
  converted: ConvertedLeg[];
}

/** What a draw does to its lots: a debit consumes them now, a hold or receipt reserves them. */
export type DrawKind = "debit" | "hold" | "receipt";

/**
 * A debit (hold, receipt: `kind`) of `cmd.amount` in `cmd.unit` that, once
 * the unit's own live lots are spent, draws from `sources` in order
 * (planConversion). Each unit's part is drawn from that unit's lots in the
 * policy's consumption order; entries are in their own lot's unit, and those
 * of other units carry `conversion` (the draw's unit and the rate). All or nothing.
 * @example planConvertingDebit(lots, { ref: "d1", unit: "credits", amount: 20 }, policy, now, sources)
 */
export function planConvertingDebit(
  lots: readonly Lot[],
  cmd: DrawCommand,
  policy: Policy,
  nowMs: number,
  sources: readonly ConversionSource[],
  kind: DrawKind = "debit",
): Result<ConvertingPlan, LedgerError> {
  const planned = planConversion(lots, cmd.unit, cmd.amount, sources, nowMs);
  if (!planned.ok) return planned;
  const draw = (c: DrawCommand) =>
    kind === "debit" ? planDebit(lots, c, policy, nowMs) : planReserve(lots, c, policy, nowMs, kind);
  const plan: ConvertingPlan = { applied: [], lots: [], entries: [], converted: [] };
  if (planned.value.own > 0) {
    const own = draw({ ...cmd, amount: planned.value.own });
    assert(own.ok, "planConvertingDebit: the unit's own lots covered less than planConversion counted");
    plan.applied.push(...own.value.applied);
    plan.lots.push(...own.value.lots);
    plan.entries.push(...own.value.entries);
  }
  for (const leg of planned.value.legs) {
    const drawn = draw({ ref: cmd.ref, unit: leg.unit, amount: leg.take });
    assert(drawn.ok, `planConvertingDebit: ${leg.unit} lots covered less than planConversion counted`);
    const conversion = { to_unit: cmd.unit, numerator: leg.rate.numerator, denominator: leg.rate.denominator };
    plan.converted.push({ ...leg, applied: drawn.value.applied });
    plan.lots.push(...drawn.value.lots);
    plan.entries.push(...drawn.value.entries.map((e) => ({ ...e, conversion })));
  }
  return ok(plan);
}

/**
 * The debit (hold, receipt: `kind`) the account runs: a plain one (planDebit,
 * planReserve) unless the request brought rates (`convert: true`) and the
 * policy's `convert_from` lists a unit that has one, then a converting one.
 * `converted` is empty for a plain draw.
 */
export function planDebitMaybeConverting(
  lots: LotSource,
  cmd: DrawCommand,
  policy: Policy,
  nowMs: number,
  rates: readonly ConversionSource[] | undefined,
  kind: DrawKind = "debit",
): Result<ConvertingPlan, LedgerError> {
  const sources = rates ? sourcesFor(policy.convert_from, new Map(rates.map((r) => [r.unit, r.rate]))) : [];
  if (sources.length === 0) {
    const plain = kind === "debit" ? planDebit(lots, cmd, policy, nowMs) : planReserve(lots, cmd, policy, nowMs, kind);
    return plain.ok ? ok({ ...plain.value, converted: [] }) : plain;
  }
  // A converting draw reads several units at once: it works on a plain list (bounded by the account's lots).
  return planConvertingDebit([...(lots instanceof LotBook ? lots.values() : lots)], cmd, policy, nowMs, sources, kind);
}

/**
 * A hold's allocations from a (maybe converting) reservation: the own unit's
 * lots, then each converted leg's, each carrying its unit and rate.
 */
export function holdAllocations(plan: {
  applied: readonly Applied[];
  converted: readonly ConvertedLeg[];
}): HoldAllocation[] {
  const out: HoldAllocation[] = plan.applied.map((a) => ({ grantId: a.grantId, amount: a.amount }));
  for (const leg of plan.converted) {
    const conversion = { unit: leg.unit, numerator: leg.rate.numerator, denominator: leg.rate.denominator };
    for (const a of leg.applied) out.push({ grantId: a.grantId, amount: a.amount, conversion });
  }
  return out;
}

/** The `converted` member of a debit's answer: one item per other unit drawn (none: the member is left out). */
export function convertedView(converted: readonly ConvertedLeg[], appliedMax: number) {
  if (converted.length === 0) return {};
  return {
    converted: converted.map((leg) => ({
      unit: leg.unit,
      numerator: leg.rate.numerator,
      denominator: leg.rate.denominator,
      amount: leg.take,
      covers: leg.covers,
      applied: leg.applied.slice(0, appliedMax).map((a) => ({ grant_id: a.grantId, type: a.type, amount: a.amount })),
      applied_more: leg.applied.length > appliedMax,
    })),
  };
}
