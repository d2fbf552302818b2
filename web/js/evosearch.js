// EvoSearch for ComfyUI: what a search will cost before it runs, and what it spent after.
//
// * EvoSearch Schedule shows its planned cost (NFE, the equal-budget Best-of-N, reward calls) for the steps of the
//   sampler its output feeds (EvoSearch KSampler's steps; for EvoSearch Sampler, the steps of the scheduler that
//   feeds SamplerCustom(Advanced)'s sigmas), else its own `steps` widget. The text comes from the server
//   (POST /evosearch/plan, nodes/web_routes.py), which asks the Schedule node itself, and is refreshed whenever a
//   widget or a link changes.
// * EvoSearch KSampler, EvoSearch Results and EvoSearch Schedule show the text the server sends for them when they
//   run (the "executed" message's output.text).
// * On EvoSearch Schedule, widgets the chosen mode or strategy does not use are labelled "(unused)".
//
// The text sits in a read-only box of fixed height at the bottom of the node, so showing it never resizes a node.
// tools/make_workflows.py reserves the same heights (INFO_HEIGHTS there) when it lays out the example workflows.
import { app } from "../../../scripts/app.js";
import { api } from "../../../scripts/api.js";

const WIDGET = "evosearch_info";
const PLAN_ROUTE = "/evosearch/plan";
const SCHEDULE = "EvoSearchSchedule";
const NODES = {
  [SCHEDULE]: { height: 100, idle: "Planning the cost…" },
  EvoSearchKSampler: { height: 96, idle: "After a run: the NFE, decodes, reward calls and seconds it spent." },
  EvoSearchResults: { height: 96, idle: "After a run: the NFE, decodes, reward calls and seconds it spent." },
};

const linkOf = (graph, id) => (graph?.links?.get ? graph.links.get(id) : graph?.links?.[id]);
const widgetValue = (node, name) => node?.widgets?.find((w) => w.name === name)?.value;
const positiveInt = (v) => (Number.isInteger(v) && v > 0 ? v : null);

/** The steps of whatever samples with this node's output: `steps` on the node, or behind its SAMPLER output. */
function samplerSteps(node, depth = 0) {
  if (!node || depth > 2) return null;
  const own = positiveInt(widgetValue(node, "steps"));
  if (own) return own;
  // A SAMPLER consumer (SamplerCustomAdvanced, SamplerCustom) takes its steps from the SIGMAS input.
  const sigmas = node.inputs?.find((i) => i.name === "sigmas" && i.link != null);
  if (sigmas) {
    const link = linkOf(node.graph, sigmas.link);
    const steps = positiveInt(widgetValue(node.graph?.getNodeById(link?.origin_id), "steps"));
    if (steps) return steps;
  }
  for (const output of node.outputs ?? []) {
    if (output.type !== "SAMPLER") continue;
    for (const id of output.links ?? []) {
      const steps = samplerSteps(node.graph?.getNodeById(linkOf(node.graph, id)?.target_id), depth + 1);
      if (steps) return steps;
    }
  }
  return null;
}

/** Steps to plan a Schedule for: the first linked sampler's, else its own `steps` widget. */
function planSteps(schedule) {
  for (const id of schedule.outputs?.[0]?.links ?? []) {
    const steps = samplerSteps(schedule.graph?.getNodeById(linkOf(schedule.graph, id)?.target_id));
    if (steps) return steps;
  }
  return positiveInt(widgetValue(schedule, "steps")) ?? 20;
}

/** Which Schedule widgets the chosen mode and strategy ignore: they are labelled "(unused)" so nothing misleads. */
const UNUSED = {
  budget: (v) => !String(v.mode).startsWith("budget"),
  evolution_steps: (v) => v.mode !== "custom",
  population: (v) => v.mode !== "custom",
  potential: (v) => v.strategy !== "particles",
  lam: (v) => v.strategy !== "particles",
  fitness: (v) => v.strategy === "best_of_n",
};

function markUnused(node) {
  if (node.type !== SCHEDULE) return;
  const values = Object.fromEntries((node.widgets ?? []).map((w) => [w.name, w.value]));
  for (const w of node.widgets ?? []) {
    const unused = UNUSED[w.name]?.(values);
    if (unused === undefined) continue;
    w.label = unused ? `${w.name} (unused)` : undefined;
  }
  node.setDirtyCanvas?.(true, false);
}

function render(node) {
  const info = node.evosearchInfo;
  if (!info) return;
  const parts = [];
  if (node.type === SCHEDULE) {
    if (info.planError) parts.push(`⚠ ${info.planError}`);
    else if (info.plan) parts.push(`Planned: ${info.plan}`);
  }
  if (info.run && info.run !== info.plan) parts.push(`Last run: ${info.run}`);
  info.element.textContent = parts.length ? parts.join("\n") : NODES[node.type].idle;
  info.element.title = info.element.textContent;
}

async function refreshPlan(node) {
  const info = node.evosearchInfo;
  if (!info || !node.graph) return;
  const inputs = {};
  for (const w of node.widgets ?? []) if (w.name !== WIDGET) inputs[w.name] = w.value;
  const steps = planSteps(node);
  const key = JSON.stringify([inputs, steps]);
  if (key === info.planKey) return;
  info.planKey = key;
  const ticket = ++info.ticket;
  let answer;
  try {
    const response = await api.fetchApi(PLAN_ROUTE, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ inputs, steps }),
    });
    answer = response.ok ? await response.json() : { error: `the server answered ${response.status}` };
  } catch (e) {
    answer = { error: `could not reach the server (${e?.message ?? e})` };
  }
  if (ticket !== info.ticket) return; // a newer request is on its way
  info.plan = answer.text ?? null;
  info.planError = answer.text ? null : answer.error ?? "no plan";
  render(node);
}

/** Every Schedule node alive in the page (the root graph's and those inside subgraphs). */
const schedules = new Set();
let refreshTimer = null;
/** Re-plan every Schedule soon (many changes in a row make one round of requests). */
function refreshAllSoon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => {
    for (const node of schedules) {
      if (node.graph) refreshPlan(node);
      else schedules.delete(node); // removed from its graph
    }
  }, 100);
}

function addInfoWidget(node) {
  const { height } = NODES[node.type];
  const element = document.createElement("div");
  element.dataset.evosearch = node.type;
  Object.assign(element.style, {
    boxSizing: "border-box",
    overflowY: "auto",
    whiteSpace: "pre-wrap",
    wordBreak: "break-word",
    font: "12px/16px sans-serif",
    padding: "3px 6px",
    borderRadius: "6px",
    color: "var(--input-text, #ddd)",
    background: "var(--comfy-input-bg, #222)",
    userSelect: "text",
  });
  const widget = node.addDOMWidget(WIDGET, "evosearch_info", element, {
    serialize: false, // neither a workflow widget value nor a prompt input
    getMinHeight: () => height,
    getMaxHeight: () => height,
    getValue: () => element.textContent,
    setValue: () => {},
  });
  widget.serialize = false;
  node.evosearchInfo = { element, plan: null, planError: null, planKey: null, run: null, ticket: 0 };
  if (node.type === SCHEDULE) schedules.add(node);
  render(node);
}

app.registerExtension({
  name: "EvoSearch.CostAndResults",

  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!(nodeData.name in NODES)) return;
    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const result = onNodeCreated?.apply(this, arguments);
      addInfoWidget(this);
      markUnused(this);
      for (const w of this.widgets ?? []) {
        if (w.name === WIDGET) continue;
        const callback = w.callback;
        const node = this;
        w.callback = function () {
          const out = callback?.apply(this, arguments);
          markUnused(node);
          refreshAllSoon(); // a Schedule's own widget, or the steps a Schedule plans for
          return out;
        };
      }
      return result;
    };

    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      onExecuted?.apply(this, arguments);
      const text = message?.text;
      if (this.evosearchInfo && Array.isArray(text) && text.length) {
        this.evosearchInfo.run = text.map(String).join("\n");
        render(this);
      }
    };

    const onAdded = nodeType.prototype.onAdded;
    nodeType.prototype.onAdded = function () {
      const out = onAdded?.apply(this, arguments);
      if (this.type === SCHEDULE) {
        schedules.add(this);
        refreshAllSoon();
      }
      return out;
    };

    const onRemoved = nodeType.prototype.onRemoved;
    nodeType.prototype.onRemoved = function () {
      schedules.delete(this);
      return onRemoved?.apply(this, arguments);
    };

    const onConnectionsChange = nodeType.prototype.onConnectionsChange;
    nodeType.prototype.onConnectionsChange = function () {
      const out = onConnectionsChange?.apply(this, arguments);
      refreshAllSoon();
      return out;
    };
  },

  async setup() {
    api.addEventListener("graphChanged", refreshAllSoon); // links and widgets anywhere (e.g. a scheduler's steps)
  },

  async afterConfigureGraph() {
    for (const node of schedules) markUnused(node); // widget values arrive after the node was created
    refreshAllSoon();
  },
});
