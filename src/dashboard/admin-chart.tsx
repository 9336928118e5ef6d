/**
 * Inline SVG bar charts for the operator's reports: no script, no external
 * request. Each group is a row of up to three bars (issued, consumed,
 * expired), scaled to the largest figure of the chart; the figures
 * themselves are in the table beside it, which carries the data-field hooks.
 */
import type { Child } from "hono/jsx";

/** A chart draws at most this many groups; the table lists the rest. */
export const CHART_GROUPS_MAX = 20;

export interface BarSeries {
  name: string;
  /** A fill with contrast ≥ 3:1 against white (WCAG 1.4.11 for graphics). */
  color: string;
}

export const SERIES: readonly BarSeries[] = [
  { name: "issued", color: "#1d4ed8" },
  { name: "consumed", color: "#047857" },
  { name: "expired", color: "#b45309" },
];

export interface BarGroup {
  label: string;
  values: readonly number[];
}

const BAR_H = 10;
const GAP = 6;
const LABEL_W = 130;
const PLOT_W = 360;

/** A grouped horizontal bar chart; `title` names it for screen readers. */
export function BarChart(props: { title: string; groups: readonly BarGroup[] }): Child {
  const groups = props.groups.slice(0, CHART_GROUPS_MAX);
  const max = Math.max(1, ...groups.flatMap((g) => g.values));
  const rowH = SERIES.length * BAR_H + GAP;
  const height = Math.max(rowH, groups.length * rowH) + 24;
  const width = LABEL_W + PLOT_W + 10;
  return (
    <svg
      viewBox={`0 0 ${width} ${height}`}
      width="100%"
      role="img"
      aria-label={props.title}
      style="max-width:40rem;display:block"
    >
      <title>{props.title}</title>
      {groups.map((g, gi) => (
        <g>
          <text x={LABEL_W - 6} y={gi * rowH + BAR_H * 2} text-anchor="end" font-size="11" fill="#111827">
            {g.label.length > 20 ? `${g.label.slice(0, 19)}…` : g.label}
          </text>
          {g.values.map((v, si) => (
            <rect
              x={LABEL_W}
              y={gi * rowH + si * BAR_H}
              width={Math.max(v > 0 ? 1 : 0, Math.round((v / max) * PLOT_W))}
              height={BAR_H - 1}
              fill={SERIES[si]?.color ?? "#374151"}
            >
              <title>{`${g.label} ${SERIES[si]?.name ?? ""}: ${v}`}</title>
            </rect>
          ))}
        </g>
      ))}
      {SERIES.map((s, si) => (
        <g>
          <rect x={LABEL_W + si * 110} y={height - 14} width="10" height="10" fill={s.color} />
          <text x={LABEL_W + si * 110 + 14} y={height - 5} font-size="11" fill="#111827">
            {s.name}
          </text>
        </g>
      ))}
    </svg>
  );
}
