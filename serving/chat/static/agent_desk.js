// Beside a conversation: the true-intent form of each customer message (known intents only,
// the model's top-k as suggestions, a new intent marked as such), the canned replies, and the
// hand-off reason and earlier conversations of the customer (the `agent_desk` frame).
import { element, timeOf } from "/chat/static/chat.js";

const NEW_INTENT = /^[a-z][a-z0-9_]{0,63}$/; // the server's rule (serving/chat/agent_desk.py)
export const HANDOFF_REASONS = {
  asked_for_human: "Asked for a human",
  customer_request: "Pressed “Talk to a human”",
  frustration: "Sounded frustrated",
  repeated_fallback: "The bot did not understand, twice",
  model_unavailable: "The model was unavailable",
  escalated: "Escalated",
};

// The error a label would get from the server (serving/chat/agent_desk.py), said before sending;
// "" when it is fine. `known`: the model's intents (a Set).
export function labelProblem(intent, isNew, known) {
  if (!intent) return "Choose the intent this message really has.";
  if (isNew) {
    if (known.has(intent)) return `${intent} is already an intent: untick “new intent”.`;
    if (!NEW_INTENT.test(intent)) return "A new intent is lower-case letters, digits and _, like card_arrival.";
    return "";
  }
  return known.has(intent) ? "" : `“${intent}” is not one of the model's intents: pick one from the list, or tick “new intent”.`;
}

export function createDesk(send) {
  let known = new Set();
  let canned = {}; // intent → the catalogue's replies (data/responses.yaml)
  let replyIntent = null; // the conversation's intent: the agent's label, else the model's

  function labelForm(message) {
    const id = `label-${message.message_id}`;
    const input = element("input", { id, class: "label-intent", list: "known-intents", autocomplete: "off",
      placeholder: "search intents" });
    const isNew = element("input", { type: "checkbox", class: "label-new", id: `${id}-new` });
    const error = element("div", { class: "label-error", role: "alert" });
    const form = element("form", { class: "label-form", "data-message-id": message.message_id },
      element("label", { for: id }, "True intent"), input,
      element("span", { class: "suggestions", "aria-label": "The model's suggestions" }),
      element("label", { for: isNew.id, class: "new-intent" }, isNew, " new intent"),
      element("button", { type: "submit" }, "Label"), error);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const intent = input.value.trim();
      error.textContent = labelProblem(intent, isNew.checked, known);
      if (error.textContent) return;
      send("label_message", { message_id: message.message_id, intent, new_intent: isNew.checked });
    });
    return form;
  }

  // The model's top-k for a customer message, as buttons that fill its form.
  function suggest(form, topK) {
    const slot = form.querySelector(".suggestions");
    slot.replaceChildren(...topK.slice(0, 3).map((candidate) =>
      element("button", { type: "button", class: "suggestion", "data-intent": candidate.intent,
        onclick: () => { form.querySelector(".label-intent").value = candidate.intent; } },
      `${candidate.intent} ${Math.round(candidate.confidence * 100)}%`)));
  }

  function labelled(form, data) {
    form.replaceChildren(element("span", { class: "labelled" },
      `Labelled ${data.intent}${data.new_intent ? " (new intent)" : ""}`));
  }

  // The canned replies of the conversation's intent as one-click buttons: a click puts the text
  // in the reply box, where the agent edits it before sending (nothing is sent by the click).
  function suggestReplies(intent) {
    if (intent && canned[intent]) replyIntent = intent; // a new intent has no replies yet: keep
    const slot = document.getElementById("suggested-replies");
    const texts = (replyIntent && canned[replyIntent]) || [];
    if (!texts.length) { slot.replaceChildren(); slot.hidden = true; return; }
    slot.hidden = false;
    slot.replaceChildren(element("span", { class: "note" }, `Replies for ${replyIntent}:`),
      ...texts.slice(0, 3).map((text) => element("button", {
        type: "button", class: "canned-reply", title: text,
        onclick: () => {
          const box = document.getElementById("text");
          box.value = text;
          box.focus();
        },
      }, text.length > 60 ? `${text.slice(0, 57)}…` : text)));
  }

  function forgetConversation() {
    replyIntent = null;
    suggestReplies(null);
  }

  function renderIntents(data) {
    canned = data.canned_replies;
    suggestReplies(null);
    known = new Set(data.known_intents);
    document.getElementById("known-intents").replaceChildren(
      ...data.known_intents.map((name) => element("option", { value: name })));
    document.getElementById("canned-replies").replaceChildren(...Object.entries(data.canned_replies).flatMap(([intent, texts]) =>
      texts.map((text) => element("option", { value: text, label: intent }))));
  }

  function renderRequest(container, data) {
    const request = data.request;
    if (!request) return;
    const reason = HANDOFF_REASONS[request.handoff_reason] || request.handoff_reason || "—";
    const handoff = element("section", { class: "handoff", "aria-label": "Hand-off" },
      element("h2", {}, "Hand-off"), element("div", { class: "reason" }, reason));
    if (request.handed_off_at) handoff.append(element("div", { class: "note" }, "at ", timeOf(request.handed_off_at)));
    for (const words of [request.escalation_reason, request.description]) {
      if (words) handoff.append(element("blockquote", {}, words));
    }
    const earlier = element("section", { class: "history", "aria-label": "Earlier conversations" },
      element("h2", {}, `Earlier conversations (${data.history.length})`));
    if (!data.history.length) earlier.append(element("div", { class: "note" }, "None: a first conversation."));
    for (const past of data.history) {
      const when = new Date(past.created_at).toLocaleDateString();
      const outcome = past.resolution ? `resolved: ${past.resolution}` : past.status.replace("_", " ");
      earlier.append(element("article", { class: "past" },
        element("div", { class: "note" }, `${when} · ${outcome}${past.rating ? ` · ${past.rating}/5` : ""}`),
        ...past.customer_messages.map((text) => element("div", { class: "said" }, `“${text}”`))));
    }
    container.replaceChildren(element("h2", { class: "customer-id" }, request.customer_id), handoff, earlier);
  }

  return { labelForm, suggest, labelled, renderIntents, renderRequest, suggestReplies,
    forgetConversation };
}
