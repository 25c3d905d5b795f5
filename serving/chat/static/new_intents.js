// The agent console's "Label these" queue: clusters of messages the bot could not answer
// (found by the monitoring run), each named by an agent as a known or a new intent. The name is
// checked on the page by the server's rule (labelProblem) before anything is sent; suggestions:
// the known intents sharing a word with the cluster's top terms, and a new name made of them.
import { element } from "/chat/static/chat.js";
import { labelProblem } from "/chat/static/agent_desk.js";

// Candidate names for a cluster: known intents sharing one of its top terms, then a new name.
function candidates(cluster, known) {
  const terms = cluster.top_terms.map((term) => term.toLowerCase().replace(/[^a-z0-9]+/g, "_"))
    .filter((term) => /^[a-z]/.test(term));
  const related = [...known].filter((intent) => terms.some((term) => intent.split("_").includes(term)));
  const proposal = terms.slice(0, 2).join("_").slice(0, 64);
  const fresh = proposal && !known.has(proposal) ? [{ intent: proposal, isNew: true }] : [];
  return [...related.slice(0, 3).map((intent) => ({ intent, isNew: false })), ...fresh];
}

export function newIntentsQueue(container, notice, send) {
  const clusters = new Map();
  let known = new Set();
  let open = null; // the cluster whose form is shown

  function form(cluster) {
    const list = element("datalist", { id: `known-${cluster.cluster_id}` },
      ...[...known].map((name) => element("option", { value: name })));
    const input = element("input", { placeholder: "search intents", "aria-label": "intent name",
      list: list.id, class: "cluster-intent", autocomplete: "off" });
    const isNew = element("input", { type: "checkbox", class: "cluster-new" });
    const error = element("div", { class: "label-error", role: "alert" });
    const suggestions = element("div", { class: "suggestions", role: "group", "aria-label": "Suggested names" },
      ...candidates(cluster, known).map(({ intent, isNew: fresh }) => element("button", {
        type: "button", class: "suggestion", "data-intent": intent,
        onclick: () => { input.value = intent; isNew.checked = fresh; error.textContent = ""; },
      }, fresh ? `new: ${intent}` : intent)));
    const samples = cluster.samples.map((sample) => {
      const box = element("input", { type: "checkbox", checked: "", "data-message-id": sample.message_id });
      return element("label", { class: "sample" }, box, ` ${sample.text}`);
    });
    const submit = element("button", { type: "submit" }, "Name it");
    const node = element("form", { class: "cluster-form" }, ...samples,
      element("div", { class: "note" }, `${cluster.size} messages in all; untick the ones that do not belong`),
      list, input, suggestions, element("label", {}, isNew, " a new intent"), submit, error);
    node.addEventListener("submit", (event) => {
      event.preventDefault();
      const intent = input.value.trim();
      error.textContent = labelProblem(intent, isNew.checked, known);
      if (error.textContent) return;
      const excluded = [...node.querySelectorAll("input[data-message-id]")]
        .filter((box) => !box.checked).map((box) => box.dataset.messageId);
      send("label_cluster", { cluster_id: cluster.cluster_id, intent, new_intent: isNew.checked,
        exclude_message_ids: excluded });
    });
    node.addEventListener("click", (event) => event.stopPropagation());
    return node;
  }

  function render() {
    container.replaceChildren();
    if (!clusters.size) container.append(element("div", { class: "note empty" }, "Nothing to label."));
    for (const cluster of clusters.values()) {
      const trend = cluster.trend === "new" ? "new" : `${cluster.trend} (was ${cluster.previous_size})`;
      const card = element("div", {
        class: `request cluster${open === cluster.cluster_id ? " active" : ""}`,
        "data-cluster-id": cluster.cluster_id,
        onclick: () => { open = open === cluster.cluster_id ? null : cluster.cluster_id; render(); },
      }, element("strong", {}, `${cluster.size} messages · ${trend}`),
      element("div", { class: "reason" }, cluster.top_terms.join(", ")),
      element("div", {}, cluster.samples[0]?.text ?? ""));
      if (open === cluster.cluster_id) card.append(form(cluster));
      container.append(card);
    }
  }

  return {
    new_intents: (data) => {
      known = new Set(data.known_intents);
      clusters.clear();
      for (const cluster of data.clusters) clusters.set(cluster.cluster_id, cluster);
      render();
    },
    cluster_labelled: (data) => {
      if (clusters.delete(data.cluster_id)) notice(`${data.labels} messages labelled ${data.intent} by ${data.by}`);
      render();
    },
    // After every (re)connection: the queue may have changed while away.
    resume_complete: () => send("new_intents", {}),
  };
}
