import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "sqlite",
  schema: [
    "./src/db/schema.ts",
    "./src/db/schema-finance.ts",
    "./src/db/schema-transfers.ts",
    "./src/db/schema-meters.ts",
    "./src/db/schema-approvals.ts",
    "./src/db/schema-recurring.ts",
    "./src/db/schema-campaigns.ts",
  ],
  out: "./migrations",
});
