/**
 * D1 tables of units, conversion rates and meters (the rating catalogue).
 * Admin-managed, small (bounded by UNITS_MAX, RATES_MAX, METERS_MAX and
 * METER_VERSIONS_MAX in src/db/units.ts and src/db/meters.ts), read by the
 * gateway before a metered or converting debit. Part of the schema
 * drizzle-kit generates migrations from (re-exported by schema.ts).
 */
import { index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

/** A unit of account: what it is called, its decimal scale and an optional list price. */
export const units = sqliteTable("units", {
  unit: text("unit").primaryKey(),
  name: text("name").notNull(),
  /** Decimal places of display (0..18): 1 stored unit = 10^-scale of a displayed one. */
  scale: integer("scale").notNull(),
  /** List price: `list_price_amount` minor units of `list_price_currency` per `list_price_per` units. */
  listPriceAmount: integer("list_price_amount"),
  listPriceCurrency: text("list_price_currency"),
  listPricePer: integer("list_price_per"),
  createdAtMs: integer("created_at_ms").notNull(),
  updatedAtMs: integer("updated_at_ms").notNull(),
});

/** A conversion rate: 1 `from_unit` = numerator/denominator `to_unit`. */
export const rates = sqliteTable(
  "rates",
  {
    fromUnit: text("from_unit").notNull(),
    toUnit: text("to_unit").notNull(),
    numerator: integer("numerator").notNull(),
    denominator: integer("denominator").notNull(),
    createdAtMs: integer("created_at_ms").notNull(),
    updatedAtMs: integer("updated_at_ms").notNull(),
  },
  (t) => [primaryKey({ columns: [t.fromUnit, t.toUnit] }), index("rates_by_to").on(t.toUnit, t.fromUnit)],
);

/**
 * Every price a meter has had, one row per version (append-only: a new
 * price is a new row). The current price is the highest version.
 */
export const meterVersions = sqliteTable(
  "meter_versions",
  {
    meter: text("meter").notNull(),
    version: integer("version").notNull(),
    unit: text("unit").notNull(),
    /** `price_amount` units of `unit` per `price_per` quantity, rounded up per request. */
    priceAmount: integer("price_amount").notNull(),
    pricePer: integer("price_per").notNull(),
    actor: text("actor").notNull(),
    createdAtMs: integer("created_at_ms").notNull(),
  },
  (t) => [primaryKey({ columns: [t.meter, t.version] })],
);
