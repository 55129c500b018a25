// Generates the Grafana dashboards in this folder (dashboards/*.json) from
// one description per dashboard, so that every panel gets the same
// datasource reference, variables, selectors and layout rules, and a fix
// reaches all six dashboards at once. Run `node dashboards/generate.mjs`
// after editing this file; `--check` (run by tests/dashboards.rs) fails
// when a committed JSON file differs from what this script writes.
//
// Conventions (docs/dashboards.md says why):
// - the `datasource` variable (type prometheus); every panel, target,
//   variable and annotation refers to it as `${datasource}`;
// - `job` and `instance` pick continuity instances, `location` is the
//   Prometheus target label that says where an instance probes from;
//   `category`, `supplier` and `service` narrow the services;
// - only the daemon's gauges and counters are used, never the per-check
//   latency histogram, so the dashboards work when series are trimmed.

import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const DS = { type: 'prometheus', uid: '${datasource}' };

// ------------------------------------------------------------ selectors

/** The continuity instances picked by the job, instance and location variables. */
const SCOPE = 'job=~"$job",instance=~"$instance",location=~"$location"';
/** The services picked by the variables (the service variable is already narrowed by category and supplier). */
const SVC = `${SCOPE},service=~"$service"`;
const sel = (metric, extra = '') => `${metric}{${SVC}${extra ? ',' + extra : ''}}`;
/** Metrics of the monitor itself carry no service label. */
const own = (metric, extra = '') => `${metric}{${SCOPE}${extra ? ',' + extra : ''}}`;
/** Copies `category` and `supplier` from continuity_service_up onto a per-service series. */
const WITH_OWNER =
  'on(job, instance, location, service) group_left(category, supplier) ' +
  `group by (job, instance, location, service, category, supplier) (${sel('continuity_service_up', 'category=~"$category",supplier=~"$supplier"')})`;

/** The service state as one number: the one-hot state series weighted by code. */
const STATE_CODES = [
  ['up', 1, 'Up', 'green'],
  ['degraded', 2, 'Degraded', 'yellow'],
  ['unknown', 3, 'Unknown', 'text'],
  ['maintenance', 4, 'Maintenance', 'blue'],
  ['down', 5, 'Down', 'red'],
];
const STATE_EXPR =
  'max by (job, instance, location, service) (' +
  STATE_CODES.map(([s, code]) => `${sel('continuity_service_state', `state="${s}"`)} * ${code}`).join(' or ') +
  ')';
const STATE_MAPPINGS = [
  {
    type: 'value',
    options: Object.fromEntries(
      STATE_CODES.map(([, code, text, color], i) => [String(code), { text, color, index: i }]),
    ),
  },
];
const SUCCESS_MAPPINGS = [
  {
    type: 'value',
    options: {
      0: { text: 'Failed', color: 'red', index: 0 },
      1: { text: 'OK', color: 'green', index: 1 },
    },
  },
];

// ------------------------------------------------------------ variables

const datasourceVariable = {
  type: 'datasource',
  name: 'datasource',
  label: 'Data source',
  query: 'prometheus',
  description: 'The Prometheus that scrapes the continuity instances.',
  hide: 0,
  includeAll: false,
  multi: false,
  options: [],
  refresh: 1,
  regex: '',
  skipUrlSync: false,
};

function queryVariable(name, label, query, description, { multi = true, includeAll = true, allValue } = {}) {
  const v = {
    type: 'query',
    name,
    label,
    description,
    datasource: DS,
    query,
    hide: 0,
    includeAll,
    multi,
    options: [],
    refresh: 2,
    regex: '',
    skipUrlSync: false,
    sort: 1,
  };
  if (allValue !== undefined) v.allValue = allValue;
  if (includeAll) v.current = { text: 'All', value: '$__all' };
  return v;
}

/** The variables every dashboard has; Service detail picks one service. */
function variables({ singleService = false } = {}) {
  return [
    datasourceVariable,
    queryVariable('job', 'Job', 'label_values(continuity_build_info, job)',
      'Prometheus jobs that scrape continuity.', { allValue: '.+' }),
    queryVariable('instance', 'Instance', 'label_values(continuity_build_info{job=~"$job"}, instance)',
      'continuity instances (one or more per location).', { allValue: '.+' }),
    queryVariable('location', 'Location',
      'label_values(continuity_build_info{job=~"$job",instance=~"$instance"}, location)',
      'Where an instance probes from: the `location` label Prometheus adds to its target. All also matches instances without one.',
      { allValue: '.*' }),
    queryVariable('category', 'Category',
      `label_values(continuity_service_up{${SCOPE}}, category)`,
      'Service categories of the catalogue.', { allValue: '.*' }),
    queryVariable('supplier', 'Supplier',
      `label_values(continuity_service_up{${SCOPE},category=~"$category"}, supplier)`,
      'Suppliers responsible for the services.', { allValue: '.*' }),
    // No custom all value: "All" means the services listed, so the
    // category and supplier choices narrow every per-check query too.
    singleService
      ? queryVariable('service', 'Service',
        `label_values(continuity_service_up{${SCOPE},category=~"$category",supplier=~"$supplier"}, service)`,
        'The service shown.', { multi: false, includeAll: false })
      : queryVariable('service', 'Service',
        `label_values(continuity_service_up{${SCOPE},category=~"$category",supplier=~"$supplier"}, service)`,
        'Services of the chosen categories and suppliers.'),
  ];
}

/** Burn-rate windows of the daemon (telemetry::BURN_WINDOWS). */
const windowVariable = {
  type: 'custom',
  name: 'window',
  label: 'Burn-rate window',
  description: 'The window of continuity_sla_burn_rate shown over time.',
  query: '5m,30m,1h,2h,6h,1d,3d',
  current: { text: '1h', value: '1h' },
  options: ['5m', '30m', '1h', '2h', '6h', '1d', '3d'].map((w) => ({ text: w, value: w, selected: w === '1h' })),
  hide: 0,
  includeAll: false,
  multi: false,
  skipUrlSync: false,
};

// --------------------------------------------------------------- panels

function target(expr, legendFormat, { instant = false, format, refId = 'A' } = {}) {
  const t = { datasource: DS, refId, expr, legendFormat: legendFormat ?? '__auto', range: !instant, instant };
  if (format) t.format = format;
  return t;
}
const targets = (...ts) => ts.map((t, i) => ({ ...t, refId: String.fromCharCode(65 + i) }));

const thresholds = (steps) => ({
  mode: 'absolute',
  steps: steps.map(([value, color]) => ({ value, color })),
});
const GREEN = thresholds([[null, 'green']]);
const BUDGET = thresholds([[null, 'red'], [0, 'orange'], [0.25, 'green']]);
const CERT = thresholds([[null, 'red'], [7 * 86400, 'orange'], [21 * 86400, 'green']]);

const reduce = (calcs = ['lastNotNull']) => ({ calcs, fields: '', values: false });
const legend = (extra = {}) => ({ calcs: [], displayMode: 'list', placement: 'bottom', showLegend: true, ...extra });
const tooltip = { mode: 'multi', sort: 'desc' };

/** Options and field config every panel of a type needs, as Grafana writes them. */
const OPTIONS = {
  stat: () => ({
    colorMode: 'background',
    graphMode: 'none',
    justifyMode: 'auto',
    orientation: 'auto',
    percentChangeColorMode: 'standard',
    reduceOptions: reduce(),
    showPercentChange: false,
    textMode: 'value_and_name',
    wideLayout: true,
  }),
  bargauge: () => ({
    displayMode: 'gradient',
    legend: legend({ showLegend: false }),
    maxVizHeight: 300,
    minVizHeight: 16,
    minVizWidth: 8,
    namePlacement: 'left',
    orientation: 'horizontal',
    reduceOptions: reduce(),
    showUnfilled: true,
    sizing: 'auto',
    valueMode: 'color',
  }),
  timeseries: () => ({ legend: legend(), tooltip }),
  'state-timeline': () => ({
    alignValue: 'left',
    legend: legend({ showLegend: false }),
    mergeValues: true,
    rowHeight: 0.9,
    showValue: 'auto',
    tooltip,
  }),
  table: () => ({ cellHeight: 'sm', frameIndex: 0, showHeader: true }),
};
const CUSTOM = {
  timeseries: (o = {}) => ({
    drawStyle: 'line',
    fillOpacity: 10,
    lineInterpolation: 'linear',
    lineWidth: 1,
    pointSize: 4,
    showPoints: 'auto',
    spanNulls: false,
    ...o,
  }),
  'state-timeline': () => ({ fillOpacity: 80, lineWidth: 0 }),
  table: () => ({ align: 'auto', cellOptions: { type: 'auto' }, inspect: false }),
};

/**
 * One panel. `w`/`h` are its size in grid units; `layout` places it.
 * Every panel has a title, a description, a unit (or value mappings)
 * and the templated datasource.
 */
function panel(type, title, description, ts, opts = {}) {
  const {
    unit, w = 12, h = 8, mappings = [], thresholds: th = GREEN, min, max, decimals,
    options = {}, custom = {}, overrides = [], transformations, repeat, maxPerRow, color, interval,
  } = opts;
  const defaults = { color: color ?? { mode: th === GREEN ? 'palette-classic' : 'thresholds' }, mappings, thresholds: th };
  if (CUSTOM[type]) defaults.custom = { ...CUSTOM[type](), ...custom };
  if (unit) defaults.unit = unit;
  if (min !== undefined) defaults.min = min;
  if (max !== undefined) defaults.max = max;
  if (decimals !== undefined) defaults.decimals = decimals;
  const p = {
    type,
    title,
    description,
    datasource: DS,
    gridPos: { w, h, x: 0, y: 0 },
    fieldConfig: { defaults, overrides },
    options: { ...OPTIONS[type](), ...options },
    targets: ts,
  };
  if (transformations) p.transformations = transformations;
  if (interval) p.interval = interval;
  if (repeat) {
    p.repeat = repeat;
    p.repeatDirection = 'h';
    if (maxPerRow) p.maxPerRow = maxPerRow;
  }
  return p;
}

/** Place panels left to right, top to bottom, 24 units wide; ids follow the order. */
function layout(panels) {
  let x = 0;
  let y = 0;
  let rowHeight = 0;
  return panels.map((p, i) => {
    const { w, h } = p.gridPos;
    if (x + w > 24) {
      x = 0;
      y += rowHeight;
      rowHeight = 0;
    }
    const placed = { id: i + 1, ...p, gridPos: { h, w, x, y } };
    x += w;
    rowHeight = Math.max(rowHeight, h);
    return placed;
  });
}

function dashboard(uid, title, description, tags, panels, { vars = variables(), annotations = [], time = 'now-6h' } = {}) {
  return {
    annotations: {
      list: [
        {
          builtIn: 1,
          datasource: { type: 'grafana', uid: '-- Grafana --' },
          enable: true,
          hide: true,
          iconColor: 'rgba(0, 211, 255, 1)',
          name: 'Annotations & Alerts',
          type: 'dashboard',
        },
        ...annotations,
      ],
    },
    description,
    editable: true,
    fiscalYearStartMonth: 0,
    graphTooltip: 1,
    id: null,
    links: [
      { asDropdown: true, icon: 'external link', includeVars: true, keepTime: true, tags: ['continuity'], targetBlank: false, title: 'continuity', tooltip: '', type: 'dashboards', url: '' },
    ],
    panels: layout(panels),
    refresh: '30s',
    schemaVersion: 39,
    tags: ['continuity', ...tags],
    templating: { list: vars },
    time: { from: time, to: 'now' },
    timepicker: {},
    timezone: 'browser',
    title,
    uid,
    version: 1,
    weekStart: '',
  };
}

// ----------------------------------------------------- shared panel kinds

const slaTable = (w = 12) =>
  panel('table', 'SLA this period against its objective',
    'Per service and SLA: availability over the SLA period to date (good / eligible time, business hours and excluded maintenance as the daemon counts them), the objective, and the share of the error budget left. Lowest budget first.',
    targets(
      target(`sort(${sel('continuity_sla_error_budget_remaining_ratio')})`, '', { instant: true, format: 'table' }),
      target(sel('continuity_sla_availability_ratio'), '', { instant: true, format: 'table' }),
      target(sel('continuity_sla_objective_ratio'), '', { instant: true, format: 'table' }),
    ),
    {
      w, h: 9, unit: 'percentunit', decimals: 3, thresholds: BUDGET,
      transformations: [
        { id: 'merge', options: {} },
        {
          id: 'organize',
          options: {
            excludeByName: { Time: true, __name__: true, job: true },
            renameByName: { 'Value #A': 'Budget left', 'Value #B': 'Availability', 'Value #C': 'Objective' },
            indexByName: { location: 0, service: 1, sla: 2, 'Value #B': 3, 'Value #C': 4, 'Value #A': 5, instance: 6 },
          },
        },
      ],
      overrides: [
        {
          matcher: { id: 'byName', options: 'Budget left' },
          properties: [{ id: 'custom.cellOptions', value: { type: 'color-background' } }],
        },
      ],
      options: { sortBy: [{ displayName: 'Budget left', desc: false }] },
    });

const budgetBars = (title, w, h) =>
  panel('bargauge', title,
    'Share of each SLA\'s error budget left this period, lowest (most at risk) first; below zero the budget is overspent.',
    targets(target(`sort(${sel('continuity_sla_error_budget_remaining_ratio')})`, '{{service}} · {{sla}} {{location}}', { instant: true })),
    { w, h, unit: 'percentunit', min: -1, max: 1, thresholds: BUDGET });

const certTable = (w, h) =>
  panel('table', 'Certificates expiring soonest',
    'Time left until the earliest notAfter in each checked certificate chain, soonest first (red under 7 days, orange under 21). Shown even when the certificate is already invalid.',
    targets(target(`sort(${sel('continuity_tls_cert_not_after_timestamp_seconds')} - time())`, '', { instant: true, format: 'table' })),
    {
      w, h, unit: 's', thresholds: CERT,
      transformations: [{ id: 'organize', options: { excludeByName: { Time: true, job: true }, renameByName: { Value: 'Expires in' } } }],
      overrides: [{ matcher: { id: 'byName', options: 'Expires in' }, properties: [{ id: 'custom.cellOptions', value: { type: 'color-background' } }] }],
    });

const reasons = (extra, w, h) =>
  panel('timeseries', 'Failure reasons over time',
    'Failed probes per interval by typed reason (timeout, refused, dns, tls, status, body, expectation, slow, auth, malformed, network): what kind of failure, not just that it failed.',
    targets(target(`sum by (service, check, reason) (increase(${sel('continuity_probe_failures_total', extra)}[$__rate_interval]))`, '{{service}}/{{check}}: {{reason}}')),
    { w, h, unit: 'short', min: 0, custom: { drawStyle: 'bars', fillOpacity: 80, stacking: { mode: 'normal', group: 'A' } } });

const phases = (title, description, extra, w, h) =>
  panel('timeseries', title, description,
    targets(target(sel('continuity_probe_phase_duration_seconds', extra), '{{service}}/{{check}} {{phase}} {{location}}')),
    { w, h, unit: 's', min: 0 });

// ----------------------------------------------------------- dashboards

const overview = dashboard('continuity-overview', 'Continuity overview',
  'Every public service of the municipality at a glance: state, SLA and error budget, incidents, maintenance and certificates.',
  ['overview'],
  [
    panel('stat', 'Services down now', 'Services whose confirmed state is down at the last scrape (maintenance excluded).',
      targets(target(`count(${sel('continuity_service_state', 'state="down"')} == 1) or vector(0)`, 'down', { instant: true })),
      { w: 4, h: 4, unit: 'short', thresholds: thresholds([[null, 'green'], [1, 'red']]), options: { textMode: 'value' } }),
    panel('stat', 'Services in maintenance', 'Services covered by a maintenance window now.',
      targets(target(`count(${sel('continuity_maintenance_active')} == 1) or vector(0)`, 'maintenance', { instant: true })),
      { w: 4, h: 4, unit: 'short', thresholds: thresholds([[null, 'green'], [1, 'blue']]), options: { textMode: 'value' } }),
    panel('stat', 'Incidents opened in range', 'Incidents (continuous spells of down) opened during the selected time range, all services.',
      targets(target(`sum(increase(${sel('continuity_incidents_total')}[$__range]))`, 'incidents', { instant: true })),
      { w: 4, h: 4, unit: 'short', decimals: 0, thresholds: thresholds([[null, 'green'], [1, 'orange']]), options: { textMode: 'value' } }),
    panel('stat', 'Lowest error budget left', 'The smallest share of error budget left over all SLAs this period.',
      targets(target(`min(${sel('continuity_sla_error_budget_remaining_ratio')})`, 'budget', { instant: true })),
      { w: 4, h: 4, unit: 'percentunit', thresholds: BUDGET, options: { textMode: 'value' } }),
    panel('stat', 'Earliest certificate expiry', 'Time left until the first checked certificate expires.',
      targets(target(`min(${sel('continuity_tls_cert_not_after_timestamp_seconds')}) - time()`, 'expires in', { instant: true })),
      { w: 4, h: 4, unit: 's', thresholds: CERT, options: { textMode: 'value' } }),
    panel('stat', 'Probe success now', 'Share of checks whose last probe succeeded.',
      targets(target(`avg(${sel('continuity_probe_success')})`, 'success', { instant: true })),
      { w: 4, h: 4, unit: 'percentunit', thresholds: thresholds([[null, 'red'], [0.9, 'orange'], [0.99, 'green']]), options: { textMode: 'value' } }),
    panel('stat', 'Services in $category', 'The state of every service of the category, by supplier: up, degraded, maintenance, unknown or down (one tile per service and location).',
      targets(target(`${STATE_EXPR} * ${WITH_OWNER}`, '{{supplier}} · {{service}} {{location}}', { instant: true })),
      { w: 24, h: 6, mappings: STATE_MAPPINGS, repeat: 'category', maxPerRow: 1, options: { textMode: 'value_and_name', colorMode: 'background', wideLayout: false } }),
    slaTable(14),
    budgetBars('Error budget remaining', 10, 9),
    panel('table', 'Down or in maintenance now', 'Services that are down or covered by maintenance at the last scrape; empty when all is well.',
      targets(target(`(${STATE_EXPR} * ${WITH_OWNER}) >= 4`, '', { instant: true, format: 'table' })),
      {
        w: 12, h: 8, mappings: STATE_MAPPINGS,
        transformations: [{ id: 'organize', options: { excludeByName: { Time: true, job: true }, renameByName: { Value: 'State' } } }],
        overrides: [{ matcher: { id: 'byName', options: 'State' }, properties: [{ id: 'custom.cellOptions', value: { type: 'color-background' } }] }],
      }),
    certTable(12, 8),
    panel('state-timeline', 'Service state over time', 'Each service\'s state through the selected range.',
      targets(target(STATE_EXPR, '{{service}} {{location}}')),
      { w: 24, h: 10, mappings: STATE_MAPPINGS }),
  ]);

const detailAnnotations = [
  {
    datasource: DS,
    enable: true,
    expr: `${sel('continuity_service_state', 'state="down"')} == 1`,
    iconColor: 'red',
    name: 'Incidents',
    step: '30s',
    tagKeys: 'service,location',
    textFormat: 'Service down (incident)',
    titleFormat: 'Incident: {{service}}',
    useValueForTime: false,
  },
  {
    datasource: DS,
    enable: true,
    expr: `${sel('continuity_maintenance_active')} == 1`,
    iconColor: 'blue',
    name: 'Maintenance',
    step: '30s',
    tagKeys: 'service,location',
    textFormat: 'Maintenance window',
    titleFormat: 'Maintenance: {{service}}',
    useValueForTime: false,
  },
];

const detail = dashboard('continuity-service-detail', 'Service detail',
  'One service in depth: its checks per location, latency by phase, response codes, failure reasons, certificate and SLA, with incidents and maintenance as annotations.',
  ['service'],
  [
    panel('stat', 'State', 'The service\'s confirmed state now, per location.',
      targets(target(STATE_EXPR, '{{location}}', { instant: true })),
      { w: 6, h: 5, mappings: STATE_MAPPINGS, options: { textMode: 'value_and_name' } }),
    panel('stat', 'Availability this period', 'Availability over each SLA period to date.',
      targets(target(sel('continuity_sla_availability_ratio'), '{{sla}} {{location}}', { instant: true })),
      { w: 6, h: 5, unit: 'percentunit', decimals: 3, options: { colorMode: 'value' } }),
    panel('stat', 'Error budget left', 'Share of each SLA\'s error budget left this period.',
      targets(target(sel('continuity_sla_error_budget_remaining_ratio'), '{{sla}} {{location}}', { instant: true })),
      { w: 6, h: 5, unit: 'percentunit', thresholds: BUDGET }),
    panel('stat', 'Certificate expires in', 'Time left until the earliest notAfter of each check\'s certificate chain.',
      targets(target(`${sel('continuity_tls_cert_not_after_timestamp_seconds')} - time()`, '{{check}} {{location}}', { instant: true })),
      { w: 6, h: 5, unit: 's', thresholds: CERT }),
    panel('state-timeline', 'Probe success per check and location', 'The result of every probe of each check, per location.',
      targets(target(sel('continuity_probe_success'), '{{check}} @ {{location}}')),
      { w: 24, h: 7, mappings: SUCCESS_MAPPINGS }),
    panel('timeseries', 'Success ratio per check', 'Share of probes that succeeded per interval, per check and location.',
      targets(target(
        `sum by (job, instance, location, check) (rate(${sel('continuity_probes_total', 'result="success"')}[$__rate_interval])) / sum by (job, instance, location, check) (rate(${sel('continuity_probes_total')}[$__rate_interval]))`,
        '{{check}} @ {{location}}')),
      { w: 12, h: 8, unit: 'percentunit', min: 0, max: 1 }),
    panel('timeseries', 'Probe duration', 'Duration of each check\'s last probe, and its 95th percentile over the interval.',
      targets(
        target(sel('continuity_probe_duration_seconds'), '{{check}} @ {{location}}'),
        target(`quantile_over_time(0.95, ${sel('continuity_probe_duration_seconds')}[$__rate_interval])`, '{{check}} @ {{location}} p95'),
      ),
      { w: 12, h: 8, unit: 's', min: 0 }),
    phases('Latency by phase', 'How long each phase of the last probe took: resolve, connect, tls, processing, transfer (http), response, ringing, answer (sip, dns), rtt (icmp).',
      '', 12, 8),
    panel('timeseries', 'HTTP and SIP response codes', 'Status code of the last HTTP response and final SIP response code, per check.',
      targets(
        target(sel('continuity_http_status_code'), 'HTTP {{check}} @ {{location}}'),
        target(sel('continuity_sip_response_code'), 'SIP {{check}} @ {{location}}'),
      ),
      { w: 12, h: 8, unit: 'none', decimals: 0, custom: { drawStyle: 'points', pointSize: 6 } }),
    reasons('', 12, 8),
    panel('timeseries', 'Monitor errors', 'Probes the monitor itself could not run (its own failures, counted as unknown time, never down).',
      targets(target(`sum by (location, check) (increase(${sel('continuity_probe_errors_total')}[$__rate_interval]))`, '{{check}} @ {{location}}')),
      { w: 12, h: 8, unit: 'short', min: 0, custom: { drawStyle: 'bars', fillOpacity: 80 } }),
    panel('state-timeline', 'State over time', 'The service\'s confirmed state through the selected range, per location.',
      targets(target(STATE_EXPR, '{{location}}')),
      { w: 24, h: 5, mappings: STATE_MAPPINGS }),
  ],
  { vars: variables({ singleService: true }), annotations: detailAnnotations });

const sla = dashboard('continuity-sla', 'SLA and error budget',
  'Availability per service and SLA over the period, burn rates per window and error budget left, with the services at risk first.',
  ['sla'],
  [
    budgetBars('Services at risk: budget left', 10, 10),
    slaTable(14),
    panel('table', 'Burn rates now, every window', 'Error budget burn rate per window (5m … 3d), time-based over eligible time: 1 spends the budget exactly over the period; the daemon pages at 14.4 (1h and 5m) and 6 (6h and 30m), and tickets at 3 and 1.',
      targets(target(`label_join(max by (service, sla, window) (${sel('continuity_sla_burn_rate')}), "service_sla", " · ", "service", "sla")`, '', { instant: true, format: 'table' })),
      {
        w: 24, h: 8, unit: 'none', decimals: 2, thresholds: thresholds([[null, 'green'], [1, 'yellow'], [6, 'orange'], [14.4, 'red']]),
        transformations: [
          { id: 'groupingToMatrix', options: { columnField: 'window', rowField: 'service_sla', valueField: 'Value', emptyValue: 'null' } },
          { id: 'organize', options: { indexByName: { 'service_sla\\window': 0, '5m': 1, '30m': 2, '1h': 3, '2h': 4, '6h': 5, '1d': 6, '3d': 7 } } },
        ],
        custom: { cellOptions: { type: 'color-text' } },
      }),
    panel('timeseries', 'Burn rate over time ($window)', 'The burn rate over the chosen window; the dashed lines are the daemon\'s page (14.4) and ticket (6) factors.',
      targets(target(sel('continuity_sla_burn_rate', 'window="$window"'), '{{service}} · {{sla}} {{location}}')),
      { w: 12, h: 9, unit: 'none', min: 0, thresholds: thresholds([[null, 'green'], [6, 'orange'], [14.4, 'red']]), color: { mode: 'palette-classic' }, custom: { thresholdsStyle: { mode: 'dashed' } } }),
    panel('timeseries', 'Error budget left over time', 'Share of each SLA\'s budget left through the period.',
      targets(target(sel('continuity_sla_error_budget_remaining_ratio'), '{{service}} · {{sla}} {{location}}')),
      { w: 12, h: 9, unit: 'percentunit' }),
    panel('bargauge', 'Availability over the selected range', 'Good / eligible time over the dashboard\'s time range, from the time-based SLA counters (business hours and excluded maintenance as the daemon counts them).',
      targets(target(`sort(sum by (location, service, sla) (increase(${sel('continuity_sla_good_seconds_total')}[$__range])) / sum by (location, service, sla) (increase(${sel('continuity_sla_eligible_seconds_total')}[$__range])))`, '{{service}} · {{sla}} {{location}}', { instant: true })),
      { w: 12, h: 9, unit: 'percentunit', decimals: 3, min: 0.9, max: 1, thresholds: thresholds([[null, 'red'], [0.99, 'orange'], [0.998, 'green']]) }),
    panel('timeseries', 'Availability this period over time', 'Availability over the SLA period to date, against each objective (dashed).',
      targets(
        target(sel('continuity_sla_availability_ratio'), '{{service}} · {{sla}} {{location}}'),
        target(sel('continuity_sla_objective_ratio'), 'objective {{service}} · {{sla}}'),
      ),
      {
        w: 12, h: 9, unit: 'percentunit', decimals: 3,
        overrides: [{ matcher: { id: 'byFrameRefID', options: 'B' }, properties: [{ id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } }] }],
      }),
    panel('timeseries', 'Bad time per interval', 'Eligible seconds that were not good (down) per interval: where the budget went.',
      targets(target(`sum by (location, service, sla) (increase(${sel('continuity_sla_eligible_seconds_total')}[$__rate_interval])) - sum by (location, service, sla) (increase(${sel('continuity_sla_good_seconds_total')}[$__rate_interval]))`, '{{service}} · {{sla}} {{location}}')),
      { w: 24, h: 8, unit: 's', min: 0, custom: { drawStyle: 'bars', fillOpacity: 80 } }),
  ],
  { vars: [...variables(), windowVariable], time: 'now-7d' });

const perSupplier = (expr) => `${expr} * ${WITH_OWNER}`;
const suppliers = dashboard('continuity-suppliers', 'Suppliers',
  'Availability, incidents and error budget per supplier, so that each supplier\'s performance is visible at a glance.',
  ['suppliers'],
  [
    panel('bargauge', 'Availability per supplier over the range', 'Good / eligible time of all the supplier\'s services over the selected range, from the time-based SLA counters.',
      targets(target(
        `sort(sum by (supplier) (${perSupplier(`increase(${sel('continuity_sla_good_seconds_total')}[$__range])`)}) / sum by (supplier) (${perSupplier(`increase(${sel('continuity_sla_eligible_seconds_total')}[$__range])`)}))`,
        '{{supplier}}', { instant: true })),
      { w: 12, h: 8, unit: 'percentunit', decimals: 3, min: 0.9, max: 1, thresholds: thresholds([[null, 'red'], [0.99, 'orange'], [0.998, 'green']]) }),
    panel('bargauge', 'Lowest error budget left per supplier', 'The smallest share of error budget left among each supplier\'s SLAs this period.',
      targets(target(`sort(min by (supplier) (${perSupplier(sel('continuity_sla_error_budget_remaining_ratio'))}))`, '{{supplier}}', { instant: true })),
      { w: 12, h: 8, unit: 'percentunit', min: -1, max: 1, thresholds: BUDGET }),
    panel('bargauge', 'Incidents per supplier in range', 'Incidents opened for the supplier\'s services during the selected range.',
      targets(target(`sort_desc(sum by (supplier) (${perSupplier(`increase(${sel('continuity_incidents_total')}[$__range])`)}))`, '{{supplier}}', { instant: true })),
      { w: 12, h: 8, unit: 'short', decimals: 0, min: 0, thresholds: thresholds([[null, 'green'], [1, 'orange'], [5, 'red']]) }),
    panel('bargauge', 'Services up now per supplier', 'Share of each supplier\'s services whose critical checks all passed their last probe.',
      targets(target(`sort(avg by (supplier) (continuity_service_up{${SVC},category=~"$category",supplier=~"$supplier"}))`, '{{supplier}}', { instant: true })),
      { w: 12, h: 8, unit: 'percentunit', min: 0, max: 1, thresholds: thresholds([[null, 'red'], [0.9, 'orange'], [1, 'green']]) }),
    panel('timeseries', 'Availability per supplier over time', 'Good / eligible time per interval for each supplier.',
      targets(target(
        `sum by (supplier) (${perSupplier(`rate(${sel('continuity_sla_good_seconds_total')}[$__rate_interval])`)}) / sum by (supplier) (${perSupplier(`rate(${sel('continuity_sla_eligible_seconds_total')}[$__rate_interval])`)})`,
        '{{supplier}}')),
      { w: 12, h: 9, unit: 'percentunit', max: 1 }),
    panel('timeseries', 'Services down per supplier', 'How many of each supplier\'s services were down, over time.',
      targets(target(`sum by (supplier) (${perSupplier(sel('continuity_service_state', 'state="down"'))})`, '{{supplier}}')),
      { w: 12, h: 9, unit: 'short', min: 0, decimals: 0, custom: { drawStyle: 'line', lineInterpolation: 'stepAfter' } }),
    panel('table', 'Services per supplier', 'Every service with its category and supplier and whether its critical checks pass now.',
      targets(target(`continuity_service_up{${SVC},category=~"$category",supplier=~"$supplier"}`, '', { instant: true, format: 'table' })),
      {
        w: 24, h: 8, mappings: SUCCESS_MAPPINGS,
        transformations: [{ id: 'organize', options: { excludeByName: { Time: true, __name__: true, job: true }, renameByName: { Value: 'Up' } } }],
        overrides: [{ matcher: { id: 'byName', options: 'Up' }, properties: [{ id: 'custom.cellOptions', value: { type: 'color-background' } }] }],
      }),
  ]);

const SIP = 'kind="sip"';
const telephony = dashboard('continuity-telephony', 'Telephony',
  'The phone lines: SIP response codes, registration and trunk state, post-dial delay and call set-up time per line.',
  ['telephony', 'sip'],
  [
    panel('state-timeline', 'Line state (registration, OPTIONS, test calls)', 'Whether each SIP check (a registration, an OPTIONS ping to the trunk or a test call) succeeded, probe by probe.',
      targets(target(sel('continuity_probe_success', SIP), '{{service}}/{{check}} {{location}}')),
      { w: 24, h: 7, mappings: SUCCESS_MAPPINGS }),
    panel('stat', 'Last SIP response code', 'The final SIP response code of each line\'s last probe (200 OK; 4xx/5xx/6xx are failures unless accepted).',
      targets(target(sel('continuity_sip_response_code'), '{{service}}/{{check}} {{location}}', { instant: true })),
      { w: 8, h: 7, unit: 'none', decimals: 0, thresholds: thresholds([[null, 'green'], [300, 'orange'], [400, 'red']]) }),
    panel('timeseries', 'SIP response codes', 'Final SIP response code of each probe, per line.',
      targets(target(sel('continuity_sip_response_code'), '{{service}}/{{check}} {{location}}')),
      { w: 16, h: 7, unit: 'none', decimals: 0, custom: { drawStyle: 'points', pointSize: 6 } }),
    phases('Post-dial delay', 'INVITE sent to the first 18x (ringing) of each test call.', `${SIP},phase="ringing"`, 12, 8),
    phases('Call set-up time', 'INVITE sent to the 200 OK (answer) of each test call.', `${SIP},phase="answer"`, 12, 8),
    phases('OPTIONS and REGISTER response time', 'First request to the final response of OPTIONS pings and registrations (a REGISTER includes the challenge round trip).', `${SIP},phase="response"`, 12, 8),
    reasons(SIP, 12, 8),
  ]);

const monitor = dashboard('continuity-monitor', 'The monitor itself',
  'The health of the continuity instances: scheduler lag, probes in flight, store errors, the notification outbox, configuration reloads and the watchdog.',
  ['monitor'],
  [
    panel('stat', 'Watchdog', 'The always-firing Watchdog alert of each instance: 1 while it runs and evaluates its alert rules. A missing value means the instance is not scraped.',
      targets(target(own('continuity_alerts_firing', 'alertname="Watchdog"'), '{{instance}} {{location}}', { instant: true })),
      { w: 6, h: 5, mappings: [{ type: 'value', options: { 1: { text: 'Alive', color: 'green', index: 0 } } }, { type: 'special', options: { match: 'null', result: { text: 'Missing', color: 'red', index: 1 } } }] }),
    panel('stat', 'Last reload', 'Whether each instance\'s last configuration (re)load succeeded; a rejected reload keeps the previous configuration running.',
      targets(target(own('continuity_config_last_reload_successful'), '{{instance}}', { instant: true })),
      { w: 6, h: 5, mappings: [{ type: 'value', options: { 0: { text: 'Rejected', color: 'red', index: 0 }, 1: { text: 'OK', color: 'green', index: 1 } } }] }),
    panel('stat', 'Configuration age', 'Time since the configuration running now was loaded.',
      targets(target(`time() - ${own('continuity_config_last_reload_success_timestamp_seconds')}`, '{{instance}}', { instant: true })),
      { w: 6, h: 5, unit: 's', options: { colorMode: 'none' } }),
    panel('stat', 'Checks configured', 'Checks in each instance\'s running configuration.',
      targets(target(own('continuity_checks_configured'), '{{instance}}', { instant: true })),
      { w: 6, h: 5, unit: 'short', options: { colorMode: 'none' } }),
    panel('timeseries', 'Scheduler lag', 'How late probes started after their slot (99th and 50th percentile per interval). Growing lag means the instance cannot keep up.',
      targets(
        target(`histogram_quantile(0.99, sum by (job, instance, le) (rate(${own('continuity_scheduler_lag_seconds_bucket')}[$__rate_interval])))`, 'p99 {{instance}}'),
        target(`histogram_quantile(0.5, sum by (job, instance, le) (rate(${own('continuity_scheduler_lag_seconds_bucket')}[$__rate_interval])))`, 'p50 {{instance}}'),
      ),
      { w: 12, h: 8, unit: 's', min: 0 }),
    panel('timeseries', 'Probes in flight and probe rate', 'Probes running now, and probes started per second.',
      targets(
        target(own('continuity_probes_in_flight'), 'in flight {{instance}}'),
        target(`sum by (job, instance) (rate(${own('continuity_probes_total')}[$__rate_interval]))`, 'probes/s {{instance}}'),
      ),
      { w: 12, h: 8, unit: 'short', min: 0 }),
    panel('timeseries', 'Store errors', 'Store write failures per interval (the data stays queued and is retried).',
      targets(target(`sum by (job, instance) (increase(${own('continuity_store_errors_total')}[$__rate_interval]))`, '{{instance}}')),
      { w: 12, h: 8, unit: 'short', min: 0, custom: { drawStyle: 'bars', fillOpacity: 80 } }),
    panel('timeseries', 'Outbox backlog', 'Notifications waiting in the durable outbox; a backlog that does not drain means a receiver is unreachable.',
      targets(target(own('continuity_notification_queue_length'), '{{instance}}')),
      { w: 12, h: 8, unit: 'short', min: 0 }),
    panel('timeseries', 'Notifications by result', 'Notification attempts per second by receiver and result (delivered, failed, expired).',
      targets(target(`sum by (instance, receiver, result) (rate(${own('continuity_notifications_total')}[$__rate_interval]))`, '{{receiver}} {{result}} {{instance}}')),
      { w: 12, h: 8, unit: 'ops', min: 0 }),
    panel('timeseries', 'Monitor errors and alerts firing', 'Probes the monitor could not run per second, and alerts firing by severity.',
      targets(
        target(`sum by (job, instance) (rate(${own('continuity_probe_errors_total')}[$__rate_interval]))`, 'monitor errors/s {{instance}}'),
        target(`sum by (instance, severity) (${own('continuity_alerts_firing')})`, 'firing {{severity}} {{instance}}'),
      ),
      { w: 12, h: 8, unit: 'short', min: 0 }),
    panel('table', 'Build', 'Version of each continuity instance.',
      targets(target(own('continuity_build_info'), '', { instant: true, format: 'table' })),
      { w: 24, h: 5, unit: 'none', transformations: [{ id: 'organize', options: { excludeByName: { Time: true, __name__: true, Value: true } } }] }),
  ]);

// --------------------------------------------------------------- output

const DASHBOARDS = {
  'overview.json': overview,
  'service-detail.json': detail,
  'sla.json': sla,
  'suppliers.json': suppliers,
  'telephony.json': telephony,
  'monitor.json': monitor,
};

const check = process.argv.includes('--check');
const stale = [];
for (const [file, d] of Object.entries(DASHBOARDS)) {
  const path = join(HERE, file);
  const text = JSON.stringify(d, null, 2) + '\n';
  if (check) {
    let old = '';
    try {
      old = readFileSync(path, 'utf8');
    } catch {
      // A missing file is stale too.
    }
    if (old !== text) stale.push(file);
  } else {
    writeFileSync(path, text);
  }
}
if (stale.length > 0) {
  console.error(`dashboards/${stale.join(', dashboards/')} differ from dashboards/generate.mjs: run \`node dashboards/generate.mjs\` and commit the result`);
  process.exit(1);
}
